import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { Redis } from 'ioredis';
import { createRecord, readRecord, recordRedis, removeOwnRecord, removeRecord, type DataFolderRecord } from './data-folder.js';
import { portFreeOr, startLocalRedis, type LocalRedisServer } from './local-server.js';

/**
 * One private Redis per data folder: the service (`npm start` with no Redis configured) starts it
 * and records it in the folder; every other command finds it there.
 */

export class DataFolderInUse extends Error {}
export class NoPrivateRedis extends Error {}

/** How long a command waits for a service that is still starting its Redis. */
const START_WAIT_MS = 15_000;
/** How long a Redis left running by a crashed service gets to shut down (it writes its AOF first). */
const SHUTDOWN_WAIT_MS = 10_000;
/** Claiming either succeeds, refuses, or clears one abandoned record and tries again: this many times at most. */
const CLAIM_ATTEMPTS = 3;

export interface PrivateRedis {
  server: LocalRedisServer;
  /** The port asked for (REDIS_PRIVATE_PORT), and whether the server got it. */
  preferredPort: number;
  gotPreferredPort: boolean;
  /** What a service that ended without stopping had left in the folder and what was done about it. */
  cleared: string | undefined;
  /** Stops the server (it writes its AOF first), then gives the folder up. */
  stop(): Promise<void>;
}

export interface PrivateRedisOptions {
  dataDir: string;
  binary: string;
  /** This port when it is free, else any free one; 0 for any. */
  preferredPort: number;
}

/** Claims the data folder, starts its Redis and records where it listens. */
export async function startPrivateRedis({ dataDir, binary, preferredPort }: PrivateRedisOptions): Promise<PrivateRedis> {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const cleared = await claim(dir);
  let server: LocalRedisServer | undefined;
  try {
    const { port, preferredFree } = await portFreeOr(preferredPort);
    server = await startLocalRedis({ dataDir: dir, port, binary });
    recordRedis(dir, { url: server.url, pid: server.pid, run_id: await runIdOf(server.url), program: binary });
    const started = server;
    return {
      server,
      preferredPort,
      gotPreferredPort: preferredFree,
      cleared,
      async stop() {
        await started.stop();
        removeOwnRecord(dir);
      },
    };
  } catch (error) {
    await server?.stop();
    removeOwnRecord(dir);
    throw error;
  }
}

/**
 * The address of the Redis that a running service keeps in `dataDir`. Waits a little for one that
 * is still starting; fails with a line saying what to do when no service runs there.
 */
export async function privateRedisUrl(dataDir: string, waitMs = START_WAIT_MS): Promise<string> {
  const dir = resolve(dataDir);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const read = readRecord(dir);
    if (read.state === 'held' && read.record?.redis) return read.record.redis.url;
    if (read.state !== 'held') {
      const ended = read.state === 'abandoned' && read.record ? ` (the service that ran one there, pid ${read.record.service_pid}, has ended)` : '';
      throw new NoPrivateRedis(`No REDIS_URL set, and no service runs a private Redis in ${dir}${ended}: start the service there first (npm start), set REDIS_DATA_DIR to its folder, or set REDIS_URL`);
    }
    if (Date.now() >= deadline) {
      throw new NoPrivateRedis(`The service (pid ${read.record?.service_pid ?? 'unknown'}) that holds ${dir} has not started its Redis within ${waitMs / 1000} s; see its log, or set REDIS_URL`);
    }
    await new Promise((done) => setTimeout(done, 100));
  }
}

async function claim(dir: string): Promise<string | undefined> {
  let cleared: string | undefined;
  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    if (createRecord(dir)) return cleared;
    const read = readRecord(dir);
    if (read.state === 'held') throw new DataFolderInUse(inUseMessage(dir, read.record));
    if (read.state === 'abandoned') cleared = await clearAbandoned(dir, read.record);
  }
  throw new DataFolderInUse(`Cannot claim ${dir}: its ${readRecord(dir).state} record keeps coming back; is another service starting there?`);
}

function inUseMessage(dir: string, record: DataFolderRecord | undefined): string {
  const who = record ? `Another service (pid ${record.service_pid})` : 'Another service';
  const url = record?.redis?.url;
  return url === undefined
    ? `${who} is starting the private Redis of ${dir}: stop it first, or set REDIS_DATA_DIR to another folder`
    : `${who} already runs the private Redis of ${dir} on ${url}: stop it first, set REDIS_URL=${url} to share that Redis, or set REDIS_DATA_DIR to another folder`;
}

/**
 * A service that ended without stopping (killed, or past its shutdown deadline) leaves its record,
 * and for a moment its Redis too: the leash stops that Redis, but it takes a while to write its
 * AOF. That Redis, when it still answers as the recorded run, is shut down before the folder is
 * used again, so two servers never share the AOF.
 */
async function clearAbandoned(dir: string, record: DataFolderRecord | undefined): Promise<string> {
  const redis = record?.redis;
  if (redis && (await runIdOf(redis.url).catch(() => undefined)) === redis.run_id) {
    await shutDown(redis.url, redis.pid);
    removeRecord(dir);
    return `stopped the private Redis (pid ${redis.pid}, ${redis.url}) that a service (pid ${record!.service_pid}) had left running`;
  }
  removeRecord(dir);
  return `cleared the record of a service (pid ${record?.service_pid ?? 'unknown'}) that ended without stopping`;
}

function probe(url: string): Redis {
  const redis = new Redis(url, { lazyConnect: true, connectTimeout: 1000, commandTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  return redis;
}

async function runIdOf(url: string): Promise<string> {
  const redis = probe(url);
  try {
    await redis.connect();
    const runId = /^run_id:(\w+)/m.exec(await redis.info('server'))?.[1];
    if (runId === undefined) throw new Error(`${url} did not say its run_id`);
    return runId;
  } finally {
    redis.disconnect();
  }
}

async function shutDown(url: string, pid: number): Promise<void> {
  const redis = probe(url);
  try {
    await redis.connect();
    // The server closes the connection as its answer.
    await redis.call('SHUTDOWN').catch(() => {});
  } finally {
    redis.disconnect();
  }
  for (const deadline = Date.now() + SHUTDOWN_WAIT_MS; processExists(pid); await new Promise((done) => setTimeout(done, 50))) {
    if (Date.now() >= deadline) throw new DataFolderInUse(`The private Redis (pid ${pid}, ${url}) left running by an ended service did not stop within ${SHUTDOWN_WAIT_MS / 1000} s`);
  }
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
