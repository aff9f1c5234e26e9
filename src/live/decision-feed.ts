import type { RedisClient } from '../redis/connection.js';
import type { Logger } from 'pino';
import { readLiveDecision, type LiveDecision } from '../domain/decision-entry.js';
import { compareStreamIds } from '../domain/stream-id.js';

/** One decision of the stream, already formatted for the wire (formatted once, sent to everyone). */
export interface FeedEntry {
  id: string;
  text: string;
}

export interface FeedSubscriber {
  /** Entries in stream order, each after everything delivered before: no gaps, no repeats. */
  deliver(entries: readonly FeedEntry[]): void;
  /** Resolves once the subscriber can take more (its connection drained); paces the replay. */
  writable(): Promise<void>;
  /** The replay was longer than the feed replays: the entries after `after`, up to `until`, were skipped. */
  skipped(after: string, until: string): void;
  /** The feed let go of the subscriber: too many live entries queued up while it was replaying. */
  dropped(reason: string): void;
}

export interface Subscription {
  /** Replays what the stream holds after the resume id, then switches the subscriber to live entries. */
  catchUp(): Promise<void>;
  unsubscribe(): void;
}

export interface DecisionFeed {
  /**
   * Joins the feed, from now on, or right after `resumeAfter` (a stream id the subscriber saw last).
   * Rejects when Redis cannot say where the stream ends, i.e. Redis is unavailable.
   */
  subscribe(subscriber: FeedSubscriber, resumeAfter?: string): Promise<Subscription>;
  /** Subscribers now joined. */
  readonly size: number;
  /** Stops following and closes the follower's connection. */
  close(): Promise<void>;
}

export interface DecisionFeedSettings {
  streamKey: string;
  /** How long one XREAD waits for new entries; the follower's connection must time out later than this. */
  blockMs: number;
  /** Entries per XREAD and per replayed XRANGE page. */
  pageSize: number;
  /** Most entries replayed to one resuming subscriber; past it the rest is skipped and said so. */
  maxReplay: number;
  /** Most live entries queued for one subscriber while it replays; past it the subscriber is dropped. */
  maxQueued: number;
  /** Turns a decision into what subscribers are sent. */
  format(id: string, decision: LiveDecision): string;
}

interface Member {
  subscriber: FeedSubscriber;
  /** Last stream id delivered (or skipped): anything at or before it is never sent again. */
  lastId: string;
  /** Live entries held back while the member replays; undefined once it is live. */
  queue: FeedEntry[] | undefined;
}

const MAX_BACKOFF_MS = 2000;

export class FeedClosed extends Error {
  constructor() {
    super('the decision feed is closed');
  }
}

/**
 * Follows the decision stream for every live-page client of this process at once: ONE connection
 * runs `XREAD BLOCK` from the newest entry in a loop, and each entry is formatted once and handed
 * to every subscriber. So a connected page costs a share of one blocked read, never a poll of its own.
 *
 * The follower only runs while someone is subscribed: reading every decision costs the API CPU in
 * proportion to the click rate, which is wasted when no page is open. It stops after its current
 * read once the last subscriber has left, and starts again from the then newest entry.
 *
 * A subscriber that resumes after a stream id (a reconnecting page's `Last-Event-ID`) joins in
 * two steps: its live entries are queued from the moment it joins, the entries between its id and
 * the follower's position at that moment are replayed with bounded `XRANGE` pages on the normal
 * connection, then the queue is flushed. Every delivery skips ids at or before the last one sent,
 * so the overlap of the two is sent once and nothing in between is missed.
 */
export function createDecisionFeed(follower: RedisClient, reader: RedisClient, settings: DecisionFeedSettings, logger: Logger): DecisionFeed {
  const { streamKey, blockMs, pageSize, maxReplay, maxQueued, format } = settings;
  const members = new Set<Member>();
  /** The last stream id the follower has read and handed out. */
  let position = '0-0';
  /** Set while the follower runs: resolves once it knows where the stream ends. */
  let started: Promise<void> | undefined;
  let stopped: Promise<void> = Promise.resolve();
  let closed = false;

  function toFeedEntries(raw: Array<[id: string, fields: string[]]>): FeedEntry[] {
    const entries: FeedEntry[] = [];
    for (const [id, fields] of raw) {
      const decision = readLiveDecision(fields);
      if (decision) entries.push({ id, text: format(id, decision) });
    }
    return entries;
  }

  function deliverNew(member: Member, entries: readonly FeedEntry[]): void {
    const fresh = entries.filter((entry) => compareStreamIds(entry.id, member.lastId) > 0);
    if (fresh.length === 0) return;
    member.lastId = fresh[fresh.length - 1]!.id;
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

  /** Starts the follower unless it runs; resolves once its starting position is known. */
  function follow(): Promise<void> {
    started ??= (async () => {
      const [newest] = await reader.xrevrange(streamKey, '+', '-', 'COUNT', 1);
      position = newest?.[0] ?? '0-0';
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

  /**
   * True when `id` is newer than anything in the stream. A subscriber resuming after such an id
   * would otherwise hear nothing until the stream caught up with it, maybe never
   * (`99999999999999999999-0`). It resumes from the live end instead, not with a 400: that would
   * make EventSource give up for good, and an honest page gets such an id from a Redis that
   * restarted empty, whose new stream has smaller ids than the ones it saw (a clock that ran ahead,
   * a failover). An id only ahead of the follower, whose read has not returned yet, stays as is.
   */
  async function isPastStreamEnd(id: string): Promise<boolean> {
    const [newest] = await reader.xrevrange(streamKey, '+', '-', 'COUNT', 1);
    return newest === undefined || compareStreamIds(id, newest[0]) > 0;
  }

  async function readLoop(): Promise<void> {
    let failures = 0;
    for (;;) {
      // Checked and cleared in one synchronous step, so a subscriber that joins right after sees
      // no follower and starts a new one.
      if (closed || members.size === 0) {
        started = undefined;
        return;
      }
      try {
        const reply = (await follower.xread('COUNT', pageSize, 'BLOCK', blockMs, 'STREAMS', streamKey, position)) as
          | Array<[key: string, entries: Array<[id: string, fields: string[]]>]>
          | null;
        if (failures > 0) logger.info('live decision feed: reading the stream again');
        failures = 0;
        const raw = reply?.[0]?.[1] ?? [];
        if (raw.length === 0) continue;
        position = raw[raw.length - 1]![0];
        fanOut(toFeedEntries(raw));
      } catch (error) {
        if (closed) continue;
        if (failures === 0) logger.warn({ err: (error as Error).message }, 'live decision feed cannot read the stream; retrying');
        failures += 1;
        await new Promise((done) => setTimeout(done, Math.min(100 * 2 ** failures, MAX_BACKOFF_MS)));
      }
    }
  }

  async function catchUp(member: Member, until: string): Promise<void> {
    let replayed = 0;
    while (members.has(member) && compareStreamIds(member.lastId, until) < 0) {
      if (replayed >= maxReplay) {
        member.subscriber.skipped(member.lastId, until);
        member.lastId = until;
        break;
      }
      const page = await reader.xrange(streamKey, `(${member.lastId}`, until, 'COUNT', pageSize);
      if (page.length === 0) break;
      replayed += page.length;
      const entries = toFeedEntries(page);
      member.lastId = page[page.length - 1]![0];
      if (entries.length > 0) member.subscriber.deliver(entries);
      await member.subscriber.writable();
    }
    if (!members.has(member) || member.queue === undefined) return;
    const queued = member.queue;
    member.queue = undefined;
    deliverNew(member, queued);
  }

  return {
    async subscribe(subscriber, resumeAfter) {
      if (closed) throw new FeedClosed();
      const member: Member = { subscriber, lastId: resumeAfter ?? '0-0', queue: [] };
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
      const until = position;
      if (resumeAfter === undefined) member.lastId = until;
      else if (compareStreamIds(resumeAfter, until) > 0) {
        try {
          if (await isPastStreamEnd(resumeAfter)) member.lastId = until;
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
