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
  return {
    async decide(click) {
      const keys = deviceKeys(keyPrefix, click.device_id);
      const [fraudType, ts, streamId, duplicate] = await redis.checkClick(
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
      );
      if (!isFraudType(fraudType)) throw new Error(`checkClick answered an unknown fraud type: ${fraudType}`);
      return { fraudType, ts: Number(ts), streamId, duplicate: duplicate === 1 };
    },
  };
}
