import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';
import { detectCapabilities } from '../../src/redis/capabilities.js';
import { RedisServerNotInstalled, startLocalRedis } from '../../src/redis/local-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A real Redis every test may use (keys are namespaced per test). */
    redisUrl: string;
    /** A Redis with RedisBloom and RedisTimeSeries, or '' when there is none. */
    redisStackUrl: string;
    /** Why there is no module-enabled Redis, for the skipped tests to say. */
    redisStackMissing: string;
  }
}

const STACK_IMAGE = process.env.REDIS_STACK_IMAGE ?? 'redis/redis-stack-server:7.4.0-v3';

/**
 * Finds the Redis the tests run against, in this order: REDIS_URL; a private redis-server from
 * PATH; a Redis Stack container through testcontainers where a Docker engine is reachable.
 * Module-enabled tests use REDIS_STACK_URL, else the server above if it has the modules, else a
 * Redis Stack container; with none of those they are skipped and say why.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cleanups: Array<() => Promise<void>> = [];
  const redisStack = memo(async () => {
    const { GenericContainer, Wait } = await import('testcontainers');
    const container = await new GenericContainer(STACK_IMAGE)
      .withExposedPorts(6379)
      .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
      .start();
    cleanups.push(async () => void (await container.stop()));
    return `redis://${container.getHost()}:${container.getMappedPort(6379)}`;
  });

  let redisUrl = process.env.REDIS_URL;
  let source = 'REDIS_URL';
  if (!redisUrl) {
    try {
      const dataDir = mkdtempSync(join(tmpdir(), 'click-fraud-test-redis-'));
      const server = await startLocalRedis({ dataDir });
      cleanups.push(async () => {
        await server.stop();
        rmSync(dataDir, { recursive: true, force: true });
      });
      redisUrl = server.url;
      source = 'a private redis-server from PATH';
    } catch (error) {
      if (!(error instanceof RedisServerNotInstalled)) throw error;
      redisUrl = await redisStack().catch((dockerError: Error) => {
        throw new Error(`No Redis for the tests: set REDIS_URL, install redis-server, or run a Docker engine (${dockerError.message})`);
      });
      source = `a ${STACK_IMAGE} container (testcontainers)`;
    }
  }

  let stackUrl = process.env.REDIS_STACK_URL ?? '';
  let stackMissing = '';
  if (!stackUrl) {
    if (await hasModules(redisUrl)) stackUrl = redisUrl;
    else {
      try {
        stackUrl = await redisStack();
      } catch (error) {
        stackMissing = `no module-enabled Redis: REDIS_STACK_URL is not set, ${source} has no RedisBloom/RedisTimeSeries, and testcontainers found no Docker engine (${(error as Error).message.split('\n')[0]})`;
      }
    }
  }

  console.log(`[tests] Redis: ${source} (${redisUrl})`);
  console.log(stackUrl ? `[tests] Redis Stack: ${stackUrl}` : `[tests] skipping Redis Stack tests: ${stackMissing}`);
  project.provide('redisUrl', redisUrl);
  project.provide('redisStackUrl', stackUrl);
  project.provide('redisStackMissing', stackMissing);

  return async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
}

async function hasModules(url: string): Promise<boolean> {
  const redis = new Redis(url, { lazyConnect: true });
  try {
    await redis.connect();
    const capabilities = await detectCapabilities(redis);
    return capabilities.bloom && capabilities.timeseries;
  } finally {
    redis.disconnect();
  }
}

function memo<T>(make: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= make());
}
