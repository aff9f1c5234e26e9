import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startLocalRedis } from '../src/redis/local-server.js';
import { redisStackServerBin, redisUrl, testConfig } from './support/api.js';
import { listeningPort, startMain } from './support/process.js';

const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) child.kill('SIGKILL');
});

describe('the service process', () => {
  it('refuses to start on invalid settings, one line per problem', async () => {
    const main = startMain({ CLICK_SPAM_THRESHOLD: 'abc', CLICK_SPAM_WINDOW_IN_SEC: '-10', FAIL_MODE: 'sometimes', REDIS_URL: redisUrl });
    running.push(main.child);
    expect(await main.exit).toBe(1);
    expect(main.stderr().trim().split('\n')).toEqual([
      'Invalid setting: CLICK_SPAM_THRESHOLD must be a whole number (got "abc")',
      'Invalid setting: CLICK_SPAM_WINDOW_IN_SEC must be more than 0 (got "-10")',
      'Invalid setting: FAIL_MODE must be closed or open (got "sometimes")',
    ]);
  });

  it('says what to install when no Redis is configured and there is no Redis server program', async () => {
    // A PATH with node and nothing else.
    const bin = mkdtempSync(join(tmpdir(), 'click-fraud-path-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    try {
      const main = startMain({ PATH: bin, REDIS_DATA_DIR: join(bin, 'data') });
      running.push(main.child);
      expect(await main.exit).toBe(1);
      expect(main.stderr().trim()).toBe(
        'No Redis configured and neither redis-stack-server nor redis-server on PATH: install Redis (Debian/Ubuntu: apt-get install redis-server, macOS: brew install redis), or Redis Stack for the modules, or set REDIS_URL',
      );
      const named = startMain({ PATH: bin, REDIS_DATA_DIR: join(bin, 'data'), REDIS_SERVER_BIN: '/nowhere/redis-server' });
      running.push(named.child);
      expect(await named.exit).toBe(1);
      expect(named.stderr().trim()).toBe(
        'No Redis configured and REDIS_SERVER_BIN names "/nowhere/redis-server", which cannot be run: point it at a redis-server or redis-stack-server, or set REDIS_URL',
      );
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('exits 1 with a clear line when the configured Redis cannot be reached', async () => {
    const main = startMain({ REDIS_URL: 'redis://127.0.0.1:1', PORT: '0' });
    running.push(main.child);
    expect(await main.exit).toBe(1);
    expect(main.stdout()).toContain('cannot start: cannot reach Redis at redis://127.0.0.1:1');
  });

  it('on SIGTERM stops accepting, finishes the request in flight, and exits 0', async () => {
    const config = testConfig();
    const main = startMain({ ...config.env, LOG_LEVEL: 'info', REDIS_URL: redisUrl, REDIS_TIMEOUT_MS: '5000', ROLE: 'api' });
    running.push(main.child);
    const port = await listeningPort(main.stdout, main.exit);
    const base = `http://127.0.0.1:${port}`;

    // Hold Redis for a moment so that a click is still in flight when SIGTERM arrives.
    const pauser = new Redis(redisUrl);
    await pauser.call('CLIENT', 'PAUSE', '700', 'WRITE');
    pauser.disconnect();
    const inFlight = fetch(base, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ device_id: 'dev-term', ip: '10.0.0.1', transaction_id: 'tx' }),
    });
    await new Promise((done) => setTimeout(done, 200));
    main.child.kill('SIGTERM');
    await new Promise((done) => setTimeout(done, 100));
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();

    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { fraud_type: string }).fraud_type).toBe('clean');
    expect(await main.exit).toBe(0);
    expect(main.stdout()).toContain('"msg":"stopped"');
  });
});

describe('shutdown when Redis is away, with the admin API on (own redis-server)', () => {
  const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;
  const SHUTDOWN_TIMEOUT_MS = 3000;

  it.skipIf(!hasRedisServer).each(['down', 'hung'])('finishes within SHUTDOWN_TIMEOUT_MS when Redis is %s', async (state) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'click-fraud-shutdown-'));
    const server = await startLocalRedis({ dataDir });
    try {
      const main = startMain({
        ...testConfig().env,
        LOG_LEVEL: 'info',
        REDIS_URL: server.url,
        ADMIN_TOKEN: 'shutdown-test-token-0123456789',
        SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
      });
      running.push(main.child);
      await listeningPort(main.stdout, main.exit);
      // Started, worker included (it starts after the API): Redis goes away from a running service.
      await expect.poll(() => main.stdout(), { timeout: 10_000 }).toContain('"msg":"stream worker counting');
      if (state === 'down') await server.kill();
      else process.kill(server.pid, 'SIGSTOP');
      await new Promise((done) => setTimeout(done, 500));

      const started = performance.now();
      main.child.kill('SIGTERM');
      const code = await main.exit;
      const tookMs = performance.now() - started;
      expect(code, main.stdout()).toBe(0);
      expect(main.stdout()).toContain('"msg":"stopped"');
      expect(tookMs, main.stdout()).toBeLessThan(SHUTDOWN_TIMEOUT_MS);
    } finally {
      if (state === 'hung') process.kill(server.pid, 'SIGCONT');
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('several API processes (API_PROCESSES=2)', () => {
  it('serves from every process, replaces one that dies, and drains them all on SIGTERM', async () => {
    const config = testConfig();
    const main = startMain({ ...config.env, LOG_LEVEL: 'info', REDIS_URL: redisUrl, API_PROCESSES: '2' });
    running.push(main.child);
    const port = await listeningPort(main.stdout, main.exit);
    const pids = async (count: number) => {
      for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((done) => setTimeout(done, 50))) {
        const found = [...main.stdout().matchAll(/"pid":(\d+)[^\n]*"msg":"click fraud API listening"/g)].map((m) => Number(m[1]));
        if (found.length >= count) return found;
      }
      throw new Error(`fewer than ${count} API processes started:\n${main.stdout()}`);
    };
    const [first, second] = await pids(2);
    expect(first).not.toBe(second);
    // The primary says so once both have told it they listen, which may come a moment after their own lines.
    await expect.poll(() => main.stdout(), { timeout: 5000 }).toContain('"msg":"API running in 2 processes"');

    const click = (tx: string) =>
      fetch(`http://127.0.0.1:${port}`, { method: 'POST', body: JSON.stringify({ device_id: `d-${tx}`, ip: '10.0.0.1', transaction_id: tx }) });
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => click(`c${i}`)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));

    process.kill(first!, 'SIGKILL');
    const [, , third] = await pids(3);
    expect([first, second]).not.toContain(third);
    expect((await click('after')).status).toBe(200);
    // Every line names one process as `pid`: the primary's report of the exit names the API process `apiPid`.
    expect(main.stdout()).toMatch(new RegExp(`"apiPid":${first}[^\\n]*"msg":"API process exited; starting another"`));
    for (const line of main.stdout().trim().split('\n')) expect(line.match(/"pid":/g), line).toHaveLength(1);

    main.child.kill('SIGTERM');
    expect(await main.exit).toBe(0);
    for (const pid of [second!, third!]) expect(() => process.kill(pid, 0)).toThrow();
  });
});

describe('npm start without any Redis settings', () => {
  const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;

  it.skipIf(!hasRedisServer || !redisStackServerBin)('prefers redis-stack-server on PATH over redis-server, and REDIS_SERVER_BIN picks either', async () => {
    // Both servers on PATH, as after installing Redis and Redis Stack from their packages (the
    // redis-stack-server script needs the system's readlink and dirname).
    const bin = mkdtempSync(join(tmpdir(), 'click-fraud-path-'));
    symlinkSync(process.execPath, join(bin, 'node'));
    symlinkSync(redisStackServerBin!, join(bin, 'redis-stack-server'));
    symlinkSync(spawnSync('sh', ['-c', 'command -v redis-server']).stdout.toString().trim(), join(bin, 'redis-server'));
    const backendsWith = async (env: Record<string, string>) => {
      const main = startMain({
        PATH: `${bin}:/usr/bin:/bin`,
        PORT: '0',
        HOST: '127.0.0.1',
        REDIS_DATA_DIR: join(bin, `data-${Object.keys(env).length}`),
        // Not 6379: this machine may run other Redis servers (test/private-redis.test.ts covers the choice).
        REDIS_PRIVATE_PORT: '0',
        ...env,
      });
      running.push(main.child);
      const port = await listeningPort(main.stdout, main.exit);
      const readyz = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { blacklist: { backend: string }; stats: { backend: string } };
      const server = /started a private (\S+) on/.exec(main.stdout())?.[1];
      main.child.kill('SIGTERM');
      expect(await main.exit).toBe(0);
      return { server, blacklist: readyz.blacklist.backend, stats: readyz.stats.backend };
    };
    try {
      expect(await backendsWith({})).toEqual({ server: 'redis-stack-server', blacklist: 'cuckoo', stats: 'timeseries' });
      expect(await backendsWith({ REDIS_SERVER_BIN: 'redis-server' })).toEqual({ server: 'redis-server', blacklist: 'set', stats: 'hash' });
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
