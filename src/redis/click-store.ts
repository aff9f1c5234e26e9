import type { Redis } from 'ioredis';
import type { Click } from '../domain/click.js';
import { isFraudType, type RecordedVerdict } from '../domain/verdict.js';
import type { Blacklist } from './blacklist.js';
import type { CommandGate } from './command-gate.js';
import type { ServerClock } from './server-clock.js';

export interface ClickStoreSettings {
  blacklist: Blacklist;
  keyPrefix: string;
  clickSpam: { threshold: number; windowMs: number };
  stream: { key: string; maxLen: number };
  /** Longest a click waits for Redis (REDIS_TIMEOUT_MS); a batch gets more, by its size. */
  timeoutMs: number;
}

export interface ClickStore {
  /** Decides a click and records it in its device's window and the decision stream, in one step. */
  decide(click: Click): Promise<RecordedVerdict>;
  /**
   * Decides clicks in order, in one round trip: each is the same atomic step as `decide`, so later
   * clicks of a device see the earlier ones. An entry is an Error where Redis failed that click.
   */
  decideMany(clicks: Click[]): Promise<Array<RecordedVerdict | Error>>;
}

/** The check ran after its deadline (its caller had given up) and recorded nothing. */
export class ClickExpiredError extends Error {
  constructor() {
    super('Redis reached the click after its deadline and recorded nothing');
  }
}

/**
 * A batch waits REDIS_TIMEOUT_MS plus this much for each of its clicks and for each click already
 * waiting for Redis in this process, ahead of it: a pipeline of 1,000 checks takes Redis 25 to 50 ms
 * on its own, and several times more behind other batches on a Redis that shares its cores.
 */
export const BATCH_MS_PER_CLICK = 1;

export function batchTimeoutMs(timeoutMs: number, clicks: number, waitingAhead: number): number {
  return timeoutMs + (clicks + waitingAhead) * BATCH_MS_PER_CLICK;
}

/**
 * The script gives up this much before its caller does, so that a check that starts just in time
 * still has its answer back before the caller answers 503: what the caller gives up on is never
 * decided. A fifth of the timeout, and never under 5 ms.
 */
function deadlineMargin(timeoutMs: number): number {
  return Math.max(5, Math.round(timeoutMs / 5));
}

/**
 * Keys of one device's window. The `{device}` hash tag keeps both on one cluster slot; the
 * different words after the prefix keep any device id from colliding with another's keys.
 */
export function deviceKeys(keyPrefix: string, deviceId: string): { window: string; verdicts: string } {
  return {
    window: `${keyPrefix}window:{${deviceId}}`,
    verdicts: `${keyPrefix}verdicts:{${deviceId}}`,
  };
}

/**
 * Every check goes through `gate` (a bounded number in flight, none while Redis is hung) and
 * carries a deadline on the server's clock, after which the script changes nothing.
 */
export function createClickStore(redis: Redis, clock: ServerClock, gate: CommandGate, settings: ClickStoreSettings): ClickStore {
  const { blacklist, keyPrefix, clickSpam, stream, timeoutMs } = settings;
  const args = (click: Click, deadlineMs: number) => {
    const keys = deviceKeys(keyPrefix, click.device_id);
    return [
      blacklist.key,
      keys.window,
      keys.verdicts,
      stream.key,
      blacklist.backend,
      click.ip,
      click.device_id,
      click.transaction_id,
      clickSpam.threshold,
      clickSpam.windowMs,
      stream.maxLen,
      deadlineMs,
    ] as const;
  };
  const deadline = (waitMs: number) => Math.floor(clock.now() + waitMs - deadlineMargin(waitMs));
  return {
    async decide(click) {
      const reply = await gate.run(1, timeoutMs, () => redis.checkClick(...args(click, deadline(timeoutMs))));
      return toVerdict(reply);
    },
    async decideMany(clicks) {
      const waitMs = batchTimeoutMs(timeoutMs, clicks.length, gate.inFlight);
      const deadlineMs = deadline(waitMs);
      const results = await gate.run(clicks.length, waitMs, async () => {
        const pipeline = redis.pipeline();
        for (const click of clicks) pipeline.checkClick(...args(click, deadlineMs));
        return (await pipeline.exec()) ?? [];
      });
      return results.map(([error, reply]) => {
        if (error) return error;
        try {
          return toVerdict(reply as CheckClickReply);
        } catch (failure) {
          return failure as Error;
        }
      });
    },
  };
}

type CheckClickReply = [fraudType: string, ts: string, streamId: string, duplicate: 0 | 1] | [expired: 'expired', ts: string];

function toVerdict(reply: CheckClickReply): RecordedVerdict {
  if (reply[0] === 'expired') throw new ClickExpiredError();
  const [fraudType, ts, streamId, duplicate] = reply as [string, string, string, 0 | 1];
  if (!isFraudType(fraudType)) throw new Error(`checkClick answered an unknown fraud type: ${fraudType}`);
  return { fraudType, ts: Number(ts), streamId, duplicate: duplicate === 1 };
}
