import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';
import { detectCapabilities } from '../../src/redis/capabilities.js';
import { startLocalCluster } from '../../src/redis/local-cluster.js';
import { findRedisServer, RedisServerNotInstalled, startLocalRedis } from '../../src/redis/local-server.js';
import { moduleList } from './replies.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A real Redis every test may use (keys are namespaced per test). */
    redisUrl: string;
    /** A Redis with RedisBloom, RedisTimeSeries and RediSearch, or '' when there is none. */
    redisStackUrl: string;
    /** Why there is no module-enabled Redis, for the skipped tests to say. */
    redisStackMissing: string;
    /** A Redis Stack server program the tests may run themselves, or ''. */
    redisStackServerBin: string;
    /** A Redis Cluster (3 masters, 1 replica each) of plain Redis, as a redis-cluster:// address, or ''. */
    redisClusterUrl: string;
    /** The same of Redis Stack, or ''. */
    redisStackClusterUrl: string;
    /** How to run a Redis Stack node (program and arguments), for tests that start a cluster of their own; '' without one. */
    redisStackNode: string;
  }
}

const STACK_IMAGE = process.env.REDIS_STACK_IMAGE ?? 'redis/redis-stack-server:7.4.0-v3';
/** Where `bash scripts/install-redis-stack.sh` puts Redis Stack (as .ci/run does). */
const INSTALLED_STACK = new URL('../../.cache/redis-stack/', import.meta.url).pathname;
/**
 * From that folder the tests load exactly the modules the service uses into its redis-server; its
 * redis-stack-server script would also load RedisGears, which nothing here needs.
 */
const INSTALLED_STACK_SERVER = {
  binary: `${INSTALLED_STACK}bin/redis-server`,
  args: ['redisbloom', 'redistimeseries', 'redisearch', 'rejson'].flatMap((name) => ['--loadmodule', `${INSTALLED_STACK}lib/${name}.so`]),
};

/**
 * Finds the Redis servers the tests run against.
 *
 * Every test: REDIS_URL; else a private plain `redis-server` from PATH (so the set blacklist and the
 * hash counters are what the default backends pick); else a Redis Stack container (testcontainers).
 *
 * Module tests (cuckoo filter, RedisTimeSeries, RediSearch, the Grafana queries): REDIS_STACK_URL;
 * else the server above when it has the modules; else a private Redis Stack server
 * (REDIS_STACK_SERVER_BIN, `.cache/redis-stack`, or `redis-stack-server` on PATH); else a Redis Stack
 * container. With none they are skipped and say why, unless REQUIRE_REDIS_STACK=1 (CI), which makes
 * a missing Redis Stack fail the run instead: a skipped module test is a gap, not a pass.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const cleanups: Array<() => Promise<void>> = [];
  const privateServer = async (binary: string, args: string[] = []) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'click-fraud-test-redis-'));
    const server = await startLocalRedis({ dataDir, binary, args });
    cleanups.push(async () => {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });
    return server.url;
  };
  const container = memo(async () => {
    const { GenericContainer, Wait } = await import('testcontainers');
    const started = await new GenericContainer(STACK_IMAGE)
      .withExposedPorts(6379)
      .withWaitStrategy(Wait.forLogMessage('Ready to accept connections'))
      .start();
    cleanups.push(async () => void (await started.stop()));
    return `redis://${started.getHost()}:${started.getMappedPort(6379)}`;
  });

  let redisUrl = process.env.REDIS_URL;
  let source = 'REDIS_URL';
  if (!redisUrl) {
    try {
      redisUrl = await privateServer('redis-server');
      source = 'a private redis-server from PATH';
    } catch (error) {
      if (!(error instanceof RedisServerNotInstalled)) throw error;
      redisUrl = await container().catch((dockerError: Error) => {
        throw new Error(`No Redis for the tests: set REDIS_URL, install redis-server, or run a Docker engine (${dockerError.message})`);
      });
      source = `a ${STACK_IMAGE} container (testcontainers)`;
    }
  }

  let stackUrl = process.env.REDIS_STACK_URL ?? '';
  let stackSource = 'REDIS_STACK_URL';
  let stackMissing = '';
  if (!stackUrl && (await hasModules(redisUrl))) [stackUrl, stackSource] = [redisUrl, source];
  const stackServer = stackServerProgram();
  if (!stackUrl && stackServer) {
    [stackUrl, stackSource] = [await privateServer(stackServer.binary, stackServer.args), `a private ${stackServer.binary}`];
  }
  if (!stackUrl) {
    try {
      [stackUrl, stackSource] = [await container(), `a ${STACK_IMAGE} container (testcontainers)`];
    } catch (error) {
      stackMissing = `no module-enabled Redis: REDIS_STACK_URL is not set, ${source} has no RedisBloom/RedisTimeSeries, no Redis Stack server is installed (bash scripts/install-redis-stack.sh), and testcontainers found no Docker engine (${(error as Error).message.split('\n')[0]})`;
    }
  }
  if (!stackUrl && process.env.REQUIRE_REDIS_STACK === '1') {
    throw new Error(`REQUIRE_REDIS_STACK=1, but ${stackMissing}`);
  }

  console.log(`[tests] Redis: ${source} (${redisUrl}), modules: ${await describeModules(redisUrl)}`);
  console.log(stackUrl ? `[tests] Redis Stack: ${stackSource} (${stackUrl}), modules: ${await describeModules(stackUrl)}` : `[tests] skipping Redis Stack tests: ${stackMissing}`);
  project.provide('redisUrl', redisUrl);
  project.provide('redisStackUrl', stackUrl);
  project.provide('redisStackMissing', stackMissing);
  project.provide('redisStackServerBin', stackServer?.wrapper ?? '');

  // Clusters, shared by the cluster tests: REDIS_CLUSTER_NODES / REDIS_STACK_CLUSTER_NODES name
  // existing ones (comma-separated host:port); else they are started here, from the same programs.
  const clusterOf = async (nodes: string | undefined, node: { binary: string; args: string[]; redisCli: string } | undefined) => {
    if (nodes) return `redis-cluster://${nodes}`;
    if (!node) return '';
    const dataDir = mkdtempSync(join(tmpdir(), 'click-fraud-test-cluster-'));
    const cluster = await startLocalCluster({ dataDir, ...node });
    cleanups.push(async () => {
      await cluster.stop();
      rmSync(dataDir, { recursive: true, force: true });
    });
    return `redis-cluster://${cluster.nodes.join(',')}`;
  };
  const plainNode = hasProgram('redis-server') && hasProgram('redis-cli') ? { binary: 'redis-server', args: [], redisCli: 'redis-cli' } : undefined;
  const stackNode = stackServer && existsSync(INSTALLED_STACK_SERVER.binary) ? { ...INSTALLED_STACK_SERVER, redisCli: `${INSTALLED_STACK}bin/redis-cli` } : undefined;
  const [clusterUrl, stackClusterUrl] = await Promise.all([
    clusterOf(process.env.REDIS_CLUSTER_NODES, plainNode),
    clusterOf(process.env.REDIS_STACK_CLUSTER_NODES, stackNode),
  ]);
  if (!stackClusterUrl && process.env.REQUIRE_REDIS_STACK === '1') {
    throw new Error('REQUIRE_REDIS_STACK=1, but there is no Redis Stack cluster: run bash scripts/install-redis-stack.sh, or set REDIS_STACK_CLUSTER_NODES');
  }
  console.log(clusterUrl ? `[tests] Redis Cluster: ${clusterUrl}` : '[tests] skipping Redis Cluster tests: no redis-server and redis-cli on PATH');
  console.log(stackClusterUrl ? `[tests] Redis Stack Cluster: ${stackClusterUrl}` : '[tests] skipping Redis Stack Cluster tests: no Redis Stack in .cache/redis-stack');
  project.provide('redisClusterUrl', clusterUrl);
  project.provide('redisStackClusterUrl', stackClusterUrl);
  project.provide('redisStackNode', stackNode ? JSON.stringify(stackNode) : '');

  return async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
}

/** A Redis Stack server to run: how to start it, and its redis-stack-server script. */
function stackServerProgram(): { binary: string; args: string[]; wrapper: string } | undefined {
  const explicit = process.env.REDIS_STACK_SERVER_BIN;
  if (explicit) return { binary: explicit, args: [], wrapper: explicit };
  if (existsSync(INSTALLED_STACK_SERVER.binary)) return { ...INSTALLED_STACK_SERVER, wrapper: `${INSTALLED_STACK}bin/redis-stack-server` };
  try {
    const found = findRedisServer();
    return found === 'redis-stack-server' ? { binary: found, args: [], wrapper: found } : undefined;
  } catch {
    return undefined;
  }
}

async function withClient<T>(url: string, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, { lazyConnect: true });
  try {
    await redis.connect();
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

function hasModules(url: string): Promise<boolean> {
  return withClient(url, async (redis) => {
    const capabilities = await detectCapabilities(redis);
    return capabilities.bloom && capabilities.timeseries && capabilities.search;
  });
}

/** `MODULE LIST`, as `bf 2.8.2, timeseries 1.12.2, ...`; what a server without MODULE says instead. */
function describeModules(url: string): Promise<string> {
  return withClient(url, async (redis) => {
    const modules = moduleList(await redis.call('MODULE', 'LIST').catch((error: Error) => error.message));
    return typeof modules === 'string' ? `(MODULE LIST: ${modules})` : modules.map(({ name, version }) => `${name} ${version}`).join(', ') || 'none';
  });
}

function memo<T>(make: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= make());
}

function hasProgram(name: string): boolean {
  return (process.env.PATH ?? '').split(':').some((dir) => existsSync(join(dir, name)));
}
