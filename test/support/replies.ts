/**
 * Module replies as the tests read them, whichever protocol the client spoke. ioredis 6 speaks
 * RESP3 by default (HELLO 3) and flattens RESP3 maps into `[name, value, ...]` arrays, so a reply
 * that RESP2 gives as a list of pairs (TS.INFO labels, TS.MRANGE) arrives with another nesting:
 *
 *   TS.INFO labels   RESP2 [[name, value], ...]           RESP3 [name, value, ...]
 *   TS.MRANGE        RESP2 [[key, labels, samples], ...]  RESP3 [key, [labels, ...metadata maps, samples], ...]
 *
 * Each reader below takes both (test/redis-stack.test.ts checks that against a real server).
 */
export { fieldMap } from '../../src/redis/replies.js';

/** A flat `[name, value, ...]` list (stream entry fields, label lists) as pairs. */
export function pairs(flat: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
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

/** TS.INFO `rules`: RESP2 `[[dest, bucket, aggregation, align], ...]`, RESP3 `[dest, [bucket, aggregation, align], ...]`. */
export function rulesOf(reply: unknown): Array<{ dest: string; bucketMs: number; aggregation: string }> {
  const list = reply as unknown[];
  const entries: Array<[string, unknown[]]> =
    list.length > 0 && typeof list[0] === 'string'
      ? (pairs(list as string[]) as unknown as Array<[string, unknown[]]>)
      : (list as unknown[][]).map(([dest, ...rest]) => [dest as string, rest]);
  return entries.map(([dest, [bucketMs, aggregation]]) => ({ dest, bucketMs: Number(bucketMs), aggregation: String(aggregation).toLowerCase() }));
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
    return pairs(list as string[]).map(([key, raw]) => {
      const parts = raw as unknown as unknown[];
      return { key, labels: labelsOf(parts[0]), samples: samplesOf(parts[parts.length - 1]) };
    });
  }
  return (list as Array<[string, unknown, unknown]>).map(([key, labels, samples]) => ({ key, labels: labelsOf(labels), samples: samplesOf(samples) }));
}

/** MODULE LIST as names and versions (`20802` is 2.8.2); the error text where MODULE is refused. */
export function moduleList(reply: unknown): Array<{ name: string; version: string }> | string {
  if (typeof reply === 'string') return reply;
  return (reply as unknown[][]).map((entry) => {
    const info = new Map(pairs(entry as string[]));
    const ver = Number(info.get('ver'));
    return { name: String(info.get('name')), version: `${Math.floor(ver / 10_000)}.${Math.floor(ver / 100) % 100}.${ver % 100}` };
  });
}
