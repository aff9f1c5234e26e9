import { FRAUD_TYPES, type FraudType } from '../domain/verdict.js';

/** One count series per verdict, and one for all clicks. */
export const SERIES = [...FRAUD_TYPES, 'total'] as const;
export type SeriesName = FraudType | 'total';

export type Resolution = '1s' | '1m';

export const SECOND_MS = 1000;
export const MINUTE_MS = 60_000;

/**
 * Labels a dashboard selects series by, e.g.
 * `TS.MRANGE - + FILTER app=click-fraud metric=clicks resolution=1s GROUPBY fraud_type REDUCE sum`:
 * each partition has its own series (see keyspace.ts), and the sum over partitions is the total.
 */
export function seriesLabels(appName: string, series: SeriesName, resolution: Resolution, partition: number): string[] {
  return ['app', appName, 'metric', 'clicks', 'fraud_type', series, 'resolution', resolution, 'partition', String(partition)];
}

export function workerLagLabels(appName: string, partition: number): string[] {
  return ['app', appName, 'metric', 'worker_lag', 'partition', String(partition)];
}
