import type { Logger } from 'pino';
import { readLiveDecision, type LiveDecision } from '../domain/decision-entry.js';
import { formatCursor, isBehind, parseCursor, type FeedCursor } from '../domain/feed-cursor.js';
import { compareStreamIds } from '../domain/stream-id.js';
import type { RedisClient } from '../redis/connection.js';

/** One decision, already formatted for the wire (formatted once, sent to everyone). */
export interface FeedEntry {
  /** The partition whose stream holds it, and its id there. */
  partition: number;
  streamId: string;
  text: string;
}

export interface FeedSubscriber {
  /** Entries in time order, each after everything delivered before: no gaps, no repeats. */
  deliver(entries: readonly FeedEntry[]): void;
  /** Resolves once the subscriber can take more (its connection drained); paces the replay. */
  writable(): Promise<void>;
  /** The replay was longer than the feed replays: the entries after `after`, up to `until` (event ids), were skipped. */
  skipped(after: string, until: string): void;
  /** The feed let go of the subscriber: too many live entries queued up while it was replaying. */
  dropped(reason: string): void;
}

export interface Subscription {
  /** Replays what the streams hold after the resume point, then switches the subscriber to live entries. */
  catchUp(): Promise<void>;
  unsubscribe(): void;
}

export interface DecisionFeed {
  /**
   * Joins the feed, from now on, or right after `resumeAfter` (the event id the subscriber saw
   * last; check it with `parseResume` first). Rejects when Redis cannot say where the streams end,
   * i.e. Redis is unavailable.
   */
  subscribe(subscriber: FeedSubscriber, resumeAfter?: string): Promise<Subscription>;
  /** Whether `eventId` is an event id of this feed (a client's Last-Event-ID). */
  parseResume(eventId: string): boolean;
  /** Subscribers now joined. */
  readonly size: number;
  /** Stops following and closes the follower's connection. */
  close(): Promise<void>;
}

export interface DecisionFeedSettings {
  /** The decision stream of each partition, in partition order. */
  streamKeys: string[];
  /**
   * How long one read waits for new entries: one XREAD BLOCK with a single stream; with several
   * (which one blocked read cannot follow on a cluster) the longest pause between polls of them.
   * The follower's connection must time out later than this.
   */
  blockMs: number;
  /** Entries per XREAD and per replayed XRANGE page, per stream. */
  pageSize: number;
  /** Most entries replayed to one resuming subscriber; past it the rest is skipped and said so. */
  maxReplay: number;
  /** Most live entries queued for one subscriber while it replays; past it the subscriber is dropped. */
  maxQueued: number;
  /** Turns a decision into what subscribers are sent; `eventId` is what they send back to resume after it. */
  format(eventId: string, decision: LiveDecision): string;
}

interface Member {
  subscriber: FeedSubscriber;
  /** Last stream id delivered (or skipped) per partition: anything at or before it is never sent again. */
  last: FeedCursor;
  /** Live entries held back while the member replays; undefined once it is live. */
  queue: FeedEntry[] | undefined;
}

type RawEntry = [id: string, fields: string[]];

const MAX_BACKOFF_MS = 2000;
/** Polls of several streams start again after this when they found nothing, doubling up to blockMs. */
const FIRST_POLL_WAIT_MS = 10;

export class FeedClosed extends Error {
  constructor() {
    super('the decision feed is closed');
  }
}

/**
 * Follows the decision streams for every live-page client of this process at once: ONE connection
 * reads them in a loop (`XREAD BLOCK` with a single stream; a poll of each partition's stream, with
 * a growing pause while nothing comes, with several), merges what it reads in time order, and each
 * entry is formatted once and handed to every subscriber. So a connected page costs a share of one
 * read loop, never a poll of its own.
 *
 * The follower only runs while someone is subscribed: reading every decision costs the API CPU in
 * proportion to the click rate, which is wasted when no page is open. It stops after its current
 * read once the last subscriber has left, and starts again from the then newest entries.
 *
 * A subscriber that resumes after an event id (a reconnecting page's `Last-Event-ID`, a cursor of
 * every partition, see feed-cursor.ts) joins in two steps: its live entries are queued from the
 * moment it joins, the entries between its cursor and the follower's position at that moment are
 * replayed with bounded `XRANGE` pages on the normal connection, merged in time order, then the
 * queue is flushed. Every delivery skips what is at or before the last id sent in its partition, so
 * the overlap of the two is sent once and nothing in between is missed.
 */
export function createDecisionFeed(follower: RedisClient, reader: RedisClient, settings: DecisionFeedSettings, logger: Logger): DecisionFeed {
  const { streamKeys, blockMs, pageSize, maxReplay, maxQueued, format } = settings;
  const partitions = streamKeys.length;
  const members = new Set<Member>();
  /** The last stream id the follower has read and handed out, per partition. */
  let position: FeedCursor = Array<string>(partitions).fill('0-0');
  /** Set while the follower runs: resolves once it knows where the streams end. */
  let started: Promise<void> | undefined;
  let stopped: Promise<void> = Promise.resolve();
  let closed = false;

  /**
   * Entries of several streams in time order (ties by partition), each formatted with the cursor
   * after it, starting from `cursor` (which is left after the last of them).
   */
  function toFeedEntries(raw: Array<{ partition: number; entry: RawEntry }>, cursor: FeedCursor): FeedEntry[] {
    raw.sort((a, b) => compareStreamIds(a.entry[0], b.entry[0]) || a.partition - b.partition);
    const entries: FeedEntry[] = [];
    for (const { partition, entry: [id, fields] } of raw) {
      cursor[partition] = id;
      const decision = readLiveDecision(fields);
      if (decision) entries.push({ partition, streamId: id, text: format(formatCursor(cursor), decision) });
    }
    return entries;
  }

  function deliverNew(member: Member, entries: readonly FeedEntry[]): void {
    const fresh = entries.filter((entry) => compareStreamIds(entry.streamId, member.last[entry.partition]!) > 0);
    if (fresh.length === 0) return;
    for (const entry of fresh) member.last[entry.partition] = entry.streamId;
    member.subscriber.deliver(fresh);
  }

  function fanOut(entries: FeedEntry[]): void {
    for (const member of members) {
      if (member.queue === undefined) {
        deliverNew(member, entries);
      } else if (member.queue.length + entries.length > maxQueued) {
        members.delete(member);
        member.subscriber.dropped(`more than ${maxQueued} new decisions arrived while it was replaying`);
      } else {
        member.queue.push(...entries);
      }
    }
  }

  async function newest(): Promise<FeedCursor> {
    const replies = await Promise.all(streamKeys.map((key) => reader.xrevrange(key, '+', '-', 'COUNT', 1)));
    return replies.map(([entry]) => entry?.[0] ?? '0-0');
  }

  /** Starts the follower unless it runs; resolves once its starting position is known. */
  function follow(): Promise<void> {
    started ??= (async () => {
      position = await newest();
    })().then(
      () => {
        stopped = readLoop();
      },
      (error: unknown) => {
        started = undefined;
        throw error;
      },
    );
    return started;
  }

  /** What the streams hold after the follower's position: one blocked read, or one poll of each. */
  async function readOnce(pollWaitMs: number): Promise<Array<{ partition: number; entry: RawEntry }>> {
    type XreadReply = Array<[key: string, entries: RawEntry[]]> | null;
    if (partitions === 1) {
      const reply = (await follower.xread('COUNT', pageSize, 'BLOCK', blockMs, 'STREAMS', streamKeys[0]!, position[0]!)) as XreadReply;
      return (reply?.[0]?.[1] ?? []).map((entry) => ({ partition: 0, entry }));
    }
    const replies = (await Promise.all(streamKeys.map((key, p) => follower.xread('COUNT', pageSize, 'STREAMS', key, position[p]!)))) as XreadReply[];
    const raw = replies.flatMap((reply, partition) => (reply?.[0]?.[1] ?? []).map((entry) => ({ partition, entry })));
    if (raw.length === 0) await new Promise((done) => setTimeout(done, pollWaitMs));
    return raw;
  }

  async function readLoop(): Promise<void> {
    let failures = 0;
    let pollWaitMs = FIRST_POLL_WAIT_MS;
    for (;;) {
      // Checked and cleared in one synchronous step, so a subscriber that joins right after sees
      // no follower and starts a new one.
      if (closed || members.size === 0) {
        started = undefined;
        return;
      }
      try {
        const raw = await readOnce(pollWaitMs);
        if (failures > 0) logger.info('live decision feed: reading the stream again');
        failures = 0;
        pollWaitMs = raw.length === 0 ? Math.min(pollWaitMs * 2, blockMs) : FIRST_POLL_WAIT_MS;
        if (raw.length === 0 || closed) continue;
        const next = [...position];
        const entries = toFeedEntries(raw, next);
        position = next;
        fanOut(entries);
      } catch (error) {
        if (closed) continue;
        if (failures === 0) logger.warn({ err: (error as Error).message }, 'live decision feed cannot read the stream; retrying');
        failures += 1;
        await new Promise((done) => setTimeout(done, Math.min(100 * 2 ** failures, MAX_BACKOFF_MS)));
      }
    }
  }

  /**
   * Replays each partition's entries between the member's cursor and `until`, a page per stream at
   * a time, merged in time order: an entry is sent once every stream with more to come has been read
   * past it.
   */
  async function catchUp(member: Member, until: FeedCursor): Promise<void> {
    let replayed = 0;
    const buffered: RawEntry[][] = streamKeys.map(() => []);
    const exhausted = streamKeys.map((_, p) => compareStreamIds(member.last[p]!, until[p]!) >= 0);
    /** Where each stream's reading has got to (the member's cursor, or the last buffered entry). */
    const readTo = [...member.last];
    while (members.has(member)) {
      await Promise.all(
        streamKeys.map(async (key, p) => {
          if (exhausted[p] || buffered[p]!.length > 0) return;
          const page = (await reader.xrange(key, `(${readTo[p]}`, until[p]!, 'COUNT', pageSize)) as RawEntry[];
          buffered[p] = page;
          if (page.length > 0) readTo[p] = page[page.length - 1]![0];
          if (page.length < pageSize) exhausted[p] = true;
        }),
      );
      if (buffered.every((page) => page.length === 0)) break;
      if (replayed >= maxReplay) {
        member.subscriber.skipped(formatCursor(member.last), formatCursor(until));
        member.last = [...until];
        break;
      }
      // Safe to send up to the earliest last-read id of a stream that has more to come.
      const open = buffered.flatMap((page, p) => (exhausted[p] ? [] : [page[page.length - 1]![0]]));
      const bound = open.sort(compareStreamIds)[0];
      const ready: Array<{ partition: number; entry: RawEntry }> = [];
      buffered.forEach((page, partition) => {
        const cut = bound === undefined ? page.length : page.findIndex((entry) => compareStreamIds(entry[0], bound) > 0);
        const take = cut === -1 ? page.length : cut;
        ready.push(...page.slice(0, take).map((entry) => ({ partition, entry })));
        buffered[partition] = page.slice(take);
      });
      replayed += ready.length;
      const entries = toFeedEntries(ready, member.last);
      if (entries.length > 0) member.subscriber.deliver(entries);
      await member.subscriber.writable();
    }
    if (!members.has(member) || member.queue === undefined) return;
    const queued = member.queue;
    member.queue = undefined;
    deliverNew(member, queued);
  }

  return {
    parseResume: (eventId) => parseCursor(eventId, partitions) !== undefined,
    async subscribe(subscriber, resumeAfter) {
      if (closed) throw new FeedClosed();
      const resume = resumeAfter === undefined ? undefined : parseCursor(resumeAfter, partitions);
      const member: Member = { subscriber, last: resume ?? [...position], queue: [] };
      // Joined before the follower may start, so that it does not stop for want of subscribers.
      members.add(member);
      try {
        await follow();
      } catch (error) {
        members.delete(member);
        throw error;
      }
      // Everything the follower hands out from here on is queued for this member, so replaying up
      // to the follower's position now leaves no gap.
      const until = [...position];
      if (resume === undefined) member.last = [...until];
      else if (isBehind(until, resume)) {
        // An id newer than anything its stream holds would otherwise hear nothing until the stream
        // caught up with it, maybe never (`99999999999999999999-0`). Such a stream resumes from its
        // live end instead, not with a 400: that would make EventSource give up for good, and an
        // honest page gets such an id from a Redis that restarted empty, whose new stream has
        // smaller ids than the ones it saw (a clock that ran ahead, a failover). An id only ahead
        // of the follower, whose read has not returned yet, stays as is.
        try {
          const ends = await newest();
          member.last = member.last.map((id, p) => (compareStreamIds(id, ends[p]!) > 0 ? until[p]! : id));
        } catch (error) {
          members.delete(member);
          throw error;
        }
      }
      return {
        catchUp: () => catchUp(member, until),
        unsubscribe: () => void members.delete(member),
      };
    },
    get size() {
      return members.size;
    },
    async close() {
      closed = true;
      members.clear();
      // A blocked XREAD would hold the follower for up to blockMs: cut it instead.
      follower.disconnect();
      await stopped;
    },
  };
}
