import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { RECORD_FILE } from '../src/redis/data-folder.js';
import { sleep } from './support/api.js';
import { listeningPort, startMain, type MainProcess } from './support/process.js';

const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;
if (!hasRedisServer) console.log('[tests] skipping the private Redis tests: no redis-server on PATH');

const folders: string[] = [];
const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});
afterAll(() => {
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

function dataFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), 'click-fraud-folder-'));
  folders.push(dir);
  return dir;
}

/** A port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((found) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => found(port));
    });
  });
}

interface Service {
  main: MainProcess;
  base: string;
  redisUrl: string;
  redisPid: number;
}

/** `npm start` with no Redis settings: its data folder is `dir`, its Redis preferably on `preferredPort`. */
async function startService(dir: string, preferredPort: number, env: Record<string, string> = {}, options: { detached?: boolean } = {}): Promise<Service> {
  const main = startMain({ PORT: '0', HOST: '127.0.0.1', REDIS_DATA_DIR: dir, REDIS_PRIVATE_PORT: String(preferredPort), ...env }, options);
  running.push(main.child);
  const port = await listeningPort(main.stdout, main.exit);
  const started = logLines(main).find((line) => String(line.msg).includes('started a private'))!;
  return { main, base: `http://127.0.0.1:${port}`, redisUrl: started.url as string, redisPid: started.redisPid as number };
}

function logLines(main: MainProcess): Array<Record<string, unknown>> {
  return main
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Running, and not just an exited process its parent has yet to collect. */
function alive(pid: number): boolean {
  try {
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
  } catch {
    return false;
  }
}

/** The process group a process belongs to (the fifth field of /proc/<pid>/stat). */
function processGroup(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]);
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !condition(); await sleep(50)) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
  }
}

const click = (base: string, transactionId: string, ip = '10.0.0.1') =>
  fetch(base, { method: 'POST', body: JSON.stringify({ device_id: `dev-${transactionId}`, ip, transaction_id: transactionId }) });

/** A command as `npm run <script>` runs it, from the sources. */
function runCommand(script: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((done) => child.once('close', (code) => done({ code, stdout, stderr })));
}

describe.skipIf(!hasRedisServer)('one private Redis per data folder', () => {
  it('records where it listens; the worker, the blacklist CLI and a second start find it there', { timeout: 60_000 }, async () => {
    const dir = dataFolder();
    const preferred = await freePort();
    const service = await startService(dir, preferred, { ROLE: 'api' });
    expect(service.redisUrl).toBe(`redis://127.0.0.1:${preferred}`);
    expect(service.main.stdout()).toContain(`started a private redis-server on redis://127.0.0.1:${preferred} (port ${preferred}) with its data in ${dir}`);
    const record = JSON.parse(readFileSync(join(dir, RECORD_FILE), 'utf8'));
    expect(record).toMatchObject({ service_pid: service.main.child.pid, redis: { url: service.redisUrl, pid: service.redisPid, program: 'redis-server' } });

    // A second service on the folder refuses, in one line that says what to do.
    const second = startMain({ PORT: '0', HOST: '127.0.0.1', REDIS_DATA_DIR: dir });
    running.push(second.child);
    expect(await second.exit).toBe(1);
    expect(second.stderr().trim()).toBe(
      `Another service (pid ${service.main.child.pid}) already runs the private Redis of ${dir} on ${service.redisUrl}: stop it first, set REDIS_URL=${service.redisUrl} to share that Redis, or set REDIS_DATA_DIR to another folder`,
    );
    expect(second.stdout()).not.toContain('started a private');

    // A worker alone uses that Redis, so it counts what the API (ROLE=api: no worker of its own) decides.
    const worker = startMain({ ROLE: 'worker', REDIS_DATA_DIR: dir, WORKER_BLOCK_MS: '100' });
    running.push(worker.child);
    await until(() => worker.stdout().includes('stream worker counting'), 'the worker starts');
    expect(worker.stdout()).toContain(`using ${service.redisUrl}, the private Redis of the service that holds ${dir}`);
    expect((await click(service.base, 'counted')).status).toBe(200);
    let total = 0;
    for (const deadline = Date.now() + 10_000; total !== 1 && Date.now() < deadline; await sleep(100)) {
      total = ((await (await fetch(`${service.base}/stats`)).json()) as { totals: { total: number } }).totals.total;
    }
    expect(total).toBe(1);
    worker.child.kill('SIGTERM');
    expect(await worker.exit).toBe(0);

    // The blacklist CLI changes the blacklist the API reads.
    const cli = await runCommand('src/cli/blacklist.ts', ['add', '198.51.100.9', '--reason', 'found through the data folder'], { REDIS_DATA_DIR: dir });
    expect(cli.stderr).toBe('');
    expect(cli.stdout).toMatch(/^blocked: 198\.51\.100\.9 {2}"found through the data folder"/);
    expect(((await (await click(service.base, 'listed', '198.51.100.9')).json()) as { fraud_type: string }).fraud_type).toBe('ip_blacklist');

    service.main.child.kill('SIGTERM');
    expect(await service.main.exit).toBe(0);
    expect(existsSync(join(dir, RECORD_FILE))).toBe(false);
    expect(alive(service.redisPid)).toBe(false);
  });

  it('takes a free port when the preferred one is taken, and says so', { timeout: 30_000 }, async () => {
    const preferred = await freePort();
    const first = await startService(dataFolder(), preferred);
    const second = await startService(dataFolder(), preferred);
    expect(first.redisUrl).toBe(`redis://127.0.0.1:${preferred}`);
    expect(second.redisUrl).not.toBe(first.redisUrl);
    expect(second.main.stdout()).toContain(`started a private redis-server on ${second.redisUrl} (port ${preferred} is taken, so on a free one)`);
  });

  it('tells a command that finds no service what to do', async () => {
    const dir = dataFolder();
    for (const [script, args] of [
      ['src/main.ts', ['--role', 'worker']],
      ['src/cli/blacklist.ts', ['list']],
    ] as const) {
      const result = await runCommand(script, [...args], { REDIS_DATA_DIR: dir, LOG_LEVEL: 'silent' });
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toBe(
        `No REDIS_URL set, and no service runs a private Redis in ${dir}: start the service there first (npm start), set REDIS_DATA_DIR to its folder, or set REDIS_URL`,
      );
    }
  });

  it("keeps its Redis out of the terminal's process group: Ctrl-C drains the service, then stops Redis", { timeout: 30_000 }, async () => {
    const service = await startService(dataFolder(), 0, { ADMIN_TOKEN: 'ctrl-c-test-token-0123456789' }, { detached: true });
    const group = processGroup(service.main.child.pid!);
    expect(group).toBe(service.main.child.pid);
    expect(processGroup(service.redisPid)).not.toBe(group);

    // What a terminal does on Ctrl-C: SIGINT to every process of the foreground group.
    process.kill(-group, 'SIGINT');
    expect(await service.main.exit).toBe(0);
    const messages = logLines(service.main).map((line) => line.msg);
    expect(messages.indexOf('shutting down: finishing in-flight work')).toBeGreaterThan(0);
    expect(messages.at(-1)).toBe('stopped');
    // Redis outlived the drain: no connection of the service ever lost it.
    expect(service.main.stdout()).not.toContain('Redis connection lost');
    expect(alive(service.redisPid)).toBe(false);
  });

  it('stops its Redis when the service is killed, and the next start takes the folder over', { timeout: 30_000 }, async () => {
    const dir = dataFolder();
    const crashed = await startService(dir, 0);
    crashed.main.child.kill('SIGKILL');
    await until(() => !alive(crashed.redisPid), 'the Redis of a killed service stops');
    expect(existsSync(join(dir, RECORD_FILE))).toBe(true);

    const next = await startService(dir, 0);
    expect(next.main.stdout()).toContain(`cleared the record of a service (pid ${crashed.main.child.pid}) that ended without stopping`);
    expect((await click(next.base, 'after-crash')).status).toBe(200);
  });

  it('stops a Redis that a killed service left running before it starts its own on the folder', { timeout: 30_000 }, async () => {
    const dir = dataFolder();
    const crashed = await startService(dir, 0);
    // Kill what keeps Redis on a leash (the processes of its group but Redis), then the service:
    // Redis runs on, orphaned, as it would if the leash had been killed first.
    const group = processGroup(crashed.redisPid);
    const leash = readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name) && Number(name) !== crashed.redisPid)
      .filter((name) => {
        try {
          return processGroup(Number(name)) === group;
        } catch {
          return false;
        }
      });
    expect(leash.length).toBeGreaterThan(0);
    for (const pid of leash) process.kill(Number(pid), 'SIGKILL');
    crashed.main.child.kill('SIGKILL');
    await crashed.main.exit;
    await sleep(300);
    expect(alive(crashed.redisPid)).toBe(true);

    const next = await startService(dir, 0);
    expect(next.main.stdout()).toContain(
      `stopped the private Redis (pid ${crashed.redisPid}, ${crashed.redisUrl}) that a service (pid ${crashed.main.child.pid}) had left running`,
    );
    expect(alive(crashed.redisPid)).toBe(false);
    expect((await click(next.base, 'after-orphan')).status).toBe(200);
  });
});
