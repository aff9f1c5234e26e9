/** The processes the benchmark runs: the servers it measures and the private Redis servers they use. */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalCluster, type LocalCluster } from '../src/redis/local-cluster.js';
import { findRedisServer, freePort, RedisServerNotInstalled, startLocalRedis, type LocalRedisServer } from '../src/redis/local-server.js';

export interface Server {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Runs `script` (a .ts server of bench/servers, or dist/main.js) as a child on a free port, once it answers /healthz. */
export async function startServer(script: string, env: Record<string, string>): Promise<Server> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child: ChildProcess = fork(script, [], {
      env: { ...process.env, ...env, PORT: String(port) },
      execArgv: script.endsWith('.ts') ? ['--import', 'tsx'] : [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const url = `http://127.0.0.1:${port}`;
    // However the benchmark ends, its servers end with it rather than holding their ports.
    const orphaned = () => child.kill('SIGKILL');
    process.once('exit', orphaned);
    child.once('exit', () => process.off('exit', orphaned));
    const stop = () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
      });
    for (const deadline = Date.now() + 20_000; ; await sleep(100)) {
      // A port another process took meanwhile: try another.
      if (child.exitCode !== null) {
        if (attempt < 3) break;
        throw new Error(`${script} exited with code ${child.exitCode}`);
      }
      if (await fetch(`${url}/healthz`).then(() => true, () => false)) return { url, pid: child.pid!, stop };
      if (Date.now() > deadline) {
        await stop();
        throw new Error(`${script} did not start`);
      }
    }
  }
}

/** Where `bash scripts/install-redis-stack.sh` puts Redis Stack. */
const INSTALLED_STACK = new URL('../.cache/redis-stack/', import.meta.url).pathname;

export interface RedisProgram {
  binary: string;
  /** Arguments that load the modules the service uses (RedisBloom for the cuckoo filter). */
  args: string[];
  redisCli: string;
  /** What it is, for the table's header. */
  name: string;
}

/**
 * The server program for the private Redis servers: Redis Stack from .cache/redis-stack (its
 * redis-server with RedisBloom loaded), else redis-stack-server on PATH, else redis-server (the
 * blacklist is then the set, and the cuckoo filter's rows are skipped); undefined with none of them.
 */
export function redisProgram(): RedisProgram | undefined {
  if (existsSync(`${INSTALLED_STACK}bin/redis-server`)) {
    return {
      binary: `${INSTALLED_STACK}bin/redis-server`,
      args: ['--loadmodule', `${INSTALLED_STACK}lib/redisbloom.so`],
      redisCli: `${INSTALLED_STACK}bin/redis-cli`,
      name: 'Redis Stack from .cache/redis-stack (RedisBloom loaded)',
    };
  }
  try {
    const found = findRedisServer();
    return { binary: found, args: [], redisCli: 'redis-cli', name: found };
  } catch (error) {
    if (error instanceof RedisServerNotInstalled) return undefined;
    throw error;
  }
}

export interface PrivateRedis {
  url: string;
  server: LocalRedisServer;
  stop(): Promise<void>;
}

/** A private Redis with the append-only file on (everysec), as `npm start` runs it. */
export async function startPrivateRedis(program: RedisProgram): Promise<PrivateRedis> {
  const dataDir = mkdtempSync(join(tmpdir(), 'click-fraud-bench-'));
  const server = await startLocalRedis({ dataDir, binary: program.binary, args: program.args });
  return {
    url: server.url,
    server,
    async stop() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function startPrivateCluster(program: RedisProgram, masters: number): Promise<LocalCluster & { dispose(): Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'click-fraud-bench-cluster-'));
  const cluster = await startLocalCluster({ dataDir, masters, replicasPerMaster: 1, binary: program.binary, args: program.args, redisCli: program.redisCli });
  return {
    ...cluster,
    async dispose() {
      await cluster.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
