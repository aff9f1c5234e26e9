import type { Redis } from 'ioredis';
import type { Click } from '../domain/click.js';
import { isFraudType, type RecordedVerdict } from '../domain/verdict.js';
import type { Blacklist } from './blacklist.js';

export interface ClickStoreSettings {
  blacklist: Blacklist;
  keyPrefix: string;
  clickSpam: { threshold: number; windowMs: number };
  stream: { key: string; maxLen: number };
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

export function createClickStore(redis: Redis, settings: ClickStoreSettings): ClickStore {
  const { blacklist, keyPrefix, clickSpam, stream } = settings;
  const args = (click: Click) => {
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
    ] as const;
  };
  return {
    async decide(click) {
      return toVerdict(await redis.checkClick(...args(click)));
    },
    async decideMany(clicks) {
      const pipeline = redis.pipeline();
      for (const click of clicks) pipeline.checkClick(...args(click));
      const results = (await pipeline.exec()) ?? [];
      return results.map(([error, reply]) => error ?? toVerdict(reply as CheckClickReply));
    },
  };
}

type CheckClickReply = [fraudType: string, ts: string, streamId: string, duplicate: 0 | 1];

function toVerdict([fraudType, ts, streamId, duplicate]: CheckClickReply): RecordedVerdict {
  if (!isFraudType(fraudType)) throw new Error(`checkClick answered an unknown fraud type: ${fraudType}`);
  return { fraudType, ts: Number(ts), streamId, duplicate: duplicate === 1 };
}
