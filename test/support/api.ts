import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { inject } from 'vitest';
import { parseConfig, type Config } from '../../src/config.js';
import { startApi, type ApiService } from '../../src/http/start-api.js';
import { isCluster, parseRedisAddress, type RedisClient } from '../../src/redis/connection.js';
import { keyspaceFor, type Keyspace } from '../../src/redis/keyspace.js';

export const redisUrl = inject('redisUrl');
export const redisStackUrl = inject('redisStackUrl') || undefined;
export const redisStackMissing = inject('redisStackMissing');
export const redisStackServerBin = inject('redisStackServerBin') || undefined;
export const redisClusterUrl = inject('redisClusterUrl') || undefined;
export const redisStackClusterUrl = inject('redisStackClusterUrl') || undefined;
/** How to run a Redis Stack cluster node (see local-cluster.ts), for tests that start a cluster of their own. */
export const redisStackNode = inject('redisStackNode') ? (JSON.parse(inject('redisStackNode')) as { binary: string; args: string[]; redisCli: string }) : undefined;

/** Settings for one test: defaults, a private key namespace, overrides last. */
export function testConfig(env: Record<string, string> = {}): Config & { namespace: string; env: Record<string, string> } {
  const id = randomUUID().slice(0, 8);
  const namespace = `test:${id}:`;
  const fullEnv = {
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    IP_CUCKOO_FILTER_NAME: `${namespace}ip_cf`,
    DECISION_STREAM_NAME: `${namespace}decisions`,
    DEAD_LETTER_STREAM_NAME: `${namespace}dead`,
    KEY_PREFIX: namespace,
    METRICS_APP_NAME: `test-${id}`,
    ...env,
  };
  const parsed = parseConfig(fullEnv);
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  return { ...parsed.config, namespace, env: fullEnv };
}

export interface TestApi {
  config: ReturnType<typeof testConfig>;
  service: ApiService;
  /** The Redis the API uses. */
  redisUrl: string;
  /** The API's key names. */
  keyspace: Keyspace;
  /** A device's window and verdicts keys, in its partition. */
  deviceKeys(deviceId: string): { window: string; verdicts: string };
  base: string;
  /** A separate client for looking at what the API wrote (a cluster client on a cluster, as redis-cli -c). */
  admin: RedisClient;
  post(body: unknown, headers?: Record<string, string>): Promise<Response>;
  click(deviceId: string, transactionId: string, ip?: string): Promise<ClickAnswer>;
  /** Blacklists addresses as an operator does with redis-cli: CF.ADDNX or SADD, per the backend in use. */
  block(...ips: string[]): Promise<void>;
  /** Every key the API wrote under this test's namespace. */
  writtenKeys(): Promise<string[]>;
  close(): Promise<void>;
}

export interface ClickAnswer {
  transaction_id: string;
  device_id: string;
  ip: string;
  status: string;
  fraud_type: string;
  ts: number;
  stream_id: string | null;
  duplicate: boolean;
  reason?: { rule: string; observed: number | string; limit?: number; window_sec?: number };
  shadow?: Array<{ rule: string; observed: number | string; limit?: number; window_sec?: number }>;
  allowlisted?: boolean;
  rules_version?: number;
  degraded?: boolean;
}

/** The real API (same composition as `npm start`) on a free port, against a real Redis. */
export async function startTestApi(env: Record<string, string> = {}, url = redisUrl, logger: Logger = pino({ level: 'silent' })): Promise<TestApi> {
  const config = testConfig(env);
  const service = await startApi(config, url, logger);
  const base = `http://127.0.0.1:${service.port}`;
  const admin = adminClient(url);
  // The outage tests stop Redis under this client; it reconnects by itself.
  admin.on('error', () => {});
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(base, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const keyspace = keyspaceFor(config, isCluster(url));
  return {
    config,
    service,
    redisUrl: url,
    keyspace,
    deviceKeys(deviceId) {
      const partition = keyspace.partitionOf(deviceId);
      return { window: partition.window(deviceId), verdicts: partition.verdicts(deviceId) };
    },
    base,
    admin,
    post,
    async click(deviceId, transactionId, ip = '10.0.0.1') {
      const res = await post({ device_id: deviceId, ip, transaction_id: transactionId });
      if (res.status !== 200) throw new Error(`POST / answered ${res.status}: ${await res.text()}`);
      return (await res.json()) as ClickAnswer;
    },
    async block(...ips) {
      const { backend, key } = service.blacklist;
      for (const ip of ips) await (backend === 'cuckoo' ? admin.call('CF.ADDNX', key, ip) : admin.sadd(key, ip));
    },
    async writtenKeys() {
      const keys: string[] = [];
      let cursor = '0';
      for (const node of admin instanceof Cluster ? admin.nodes('master') : [admin]) {
        do {
          const [next, batch] = await node.scan(cursor, 'MATCH', `${config.namespace}*`, 'COUNT', 1000);
          keys.push(...batch);
          cursor = next;
        } while (cursor !== '0');
      }
      return keys.sort();
    },
    async close() {
      await service.close();
      await dropSearchIndexes(admin, config.namespace);
      admin.disconnect();
    },
  };
}

/**
 * RediSearch indexes outlive their keys, so the ones the ban registry (and the CLI) created under
 * a test's namespace are dropped with it; a server without RediSearch has none.
 */
/** A plain client for a single Redis; for a cluster, one that follows it (redis-cli -c). */
export function adminClient(url: string): RedisClient {
  const address = parseRedisAddress(url);
  return address.kind === 'single' ? new Redis(address.url) : new Cluster(address.nodes);
}

export async function dropSearchIndexes(redis: RedisClient, namespace: string): Promise<void> {
  const indexes = (await redis.call('FT._LIST').catch(() => [])) as string[];
  for (const index of indexes.filter((name) => name.startsWith(namespace))) await redis.call('FT.DROPINDEX', index);
}

export const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** A logger that keeps every line it writes, to look at what a service logged. */
export function capturingLogger(level = 'info'): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const written: string[] = [];
  const logger = pino({ level }, { write: (line: string) => void written.push(line) });
  return { logger, lines: () => written.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

/**
 * Waits until the API has seen its event streams close. Requests sent while a cancelled stream was
 * still being torn down have left the API's close() waiting about 4 s, undici's keep-alive, for a
 * connection Node did not count as idle.
 */
export async function untilNoStreams(api: TestApi, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (api.service.eventStreams > 0) {
    if (Date.now() > deadline) throw new Error(`${api.service.eventStreams} event streams still open after ${timeoutMs} ms`);
    await sleep(10);
  }
}
