import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { settledBy } from '../deadline.js';
import { detectCapabilities, type RedisCapabilities } from './capabilities.js';
import { defineScripts, SCRIPTS_WITH_KEY_COUNT } from './scripts.js';

/** A single Redis or a Redis Cluster: every module here works with either. */
export type RedisClient = Redis | Cluster;

/**
 * Where Redis is, as one string passed from the settings to every part (and to API processes):
 * `redis://` or `rediss://` for one server, `redis-cluster://` or `rediss-cluster://` followed by
 * the credentials and the comma-separated seed nodes for a cluster (built from REDIS_CLUSTER_NODES).
 */
export type RedisAddress =
  | { kind: 'single'; url: string }
  | { kind: 'cluster'; nodes: Array<{ host: string; port: number }>; username?: string; password?: string; tls: boolean };

const CLUSTER_SCHEME = /^(rediss?)-cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/?$/;

export function parseRedisAddress(address: string): RedisAddress {
  const cluster = CLUSTER_SCHEME.exec(address);
  if (!cluster) return { kind: 'single', url: address };
  const [, scheme, username, password, hosts] = cluster;
  return {
    kind: 'cluster',
    nodes: hosts!.split(',').map((node) => {
      const at = node.lastIndexOf(':');
      return { host: node.slice(0, at).replace(/^\[|\]$/g, ''), port: Number(node.slice(at + 1)) };
    }),
    ...(username ? { username: decodeURIComponent(username) } : {}),
    ...(password ? { password: decodeURIComponent(password) } : {}),
    tls: scheme === 'rediss',
  };
}

export function isCluster(address: string): boolean {
  return parseRedisAddress(address).kind === 'cluster';
}

export interface RedisClientOptions {
  /** A RedisAddress string. */
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
 * not be recorded minutes afterwards). It reconnects by itself, forever, with a capped back-off;
 * a cluster client also follows the cluster as masters fail over (MOVED, a refreshed slot map).
 */
export function createRedisClient({ url, timeoutMs, connectionName, logger }: RedisClientOptions): RedisClient {
  const address = parseRedisAddress(url);
  const options: RedisOptions = {
    // RESP3, ioredis 6's default, with its "legacy" reply mapping: maps arrive flattened as
    // [name, value, ...], the shape RESP2 gives XINFO; replies.ts reads the module replies that
    // the two protocols nest differently (TS.MRANGE).
    protocol: 3,
    connectionName,
    ...(timeoutMs === null ? {} : { commandTimeout: timeoutMs }),
    connectTimeout: Math.max(timeoutMs ?? 0, 2000),
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
  };
  const retry = (attempt: number) => Math.min(attempt * 100, 2000);
  const client: RedisClient =
    address.kind === 'single'
      ? new Redis(address.url, {
          ...options,
          lazyConnect: true,
          enableOfflineQueue: false,
          enableAutoPipelining: true,
          // The click store sends the clicks of a whole turn of the event loop in one checkClicks
          // call already; auto-pipelining would hold each call back until the answer to the
          // previous pipeline is in (it runs one at a time), leaving the process idle meanwhile.
          autoPipeliningIgnoredCommands: ['checkClicks'],
          retryStrategy: retry,
        })
      : new Cluster(address.nodes, {
          lazyConnect: true,
          enableOfflineQueue: false,
          enableAutoPipelining: true,
          autoPipeliningIgnoredCommands: SCRIPTS_WITH_KEY_COUNT,
          clusterRetryStrategy: retry,
          // After a failover the old master's slots answer MOVED or CLUSTERDOWN for a moment.
          retryDelayOnFailover: 100,
          retryDelayOnClusterDown: 100,
          slotsRefreshTimeout: 2000,
          // A master killed without a word is only noticed when its slots are asked again.
          slotsRefreshInterval: 2000,
          redisOptions: {
            ...options,
            ...(address.username ? { username: address.username } : {}),
            ...(address.password ? { password: address.password } : {}),
            ...(address.tls ? { tls: {} } : {}),
          },
        });
  defineScripts(client);
  logConnectionChanges(client, logger.child({ redis: connectionName }));
  return client;
}

/** One line when the connection is lost and one when it is back, not one per retry. */
function logConnectionChanges(redis: RedisClient, logger: Logger): void {
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

/** The address with any password masked, for logs and /readyz (ioredis also reads one from `?password=`). */
export function redactedUrl(url: string): string {
  const address = parseRedisAddress(url);
  if (address.kind === 'cluster') {
    const scheme = address.tls ? 'rediss-cluster' : 'redis-cluster';
    const credentials = address.password ? `${address.username ?? ''}:***@` : address.username ? `${address.username}@` : '';
    return `${scheme}://${credentials}${address.nodes.map(({ host, port }) => `${host}:${port}`).join(',')}`;
  }
  const parsed = new URL(address.url);
  if (parsed.password) parsed.password = '***';
  if (parsed.searchParams.has('password')) parsed.searchParams.set('password', '***');
  return parsed.toString();
}

/** A connected client and what its server can do; fails with one clear line when Redis is unreachable. */
export async function connectRedis(options: RedisClientOptions): Promise<{ redis: RedisClient; capabilities: RedisCapabilities }> {
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
export async function closeRedis(redis: RedisClient, deadlineMs: number): Promise<void> {
  if (redis.status === 'ready') await settledBy(redis.quit(), Math.min(deadlineMs, Date.now() + QUIT_WAIT_MS));
  redis.disconnect();
}
