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
  /** Whether the workers' lag is kept as a series (for the dashboard). */
  recordsLag: boolean;
  recordLag(redis: Redis, lag: number, atMs: number): Promise<void>;
  /** Counts in buckets of `bucketMs` (a multiple of a second) over [from, to]. */
  range(redis: Redis, from: number, to: number, bucketMs: number): Promise<BucketCounts>;
}

/**
 * Picks the counter store: RedisTimeSeries where the module is loaded (series and per-minute
 * compaction rules are created when missing), otherwise plain Redis hashes with the same
 * per-second buckets and retention.
 */
export async function prepareCounters(redis: Redis, capabilities: RedisCapabilities, settings: CountersSettings): Promise<Counters> {
  if (settings.backend === 'timeseries' && !capabilities.timeseries) {
    throw new Error('STATS_BACKEND=timeseries needs the RedisTimeSeries module (Redis Stack or Redis 8), which this Redis does not have');
  }
  if (settings.backend === 'timeseries' || (settings.backend === 'auto' && capabilities.timeseries)) {
    await createSeries(redis, settings);
    return timeSeriesCounters(settings);
  }
  return hashCounters(settings);
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

function timeSeriesCounters({ keyPrefix }: CountersSettings): Counters {
  return {
    backend: 'timeseries',
    recordsLag: true,
    count(pipeline, stream, entryId, { fraudType, ts }) {
      pipeline.countDecision(
        stream.key,
        timeSeriesKey(keyPrefix, 'total', '1s'),
        timeSeriesKey(keyPrefix, fraudType, '1s'),
        stream.group,
        entryId,
        'timeseries',
        bucketStart(ts, SECOND_MS),
        0,
      );
    },
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
      const replies = await execAll(pipeline);
      const counts = new BucketMap();
      SERIES.forEach((series, i) => {
        for (const [ts, value] of replies[i] as Array<[number, string]>) counts.add(Number(ts), series, Number(value));
      });
      return counts.sorted();
    },
  };
}

/** Plain Redis: one hash per series and minute, `second start ms -> count`, expiring with retention. */
function hashCounters({ keyPrefix, retentionMs }: CountersSettings): Counters {
  const minuteKey = (series: SeriesName, minute: number) => `${keyPrefix}counts:${series}:${minute}`;
  return {
    backend: 'hash',
    recordsLag: false,
    count(pipeline, stream, entryId, { fraudType, ts }) {
      const minute = bucketStart(ts, MINUTE_MS);
      pipeline.countDecision(
        stream.key,
        minuteKey('total', minute),
        minuteKey(fraudType, minute),
        stream.group,
        entryId,
        'hash',
        bucketStart(ts, SECOND_MS),
        minute + MINUTE_MS + retentionMs,
      );
    },
    async recordLag() {
      throw new Error('the hash counters keep no lag series');
    },
    async range(redis, from, to, bucketMs) {
      const pipeline = redis.pipeline();
      const minutes: number[] = [];
      for (let minute = bucketStart(from, MINUTE_MS); minute <= to; minute += MINUTE_MS) {
        minutes.push(minute);
        for (const series of SERIES) pipeline.hgetall(minuteKey(series, minute));
      }
      const replies = await execAll(pipeline);
      const counts = new BucketMap();
      minutes.forEach((_, m) => {
        SERIES.forEach((series, s) => {
          for (const [second, value] of Object.entries(replies[m * SERIES.length + s] as Record<string, string>)) {
            const ts = Number(second);
            if (ts >= from && ts <= to) counts.add(bucketStart(ts, bucketMs), series, Number(value));
          }
        });
      });
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

async function execAll(pipeline: ChainableCommander): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? [];
  return results.map(([error, reply]) => {
    if (error) throw error;
    return reply;
  });
}
