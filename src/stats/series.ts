import { FRAUD_TYPES, type FraudType } from '../domain/verdict.js';

/** One count series per verdict, and one for all clicks. */
export const SERIES = [...FRAUD_TYPES, 'total'] as const;
export type SeriesName = FraudType | 'total';

export type Resolution = '1s' | '1m';

export const SECOND_MS = 1000;
export const MINUTE_MS = 60_000;

/**
 * RedisTimeSeries keys: per-second counts (`<prefix>ts:<series>`), their per-minute compaction
 * (`<prefix>ts:<series>:1m`), and the workers' lag (`<prefix>ts:worker_lag`).
 */
export function timeSeriesKey(keyPrefix: string, series: SeriesName, resolution: Resolution): string {
  return resolution === '1s' ? `${keyPrefix}ts:${series}` : `${keyPrefix}ts:${series}:1m`;
}

export function workerLagKey(keyPrefix: string): string {
  return `${keyPrefix}ts:worker_lag`;
}

/**
 * Labels a dashboard selects series by, e.g.
 * `TS.MRANGE - + FILTER app=click-fraud metric=clicks resolution=1s fraud_type=(clean,ip_blacklist,click_spam)`.
 */
export function seriesLabels(appName: string, series: SeriesName, resolution: Resolution): string[] {
  return ['app', appName, 'metric', 'clicks', 'fraud_type', series, 'resolution', resolution];
}

export function workerLagLabels(appName: string): string[] {
  return ['app', appName, 'metric', 'worker_lag'];
}
