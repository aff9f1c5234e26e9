/**
 * Replies as the service reads them, whichever protocol the client spoke. ioredis 6 speaks RESP3
 * by default and flattens RESP3 maps into `[name, value, ...]` arrays (its "legacy" reply mapping),
 * which is the shape RESP2 gives XINFO; but replies that RESP2 nests as pairs arrive with another
 * nesting:
 *
 *   TS.INFO labels   RESP2 [[name, value], ...]           RESP3 [name, value, ...]
 *   TS.MRANGE        RESP2 [[key, labels, samples], ...]  RESP3 [key, [labels, ...metadata maps, samples], ...]
 *
 * Each reader below takes both (test/redis-stack.test.ts checks that against a real server).
 */

/** A flat `[name, value, name, value, ...]` reply (XINFO, TS.INFO) as a map. */
export function fieldMap(flat: unknown[]): Map<string, unknown> {
  const map = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(String(flat[i]), flat[i + 1]);
  return map;
}

/** A flat `[name, value, ...]` list (stream entry fields, label lists) as pairs. */
export function pairs<T = string>(flat: T[]): Array<[T, T]> {
  const out: Array<[T, T]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}

export type Labels = Record<string, string>;

/** Labels as RESP2 (`[[name, value], ...]`) or RESP3 (`[name, value, ...]`) send them. */
export function labelsOf(reply: unknown): Labels {
  const list = reply as unknown[];
  if (list.every(Array.isArray)) return Object.fromEntries(list as Array<[string, string]>);
  return Object.fromEntries(pairs(list as string[]));
}

export interface SeriesReply {
  key: string;
  labels: Labels;
  samples: Array<[ts: number, value: number]>;
}

/** TS.MRANGE (and TS.MREVRANGE), with or without WITHLABELS or GROUPBY, in either protocol. */
export function mrangeSeries(reply: unknown): SeriesReply[] {
  const list = reply as unknown[];
  const samplesOf = (raw: unknown) => (raw as Array<[number, string]>).map(([ts, value]): [number, number] => [Number(ts), Number(value)]);
  // RESP3: a map from key to [labels, ...metadata (aggregators, or reducers and sources), samples].
  if (list.length > 0 && typeof list[0] === 'string') {
    return pairs(list).map(([key, raw]) => {
      const parts = raw as unknown[];
      return { key: key as string, labels: labelsOf(parts[0]), samples: samplesOf(parts[parts.length - 1]) };
    });
  }
  return (list as Array<[string, unknown, unknown]>).map(([key, labels, samples]) => ({ key, labels: labelsOf(labels), samples: samplesOf(samples) }));
}
