import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { settledBy } from '../deadline.js';
import { detectCapabilities, type RedisCapabilities } from './capabilities.js';
import { defineScripts } from './scripts.js';

export interface RedisClientOptions {
  url: string;
  /**
   * Longest any command may take before it fails; null for none, where every caller bounds its own
   * waits (the click path, see command-gate.ts: a command that timed out in ioredis stays queued).
   */
  timeoutMs: number | null;
  connectionName: string;
  logger: Logger;
}

/**
 * A client for request paths, tuned so that a Redis outage turns into fast errors rather than
 * queued work: while disconnected, commands fail at once instead of waiting in an offline queue,
 * and commands cut off by a dropped connection are not re-sent later (a click answered 503 must
 * not be recorded minutes afterwards). It reconnects by itself, forever, with a capped back-off.
 */
export function createRedisClient({ url, timeoutMs, connectionName, logger }: RedisClientOptions): Redis {
  const redis = new Redis(url, {
    // RESP3, ioredis 6's default, with its "legacy" reply mapping: maps arrive flattened as
    // [name, value, ...], the shape RESP2 gives XINFO, so the readers in replies.ts see one shape.
    // (Module replies that RESP2 nests as pairs, TS.INFO labels and TS.MRANGE, differ; the service
    // reads none of them.)
    protocol: 3,
    lazyConnect: true,
    connectionName,
    ...(timeoutMs === null ? {} : { commandTimeout: timeoutMs }),
    connectTimeout: Math.max(timeoutMs ?? 0, 2000),
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
  });
  defineScripts(redis);
  logConnectionChanges(redis, logger.child({ redis: connectionName }));
  return redis;
}

/** One line when the connection is lost and one when it is back, not one per retry. */
function logConnectionChanges(redis: Redis, logger: Logger): void {
  let healthy = true;
  redis.on('error', (error: Error) => {
    if (!healthy) return;
    healthy = false;
    logger.warn({ err: error.message }, 'Redis connection lost; retrying');
  });
  redis.on('ready', () => {
    if (healthy) return;
    healthy = true;
    logger.info('Redis connection restored');
  });
}

/** The URL with any password masked, for logs and /readyz (ioredis also reads one from `?password=`). */
export function redactedUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
  return parsed.toString();
}

/** A connected client and what its server can do; fails with one clear line when Redis is unreachable. */
export async function connectRedis(options: RedisClientOptions): Promise<{ redis: Redis; capabilities: RedisCapabilities }> {
  const redis = createRedisClient(options);
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Error(`cannot reach Redis at ${redactedUrl(options.url)}: ${(error as Error).message}`);
  }
  try {
    return { redis, capabilities: await detectCapabilities(redis) };
  } catch (error) {
    redis.disconnect();
    throw error;
  }
}

/** A QUIT unanswered for this long means Redis is hung: waiting longer only delays the exit. */
const QUIT_WAIT_MS = 1000;

/**
 * Closes a client by `deadlineMs` (unix ms): QUIT when it is connected, so that what it sent is
 * answered first; cut when QUIT goes unanswered, or at once when Redis is away (QUIT would wait).
 */
export async function closeRedis(redis: Redis, deadlineMs: number): Promise<void> {
  if (redis.status === 'ready') await settledBy(redis.quit(), Math.min(deadlineMs, Date.now() + QUIT_WAIT_MS));
  redis.disconnect();
}
