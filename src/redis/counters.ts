import { Cluster, type ChainableCommander } from 'ioredis';
import type { Logger } from 'pino';
import type { StatsBackend } from '../config.js';
import { bucketStart, type CountableDecision } from '../domain/decision-entry.js';
import { MINUTE_MS, SECOND_MS, SERIES, seriesLabels, shadowSeries, workerLagLabels, type SeriesName } from '../stats/series.js';
import type { RedisCapabilities } from './capabilities.js';
import type { RedisClient } from './connection.js';
import type { Keyspace, Partition } from './keyspace.js';
import type { OffendersTally } from './offenders.js';
import { mrangeSeries } from './replies.js';

export interface CountersSettings {
  backend: 'auto' | StatsBackend;
  keyspace: Keyspace;
  retentionMs: number;
  minuteRetentionMs: number;
  appName: string;
}

/**
 * Counts per time bucket, per series, from `from` to `to`: only buckets with clicks, and in each
 * only the series with counts (a rule that never fired adds nothing to every bucket).
 */
export type BucketCounts = Array<{ ts: number } & Partial<Record<SeriesName, number>>>;

/** One decision's share of a countDecisions call (see countDecisions.lua): its keys and its arguments. */
export interface DecisionCount {
  keys: string[];
  args: Array<string | number>;
}

/**
 * The counts of decisions per verdict and second. Each partition has counters of its own, in its
 * own slot, so that decisions are counted and acknowledged in one step on their partition (see
 * countDecisions.lua); reads add the partitions up.
 */
export interface Counters {
  backend: StatsBackend;
  /**
   * What counting entry `entryId` of `partition` (`decision`) takes, its top offenders' share
   * (`offenders`: see Offenders.tally) with it; `countDecisions` sends it.
   */
  countOf(partition: Partition, entryId: string, decision: CountableDecision, offenders: OffendersTally): DecisionCount;
  /**
   * Creates what the counts are kept in when missing (RedisTimeSeries: the series, their labels and
   * compaction rules, which TS.ADD alone would not), as after a Redis that restarted empty.
   */
  ensure(redis: RedisClient): Promise<void>;
  /** Whether the workers' lag is kept as a series (for the dashboard). */
  recordsLag: boolean;
  recordLag(redis: RedisClient, partition: Partition, lag: number, atMs: number): Promise<void>;
  /** Counts in buckets of `bucketMs` (a multiple of a second) over [from, to], all partitions added up. */
  range(redis: RedisClient, from: number, to: number, bucketMs: number): Promise<BucketCounts>;
  /**
   * The longest range `range` reads for this bucket size, so that one read of statistics costs
   * Redis a bounded number of commands whatever is asked.
   */
  maxRangeMs(bucketMs: number): number;
}

const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
/** Plain Redis: hashes one read of statistics may fetch, over all partitions. */
const HASH_READS = 100;
const YIELD_EVERY_READS = 32;

/**
 * Counts and acknowledges `counts`, entries of the partition whose stream is `stream`, in one
 * atomic step (see countDecisions.lua), on a client or queued on a pipeline. Answers how many
 * were still pending, and so counted; a call that fails has counted nothing.
 */
export function countDecisions(target: RedisClient | ChainableCommander, stream: string, group: string, counts: DecisionCount[]): unknown {
  const keys = [stream];
  const args: Array<string | number> = [group];
  for (const count of counts) {
    keys.push(...count.keys);
    args.push(count.keys.length, count.args.length, ...count.args);
  }
  return target.countDecisions(keys.length, ...keys, ...args);
}

/**
 * Picks the counter store: RedisTimeSeries where the module is loaded (series and per-minute
 * compaction rules are created when missing), otherwise plain Redis hashes with the same
 * per-second buckets and retention.
 */
export async function prepareCounters(redis: RedisClient, capabilities: RedisCapabilities, settings: CountersSettings): Promise<Counters> {
  if (settings.backend === 'timeseries' && !capabilities.timeseries) {
    throw new Error('STATS_BACKEND=timeseries needs the RedisTimeSeries module (Redis Stack or Redis 8), which this Redis does not have');
  }
  const counters = settings.backend === 'timeseries' || (settings.backend === 'auto' && capabilities.timeseries) ? timeSeriesCounters(settings) : hashCounters(settings);
  await counters.ensure(redis);
  return counters;
}

async function createSeries(redis: RedisClient, { keyspace, retentionMs, minuteRetentionMs, appName }: CountersSettings): Promise<void> {
  const create = async (key: string, retention: number, labels: string[], duplicatePolicy: string) => {
    try {
      await redis.call('TS.CREATE', key, 'RETENTION', retention, 'DUPLICATE_POLICY', duplicatePolicy, 'LABELS', ...labels);
    } catch (error) {
      // Created before, or by another instance starting at the same moment: its labels are brought
      // up to date (a series made by an older version lacks those added since).
      if (!/already exists/i.test((error as Error).message)) throw error;
      await redis.call('TS.ALTER', key, 'LABELS', ...labels);
    }
  };
  for (const partition of keyspace.partitions) {
    for (const series of SERIES) {
      const perSecond = partition.timeSeries(series, '1s');
      const perMinute = partition.timeSeries(series, '1m');
      await create(perSecond, retentionMs, seriesLabels(appName, series, '1s', partition.index), 'SUM');
      await create(perMinute, minuteRetentionMs, seriesLabels(appName, series, '1m', partition.index), 'SUM');
      try {
        await redis.call('TS.CREATERULE', perSecond, perMinute, 'AGGREGATION', 'sum', MINUTE_MS);
      } catch (error) {
        if (!/already has a (src|source) rule/i.test((error as Error).message)) throw error;
      }
    }
    await create(partition.workerLag, retentionMs, workerLagLabels(appName, partition.index), 'LAST');
  }
  if (redis instanceof Cluster) await refreshTimeSeriesCluster(redis);
}

/**
 * On an OSS cluster, TS.MRANGE and TS.MGET answer from every shard only once each node has been
 * told the topology (`timeseries.REFRESHCLUSTER`); until then they see the local shard's series,
 * and after a failover they time out. The workers tell every node again every few seconds
 * (keepTimeSeriesClusterTold), so that the dashboard's queries recover by themselves.
 */
export async function refreshTimeSeriesCluster(cluster: Cluster): Promise<void> {
  // A node that is down (a master that just failed) cannot be told, and need not be.
  const results = await Promise.allSettled(cluster.nodes('all').map((node) => node.call('timeseries.REFRESHCLUSTER')));
  if (results.every((result) => result.status === 'rejected')) throw (results[0] as PromiseRejectedResult).reason;
}

function timeSeriesCounters(settings: CountersSettings): Counters {
  const { appName } = settings;
  return {
    backend: 'timeseries',
    ensure: (redis) => createSeries(redis, settings),
    recordsLag: true,
    countOf(partition, entryId, decision, offenders) {
      // The compaction rules keep the per-minute sums.
      const keys = seriesOf(decision).map((series) => partition.timeSeries(series, '1s'));
      return { keys: [...offenders.keys, ...keys], args: [entryId, ...offenders.args, 'timeseries', bucketStart(decision.ts, SECOND_MS)] };
    },
    // One TS.MRANGE whatever the range: a day of per-second samples, or 31 days of per-minute sums.
    maxRangeMs: (bucketMs) => (bucketMs % MINUTE_MS === 0 ? 31 * DAY_MS : DAY_MS),
    async recordLag(redis, partition, lag, atMs) {
      await redis.call('TS.ADD', partition.workerLag, atMs, lag, 'ON_DUPLICATE', 'LAST');
    },
    async range(redis, from, to, bucketMs) {
      // Whole-minute buckets come from the per-minute sums, which are kept longer; LATEST adds the
      // minute still open, which the compaction has not written yet. The partitions' series of a
      // verdict are added up by RedisTimeSeries itself (GROUPBY ... REDUCE sum), on every shard.
      const resolution = bucketMs % MINUTE_MS === 0 ? '1m' : '1s';
      const latest = resolution === '1m' ? ['LATEST'] : [];
      const query = () =>
        redis.call(
          'TS.MRANGE', from, to, ...latest, 'AGGREGATION', 'sum', bucketMs,
          'FILTER', `app=${appName}`, 'metric=clicks', `resolution=${resolution}`,
          'GROUPBY', 'fraud_type', 'REDUCE', 'sum',
        );
      // On a cluster whose topology changed (a failover) since the nodes were last told, the
      // query fails until they are told again.
      const reply = await query().catch(async (error: unknown) => {
        if (!(redis instanceof Cluster)) throw error;
        await refreshTimeSeriesCluster(redis);
        return query();
      });
      const counts = new BucketMap();
      for (const { key, samples } of mrangeSeries(reply)) {
        // A group is named `fraud_type=<series>`.
        const series = key.slice(key.indexOf('=') + 1);
        if (!(SERIES as readonly string[]).includes(series)) continue;
        for (const [ts, value] of samples) counts.add(ts, series as SeriesName, value);
      }
      return counts.sorted();
    },
  };
}

/**
 * Plain Redis: per partition, one hash per minute of per-second counts (`<series>@<second start
 * ms>` -> count), and one hash per hour of per-minute counts (`<series>@<minute start ms>`), each
 * expiring with retention (see Partition.minuteCounts and hourCounts). Whole-minute buckets read
 * the hourly hashes, finer ones the minute hashes, of every partition; how far back a read may go
 * shrinks with the partitions, so that it is at most HASH_READS hashes.
 */
function hashCounters({ keyspace, retentionMs }: CountersSettings): Counters {
  const spansPerRead = Math.max(2, Math.floor(HASH_READS / keyspace.partitions.length));
  /** HGETALL of every partition's hash for each span start, read as (series, field ms, count) in [from, to]. */
  const readSpans = async (
    redis: RedisClient,
    spanMs: number,
    key: (partition: Partition, spanStart: number) => string,
    from: number,
    to: number,
    add: (ts: number, series: SeriesName, count: number) => void,
  ) => {
    const reads: Array<Promise<unknown>> = [];
    for (let span = bucketStart(from, spanMs); span <= to; span += spanMs) {
      // The raw reply, a flat [field, value, ...] list: ioredis' object form costs twice the time.
      for (const partition of keyspace.partitions) reads.push(redis.call('HGETALL', key(partition, span)));
    }
    const replies = (await Promise.all(reads)) as string[][];
    for (let i = 0; i < replies.length; i++) {
      const flat = replies[i]!;
      for (let f = 0; f + 1 < flat.length; f += 2) {
        const field = flat[f]!;
        const at = field.lastIndexOf('@');
        const ts = Number(field.slice(at + 1));
        const series = field.slice(0, at);
        if (ts >= from && ts <= to && isSeriesName(series)) add(ts, series, Number(flat[f + 1]));
      }
      // An hour in seconds of every series is thousands of counts: let the clicks in between every few hashes.
      if (i % YIELD_EVERY_READS === YIELD_EVERY_READS - 1) await new Promise((next) => setImmediate(next));
    }
  };
  return {
    backend: 'hash',
    // Hashes are created by the first count.
    ensure: async () => {},
    recordsLag: false,
    countOf(partition, entryId, decision, offenders) {
      const minute = bucketStart(decision.ts, MINUTE_MS);
      const hour = bucketStart(decision.ts, HOUR_MS);
      return {
        keys: [...offenders.keys, partition.minuteCounts(minute), partition.hourCounts(hour)],
        args: [
          entryId,
          ...offenders.args,
          'hash',
          bucketStart(decision.ts, SECOND_MS),
          minute,
          minute + MINUTE_MS + retentionMs,
          hour + HOUR_MS + retentionMs,
          ...seriesOf(decision),
        ],
      };
    },
    maxRangeMs: (bucketMs) => (bucketMs % MINUTE_MS === 0 ? Math.min(DAY_MS, (spansPerRead - 1) * HOUR_MS) : Math.min(HOUR_MS, (spansPerRead - 1) * MINUTE_MS)),
    async recordLag() {
      throw new Error('the hash counters keep no lag series');
    },
    async range(redis, from, to, bucketMs) {
      const counts = new BucketMap();
      const add = (ts: number, series: SeriesName, count: number) => counts.add(bucketStart(ts, bucketMs), series, count);
      if (bucketMs % MINUTE_MS === 0) await readSpans(redis, HOUR_MS, (p, hour) => p.hourCounts(hour), from, to, add);
      else await readSpans(redis, MINUTE_MS, (p, minute) => p.minuteCounts(minute), from, to, add);
      return counts.sorted();
    },
  };
}

/** The series a decision adds one to: all clicks, its verdict, and each rule that fired in shadow mode. */
function seriesOf({ fraudType, shadow }: CountableDecision): SeriesName[] {
  return ['total', fraudType, ...shadow.map(shadowSeries)];
}

function isSeriesName(name: string): name is SeriesName {
  return (SERIES as readonly string[]).includes(name);
}

class BucketMap {
  private readonly buckets = new Map<number, { ts: number } & Partial<Record<SeriesName, number>>>();

  add(ts: number, series: SeriesName, value: number): void {
    let bucket = this.buckets.get(ts);
    if (!bucket) {
      bucket = { ts };
      this.buckets.set(ts, bucket);
    }
    bucket[series] = (bucket[series] ?? 0) + value;
  }

  sorted(): BucketCounts {
    return [...this.buckets.values()].sort((a, b) => a.ts - b.ts);
  }
}

/** How often a worker tells a cluster's nodes the topology again (see refreshTimeSeriesCluster). */
const CLUSTER_TELL_EVERY_MS = 5000;

export function keepTimeSeriesClusterTold(cluster: Cluster, logger: Logger): () => void {
  let failing = false;
  const timer = setInterval(() => {
    refreshTimeSeriesCluster(cluster).then(
      () => (failing = false),
      (error: Error) => {
        if (!failing) logger.warn({ err: error.message }, 'cannot tell the cluster nodes their topology (timeseries.REFRESHCLUSTER); retrying');
        failing = true;
      },
    );
  }, CLUSTER_TELL_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
