import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';

export class RedisServerNotInstalled extends Error {
  constructor() {
    super(
      'No Redis configured and no redis-server on PATH: install Redis (Debian/Ubuntu: apt-get install redis-server, macOS: brew install redis) or set REDIS_URL',
    );
  }
}

export interface LocalRedisServer {
  url: string;
  port: number;
  dataDir: string;
  /** Stops the server (it writes its AOF first) and waits for it to exit. */
  stop(): Promise<void>;
  /** Kills the server at once, as a crash would. */
  kill(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

/**
 * Runs a private `redis-server` from PATH on loopback, with its data (append-only file) in
 * `dataDir`. Used when no Redis is configured, and by the tests. A `port` may be given to bring a
 * stopped server back on the same address.
 */
export async function startLocalRedis({ dataDir, port }: { dataDir: string; port?: number }): Promise<LocalRedisServer> {
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true });
  const chosenPort = port ?? (await freePort());
  const child = spawn(
    'redis-server',
    ['--port', String(chosenPort), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--save', '', '--logfile', ''],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await waitUntilReady(child);
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
    stop: stopWith('SIGTERM'),
    kill: stopWith('SIGKILL'),
  };
}

function waitUntilReady(child: ChildProcess): Promise<void> {
  return new Promise((ready, fail) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`redis-server did not start within ${START_TIMEOUT_MS} ms:\n${output}`));
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
      settle(() => fail(error.code === 'ENOENT' ? new RedisServerNotInstalled() : error)),
    );
    child.once('exit', (code) => settle(() => fail(new Error(`redis-server exited with code ${code}:\n${output}`))));
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
