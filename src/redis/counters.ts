import type { ChainableCommander, Redis } from 'ioredis';
import type { StatsBackend } from '../config.js';
import { bucketStart, type CountableDecision } from '../domain/decision-entry.js';
import {
  MINUTE_MS,
  SECOND_MS,
  SERIES,
  seriesLabels,
  timeSeriesKey,
  workerLagKey,
  workerLagLabels,
  type SeriesName,
} from '../stats/series.js';
import type { RedisCapabilities } from './capabilities.js';

export interface CountersSettings {
  backend: 'auto' | StatsBackend;
  keyPrefix: string;
  retentionMs: number;
  minuteRetentionMs: number;
  appName: string;
}

/** Counts per time bucket, per series, from `from` to `to`: only buckets with clicks. */
export type BucketCounts = Array<{ ts: number } & Record<SeriesName, number>>;

export interface Counters {
  backend: StatsBackend;
  /** Queues the atomic count-and-acknowledge of one decision on a pipeline. */
  count(pipeline: ChainableCommander, stream: { key: string; group: string }, entryId: string, decision: CountableDecision): void;
  /**
   * Creates what the counts are kept in when missing (RedisTimeSeries: the series, their labels and
   * compaction rules, which TS.ADD alone would not), as after a Redis that restarted empty.
   */
  ensure(redis: Redis): Promise<void>;
  /** Whether the workers' lag is kept as a series (for the dashboard). */
  recordsLag: boolean;
  recordLag(redis: Redis, lag: number, atMs: number): Promise<void>;
  /** Counts in buckets of `bucketMs` (a multiple of a second) over [from, to]. */
  range(redis: Redis, from: number, to: number, bucketMs: number): Promise<BucketCounts>;
  /**
   * The longest range `range` reads for this bucket size, so that one read of statistics costs
   * Redis a bounded number of commands (at most about a hundred) whatever is asked.
   */
  maxRangeMs(bucketMs: number): number;
}

const HOUR_MS = 60 * MINUTE_MS;
const YIELD_EVERY_SPANS = 8;
const DAY_MS = 24 * HOUR_MS;

/**
 * Picks the counter store: RedisTimeSeries where the module is loaded (series and per-minute
 * compaction rules are created when missing), otherwise plain Redis hashes with the same
 * per-second buckets and retention.
 */
export async function prepareCounters(redis: Redis, capabilities: RedisCapabilities, settings: CountersSettings): Promise<Counters> {
  if (settings.backend === 'timeseries' && !capabilities.timeseries) {
    throw new Error('STATS_BACKEND=timeseries needs the RedisTimeSeries module (Redis Stack or Redis 8), which this Redis does not have');
  }
  const counters = settings.backend === 'timeseries' || (settings.backend === 'auto' && capabilities.timeseries) ? timeSeriesCounters(settings) : hashCounters(settings);
  await counters.ensure(redis);
  return counters;
}

async function createSeries(redis: Redis, { keyPrefix, retentionMs, minuteRetentionMs, appName }: CountersSettings): Promise<void> {
  const create = async (key: string, retention: number, labels: string[], duplicatePolicy: string) => {
    try {
      await redis.call('TS.CREATE', key, 'RETENTION', retention, 'DUPLICATE_POLICY', duplicatePolicy, 'LABELS', ...labels);
    } catch (error) {
      // Created before, or by another instance starting at the same moment.
      if (!/already exists/i.test((error as Error).message)) throw error;
    }
  };
  for (const series of SERIES) {
    const perSecond = timeSeriesKey(keyPrefix, series, '1s');
    const perMinute = timeSeriesKey(keyPrefix, series, '1m');
    await create(perSecond, retentionMs, seriesLabels(appName, series, '1s'), 'SUM');
    await create(perMinute, minuteRetentionMs, seriesLabels(appName, series, '1m'), 'SUM');
    try {
      await redis.call('TS.CREATERULE', perSecond, perMinute, 'AGGREGATION', 'sum', MINUTE_MS);
    } catch (error) {
      if (!/already has a (src|source) rule/i.test((error as Error).message)) throw error;
    }
  }
  await create(workerLagKey(keyPrefix), retentionMs, workerLagLabels(appName), 'LAST');
}

function timeSeriesCounters(settings: CountersSettings): Counters {
  const { keyPrefix } = settings;
  return {
    backend: 'timeseries',
    ensure: (redis) => createSeries(redis, settings),
    recordsLag: true,
    count(pipeline, stream, entryId, { fraudType, ts }) {
      const [total, typed] = [timeSeriesKey(keyPrefix, 'total', '1s'), timeSeriesKey(keyPrefix, fraudType, '1s')];
      // The compaction rules keep the per-minute sums: the last four keys and arguments are unused.
      pipeline.countDecision(stream.key, total, typed, total, typed, stream.group, entryId, 'timeseries', bucketStart(ts, SECOND_MS), 0, 0, 0);
    },
    // Four TS.RANGE calls whatever the range; a day of per-second samples, or 31 days of per-minute sums.
    maxRangeMs: (bucketMs) => (bucketMs % MINUTE_MS === 0 ? 31 * DAY_MS : DAY_MS),
    async recordLag(redis, lag, atMs) {
      await redis.call('TS.ADD', workerLagKey(keyPrefix), atMs, lag, 'ON_DUPLICATE', 'LAST');
    },
    async range(redis, from, to, bucketMs) {
      // Whole-minute buckets come from the per-minute sums, which are kept longer; LATEST adds the
      // minute still open, which the compaction has not written yet.
      const resolution = bucketMs % MINUTE_MS === 0 ? '1m' : '1s';
      const latest = resolution === '1m' ? ['LATEST'] : [];
      const pipeline = redis.pipeline();
      for (const series of SERIES) {
        pipeline.call('TS.RANGE', timeSeriesKey(keyPrefix, series, resolution), from, to, ...latest, 'AGGREGATION', 'sum', bucketMs);
      }
      // A series that does not exist (yet: Redis restarted empty, and no worker has recreated it) holds no counts.
      const replies = await execAll(pipeline, (error) => /key does not exist/i.test(error.message), []);
      const counts = new BucketMap();
      SERIES.forEach((series, i) => {
        for (const [ts, value] of replies[i] as Array<[number, string]>) counts.add(Number(ts), series, Number(value));
      });
      return counts.sorted();
    },
  };
}

/**
 * Plain Redis: per series, one hash per minute of per-second counts (`<prefix>counts:<series>:<minute
 * start ms>`, second start ms -> count), and one hash per hour of per-minute counts
 * (`<prefix>counts:<series>:h:<hour start ms>`), each expiring with retention. Whole-minute buckets
 * read the hourly hashes (a day: 25 per series), finer ones the minute hashes (an hour: 61 per series).
 */
function hashCounters({ keyPrefix, retentionMs }: CountersSettings): Counters {
  const minuteKey = (series: SeriesName, minute: number) => `${keyPrefix}counts:${series}:${minute}`;
  const hourKey = (series: SeriesName, hour: number) => `${keyPrefix}counts:${series}:h:${hour}`;
  /** HGETALL of every series for each span start, read as (field ms, count) in [from, to]. */
  const readSpans = async (redis: Redis, spanMs: number, key: typeof minuteKey, from: number, to: number, add: (ts: number, series: SeriesName, count: number) => void) => {
    const pipeline = redis.pipeline();
    const spans: number[] = [];
    for (let span = bucketStart(from, spanMs); span <= to; span += spanMs) {
      spans.push(span);
      // The raw reply, a flat [field, value, ...] list: ioredis' object form costs twice the time.
      for (const series of SERIES) pipeline.call('HGETALL', key(series, span));
    }
    const replies = await execAll(pipeline);
    for (let i = 0; i < spans.length; i++) {
      SERIES.forEach((series, s) => {
        const flat = replies[i * SERIES.length + s] as string[];
        for (let f = 0; f + 1 < flat.length; f += 2) {
          const ts = Number(flat[f]);
          if (ts >= from && ts <= to) add(ts, series, Number(flat[f + 1]));
        }
      });
      // An hour in seconds is 14,400 counts: let the clicks in between every few spans.
      if (i % YIELD_EVERY_SPANS === YIELD_EVERY_SPANS - 1) await new Promise((next) => setImmediate(next));
    }
  };
  return {
    backend: 'hash',
    // Hashes are created by the first count.
    ensure: async () => {},
    recordsLag: false,
    count(pipeline, stream, entryId, { fraudType, ts }) {
      const minute = bucketStart(ts, MINUTE_MS);
      const hour = bucketStart(ts, HOUR_MS);
      pipeline.countDecision(
        stream.key,
        minuteKey('total', minute),
        minuteKey(fraudType, minute),
        hourKey('total', hour),
        hourKey(fraudType, hour),
        stream.group,
        entryId,
        'hash',
        bucketStart(ts, SECOND_MS),
        minute + MINUTE_MS + retentionMs,
        minute,
        hour + HOUR_MS + retentionMs,
      );
    },
    maxRangeMs: (bucketMs) => (bucketMs % MINUTE_MS === 0 ? DAY_MS : HOUR_MS),
    async recordLag() {
      throw new Error('the hash counters keep no lag series');
    },
    async range(redis, from, to, bucketMs) {
      const counts = new BucketMap();
      const add = (ts: number, series: SeriesName, count: number) => counts.add(bucketStart(ts, bucketMs), series, count);
      if (bucketMs % MINUTE_MS === 0) await readSpans(redis, HOUR_MS, hourKey, from, to, add);
      else await readSpans(redis, MINUTE_MS, minuteKey, from, to, add);
      return counts.sorted();
    },
  };
}

class BucketMap {
  private readonly buckets = new Map<number, { ts: number } & Record<SeriesName, number>>();

  add(ts: number, series: SeriesName, value: number): void {
    let bucket = this.buckets.get(ts);
    if (!bucket) {
      bucket = { ts, clean: 0, ip_blacklist: 0, click_spam: 0, total: 0 };
      this.buckets.set(ts, bucket);
    }
    bucket[series] += value;
  }

  sorted(): BucketCounts {
    return [...this.buckets.values()].sort((a, b) => a.ts - b.ts);
  }
}

/** The replies of a pipeline; the first error fails it, unless `tolerated`, which answers `instead`. */
async function execAll(pipeline: ChainableCommander, tolerated: (error: Error) => boolean = () => false, instead?: unknown): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  return results.map(([error, reply]) => {
    if (error && tolerated(error)) return instead;
    if (error) throw error;
    return reply;
  });
}
