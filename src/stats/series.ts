import { RULE_LABELS, RULES, type RuleName } from '../domain/rules.js';
import { FRAUD_TYPES, type FraudType } from '../domain/verdict.js';

export type ShadowSeriesName = `shadow_${RuleName}`;

/** The series counting a rule's hits in shadow mode (beside the verdict, which they did not change). */
export function shadowSeries(rule: RuleName): ShadowSeriesName {
  return `shadow_${rule}`;
}

/**
 * One count series per verdict, one for all clicks, and one per rule for its shadow hits: all of
 * them derived from the rules (domain/rules.ts), so a new rule is counted with no change here.
 */
export const SERIES = [...FRAUD_TYPES, 'total', ...RULES.map(shadowSeries)] as const;
export type SeriesName = FraudType | 'total' | ShadowSeriesName;

export type Resolution = '1s' | '1m';

export const SECOND_MS = 1000;
export const MINUTE_MS = 60_000;

/**
 * Labels a dashboard selects series by, e.g.
 * `TS.MRANGE - + FILTER app=click-fraud metric=clicks resolution=1s GROUPBY fraud_type REDUCE sum`:
 * each partition has its own series (see keyspace.ts), and the sum over partitions is the total.
 */
export function seriesLabels(appName: string, series: SeriesName, resolution: Resolution, partition: number): string[] {
  return ['app', appName, 'metric', 'clicks', 'fraud_type', series, 'kind', seriesKind(series), 'resolution', resolution, 'partition', String(partition)];
}

/**
 * What a series counts: `verdict` (clicks given that verdict: clean or a rule's), `total` (all
 * clicks), or `shadow` (hits of a rule in shadow mode). Dashboards select by it, so that a new rule
 * shows up with no change to them.
 */
export function seriesKind(series: SeriesName): 'verdict' | 'total' | 'shadow' {
  return series === 'total' ? 'total' : series.startsWith('shadow_') ? 'shadow' : 'verdict';
}

export function workerLagLabels(appName: string, partition: number): string[] {
  return ['app', appName, 'metric', 'worker_lag', 'partition', String(partition)];
}

export type SeriesCounts = Record<SeriesName, number>;

/** Every series at 0: the totals of a range with no clicks. */
export function zeroCounts(): SeriesCounts {
  return Object.fromEntries(SERIES.map((series) => [series, 0])) as SeriesCounts;
}

/** A series for people: `Click spam (device too fast)`, `Shadow: Address flood (address too fast)`, `All clicks`. */
export function seriesLabel(series: SeriesName): string {
  if (series === 'total') return 'All clicks';
  if (series.startsWith('shadow_')) return `Shadow: ${RULE_LABELS[series.slice('shadow_'.length) as RuleName]}`;
  return RULE_LABELS[series as FraudType];
}
