import { compareStreamIds, isStreamId } from './stream-id.js';

/**
 * Where a live-page client is in the decisions: the last stream id it has seen in each partition's
 * stream. With one partition that is one stream id, and the event id a browser sends back as
 * `Last-Event-ID` is exactly that id. With several, ids of different streams say nothing about each
 * other (two streams on two masters, two clocks), so every event carries the whole cursor, written
 * compactly: `<base-36 ms of the earliest>_<part>.<part>...`, each part the base-36 ms after the
 * earliest, with `-<seq>` when the sequence number is not 0. Twelve partitions take about 60 bytes.
 */
export type FeedCursor = string[];

const PART = /^([0-9a-z]{1,11})(?:-(\d{1,20}))?$/;

export function formatCursor(cursor: FeedCursor): string {
  if (cursor.length === 1) return cursor[0]!;
  const parts = cursor.map((id) => {
    const [ms = '0', seq = '0'] = id.split('-');
    return { ms: Number(ms), seq };
  });
  const base = Math.min(...parts.map((part) => part.ms));
  return `${base.toString(36)}_${parts.map(({ ms, seq }) => `${(ms - base).toString(36)}${seq === '0' ? '' : `-${seq}`}`).join('.')}`;
}

/**
 * A cursor for `partitions` streams from what a client sent: one as `formatCursor` writes it, or a
 * single stream id, which stands for that id in every stream. Undefined for anything else.
 */
export function parseCursor(text: string, partitions: number): FeedCursor | undefined {
  if (isStreamId(text)) return Array<string>(partitions).fill(text);
  if (partitions === 1) return undefined;
  const match = /^([0-9a-z]{1,11})_(.+)$/.exec(text);
  if (!match) return undefined;
  const base = parseInt(match[1]!, 36);
  const parts = match[2]!.split('.');
  if (parts.length !== partitions) return undefined;
  const cursor: FeedCursor = [];
  for (const part of parts) {
    const read = PART.exec(part);
    if (!read) return undefined;
    const ms = base + parseInt(read[1]!, 36);
    // Past what a Number holds exactly: no clock time.
    if (!Number.isSafeInteger(ms)) return undefined;
    cursor.push(`${ms}-${read[2] ?? '0'}`);
  }
  return cursor;
}

/** True when `cursor` is past `other` in no stream and behind it in at least one. */
export function isBehind(cursor: FeedCursor, other: FeedCursor): boolean {
  return cursor.some((id, p) => compareStreamIds(id, other[p]!) < 0);
}
