import type { DataFrame } from '@grafana/data';
import { grafana } from './grafana-data.js';

/**
 * What the Redis Data Source plugin (redis-datasource 2.2.0, RedisGrafana/grafana-redis-datasource)
 * does with a TS.MRANGE target: the command its backend sends and the data frames it answers
 * (pkg/redis-time-series.go, queryTsMRange), as Grafana's frontend decodes them.
 */

/** A target as the dashboard JSON stores it: the plugin's query model (pkg/types.go, queryModel). */
export interface PluginTarget {
  refId?: string;
  datasource?: { type?: string; uid?: string };
  type?: string;
  command?: string;
  query?: string;
  keyName?: string;
  filter?: string;
  aggregation?: string;
  bucket?: unknown;
  legend?: string;
  value?: string;
  fill?: boolean;
  streaming?: boolean;
  tsGroupByLabel?: string;
  tsReducer?: string;
}

/**
 * A TS.MRANGE … WITHLABELS reply in RESP2, the only protocol of the plugin's client (radix v3):
 * per series `[key, [[label, value], …], [[timestamp ms, value], …]]`.
 *
 * With `GROUPBY <label> REDUCE <reducer>`, RedisTimeSeries answers in the same shape, one entry per
 * value of the label: the key is `<label>=<value>`, the labels are only `[<label>, <value>]`,
 * `[__reducer__, <reducer>]` and `[__source__, <the keys of the series reduced, comma-separated>]`,
 * and the samples are the reducer over those series at each timestamp (after AGGREGATION). On a
 * cluster every master answers for every shard, but lists `__source__` in an order of its own.
 */
export type TsMRangeReply = Array<[string, Array<[string, string]>, Array<[number, string]>]>;

/** The TS.MRANGE command the plugin sends for a target over [from, to], with its filter split into terms. */
export function tsMRangeCommand(target: PluginTarget, from: number, to: number, filter: string[]): [string, ...Array<string | number>] {
  return [
    'ts.mrange',
    String(from),
    to,
    // Without an aggregation the plugin sends the bucket as a stray argument (the dashboard test
    // keeps one on every target).
    ...(target.aggregation ? ['AGGREGATION', target.aggregation, target.bucket as number] : [target.bucket as number]),
    'WITHLABELS',
    'FILTER',
    ...filter,
    ...(target.tsGroupByLabel ? ['GROUPBY', target.tsGroupByLabel, 'REDUCE', target.tsReducer!] : []),
  ];
}

/**
 * The frames the plugin makes of a TS.MRANGE reply, one per series:
 * - the frame is named by the series' `legend` label (its key when there is no legend);
 * - a `time` field, and a number field named by the series' `value` label, or '' without one; with
 *   a legend the number field has no labels;
 * - with `fill`, each bucket missing between two samples is a 0.
 * They travel as the plugin SDK's frame JSON, which leaves out empty names, and are decoded with the
 * frontend's own dataFrameFromJSON.
 *
 * A grouped reply (tsGroupByLabel) goes through the very same code: the plugin only appends GROUPBY
 * and REDUCE to the command and has no branch for the reply (queryTsMRange in
 * pkg/redis-time-series.go at v2.2.0; its unit test "test groupby/reduction" expects the frame of
 * the legend-less group `foo=bar` to be named "foo=bar"). So each group is one frame; a legend or
 * value label other than the group label (or `__reducer__`, `__source__`) names it '', and without a
 * legend the frame takes the `<label>=<value>` key and its number field all three labels.
 */
export function tsMRangeFrames(target: PluginTarget, reply: TsMRangeReply): DataFrame[] {
  const bucket = Number(target.bucket ?? 0);
  return reply.map(([key, labelPairs, samples]) => {
    const labels = Object.fromEntries(labelPairs);
    // A Go map answers '' for a label the series does not have.
    const name = target.legend ? (labels[target.legend] ?? '') : key;
    const valueName = target.value ? (labels[target.value] ?? '') : '';
    const times: number[] = [];
    const values: number[] = [];
    for (const [timestamp, value] of samples) {
      const previous = times.at(-1);
      if (target.fill && bucket !== 0 && previous !== undefined) {
        for (let gap = previous + bucket; gap < timestamp; gap += bucket) {
          times.push(gap);
          values.push(0);
        }
      }
      times.push(timestamp);
      values.push(Number.parseFloat(value));
    }
    return grafana.dataFrameFromJSON({
      schema: {
        name: name || undefined,
        fields: [
          { name: 'time', type: grafana.FieldType.time },
          { name: valueName, type: grafana.FieldType.number, ...(target.legend ? {} : { labels }) },
        ],
      },
      data: { values: [times, values] },
    });
  });
}
