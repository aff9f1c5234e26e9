import type { RequestHandler } from 'express';
import { z } from 'zod';
import type { Counters } from '../redis/counters.js';
import type { RedisClient } from '../redis/connection.js';
import { streamGroupState, type StreamGroupState } from '../redis/decision-stream.js';
import type { Keyspace } from '../redis/keyspace.js';
import { MINUTE_MS, SECOND_MS, SERIES, seriesKind, seriesLabel } from '../stats/series.js';
import type { ConcurrencyLimit } from './concurrency-limit.js';
import { epochMs, parseQuery, rangeOf, readInTurn } from './statistics-reads.js';

const DAY_MS = 86_400_000;
const DEFAULT_RANGE_MS = 15 * MINUTE_MS;
const MAX_BUCKETS = 10_000;

export const querySchema = z.object({
  from: epochMs('from'),
  to: epochMs('to'),
  bucket: z
    .string()
    .regex(/^\d{1,12}$/, 'bucket must be a whole number of ms')
    .transform(Number)
    .pipe(
      z
        .number()
        .min(SECOND_MS, { error: 'bucket must be at least 1000 ms', abort: true })
        .multipleOf(SECOND_MS, 'bucket must be a whole number of seconds'),
    )
    .default(SECOND_MS),
});

export interface StatsRouteDependencies {
  redis: RedisClient;
  counters: Counters;
  keyspace: Keyspace;
  /** The workers' consumer group. */
  group: string;
  /** Shared with /offenders (createStatsReads). */
  reads: ConcurrencyLimit;
}

/**
 * `GET /stats?from=&to=&bucket=`: counts per fraud type in time buckets, totals over the range, and
 * how far the workers are behind. Ranges are bounded so that one request costs bounded work: a day
 * of per-second data, or 31 days in whole-minute buckets where RedisTimeSeries keeps per-minute sums.
 */
export function statsRoute({ redis, counters, keyspace, group, reads }: StatsRouteDependencies): RequestHandler {
  return async (req, res) => {
    const query = parseQuery(res, querySchema, req.query, 'stats');
    if (query === undefined) return;
    const { bucket } = query;
    const maxRangeMs = counters.maxRangeMs(bucket);
    const range = rangeOf(res, query, {
      defaultMs: DEFAULT_RANGE_MS,
      maxMs: maxRangeMs,
      maxText: `${describeSpan(maxRangeMs)} for this bucket on the ${counters.backend} counters`,
      what: 'stats',
      more: (from, to) => ((to - from) / bucket > MAX_BUCKETS ? [{ path: 'bucket', message: `the range must hold at most ${MAX_BUCKETS} buckets` }] : []),
    });
    if (range === undefined) return;
    const { from, to } = range;

    const read = await readInTurn(res, reads, 'stats', () =>
      Promise.all([counters.range(redis, from, to, bucket), streamsState(redis, keyspace, group), deadLetterCount(redis, keyspace)]),
    );
    if (read === undefined) return;
    const [buckets, state, deadLetters] = read;
    const totals = Object.fromEntries(SERIES.map((series) => [series, buckets.reduce((sum, b) => sum + (b[series] ?? 0), 0)]));
    res.json({
      from,
      to,
      bucket_ms: bucket,
      backend: counters.backend,
      buckets,
      totals,
      series: SERIES_INFO,
      stream: { length: state.length, pending: state.pending, lag: state.lag, dead_letters: deadLetters },
    });
  };
}

/** What each series is, for a reader that shows them (the live page): its kind and a label for people. */
const SERIES_INFO = SERIES.map((name) => ({ name, kind: seriesKind(name), label: seriesLabel(name) }));

function describeSpan(ms: number): string {
  return ms % DAY_MS === 0 ? `${ms / DAY_MS} day(s)` : `${ms / 3_600_000} hour(s)`;
}

/** The partitions' streams as one: lengths, pending and lag added up (lag null if any is unknown). */
async function streamsState(redis: RedisClient, keyspace: Keyspace, group: string): Promise<StreamGroupState> {
  const states = await Promise.all(keyspace.partitions.map((partition) => streamGroupState(redis, partition.stream, group)));
  return {
    length: states.reduce((sum, state) => sum + state.length, 0),
    pending: states.reduce((sum, state) => sum + state.pending, 0),
    lag: states.some((state) => state.lag === null) ? null : states.reduce((sum, state) => sum + state.lag!, 0),
    drained: states.every((state) => state.drained),
  };
}

async function deadLetterCount(redis: RedisClient, keyspace: Keyspace): Promise<number> {
  const lengths = await Promise.all(keyspace.partitions.map((partition) => redis.xlen(partition.deadLetters)));
  return lengths.reduce((sum, length) => sum + length, 0);
}
