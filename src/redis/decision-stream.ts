import type { RedisClient } from './connection.js';
import { fieldMap } from './replies.js';

export interface StreamGroupState {
  /** Entries in the stream (capped by MAXLEN, so older ones may be gone). */
  length: number;
  /** Entries delivered to a worker and not yet counted. */
  pending: number;
  /** Entries not yet delivered to any worker; null when Redis cannot tell (after trimming past them). */
  lag: number | null;
  /** Nothing left to deliver and nothing pending. */
  drained: boolean;
}

/**
 * Creates the workers' consumer group when missing. It starts at the beginning of the stream, so
 * decisions the API wrote before the first worker ever ran are counted too.
 */
export async function ensureConsumerGroup(redis: RedisClient, streamKey: string, group: string): Promise<void> {
  try {
    await redis.xgroup('CREATE', streamKey, group, '0', 'MKSTREAM');
  } catch (error) {
    if (!/BUSYGROUP/.test((error as Error).message)) throw error;
  }
}

export async function streamGroupState(redis: RedisClient, streamKey: string, group: string): Promise<StreamGroupState> {
  const [stream, groups] = await Promise.all([
    redis.call('XINFO', 'STREAM', streamKey).catch(noSuchKey) as Promise<unknown[] | null>,
    redis.call('XINFO', 'GROUPS', streamKey).catch(noSuchKey) as Promise<unknown[][] | null>,
  ]);
  if (stream === null) return { length: 0, pending: 0, lag: 0, drained: true };
  const streamInfo = fieldMap(stream);
  const groupInfo = (groups ?? []).map(fieldMap).find((info) => info.get('name') === group);
  const length = Number(streamInfo.get('length'));
  if (!groupInfo) return { length, pending: 0, lag: null, drained: length === 0 };
  const pending = Number(groupInfo.get('pending'));
  const rawLag = groupInfo.get('lag');
  const lag = rawLag === null || rawLag === undefined ? null : Number(rawLag);
  const delivered = groupInfo.get('last-delivered-id') === streamInfo.get('last-generated-id');
  return { length, pending, lag, drained: delivered && pending === 0 };
}

function noSuchKey(error: Error): null {
  if (/no such key/i.test(error.message)) return null;
  throw error;
}
