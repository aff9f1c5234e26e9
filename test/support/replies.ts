/**
 * Module replies as the tests read them, whichever protocol the client spoke: the service's own
 * readers (src/redis/replies.ts), and a few only the tests need.
 */
import { pairs } from '../../src/redis/replies.js';

export { fieldMap, labelsOf, mrangeSeries, pairs, type Labels, type SeriesReply } from '../../src/redis/replies.js';

/** TS.INFO `rules`: RESP2 `[[dest, bucket, aggregation, align], ...]`, RESP3 `[dest, [bucket, aggregation, align], ...]`. */
export function rulesOf(reply: unknown): Array<{ dest: string; bucketMs: number; aggregation: string }> {
  const list = reply as unknown[];
  const entries: Array<[string, unknown[]]> =
    list.length > 0 && typeof list[0] === 'string'
      ? (pairs(list as string[]) as unknown as Array<[string, unknown[]]>)
      : (list as unknown[][]).map(([dest, ...rest]) => [dest as string, rest]);
  return entries.map(([dest, [bucketMs, aggregation]]) => ({ dest, bucketMs: Number(bucketMs), aggregation: String(aggregation).toLowerCase() }));
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
