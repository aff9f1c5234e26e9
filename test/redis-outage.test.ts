import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startLocalRedis, type LocalRedisServer } from '../src/redis/local-server.js';
import { startWorker } from '../src/worker/start-worker.js';
import { redisStackServerBin, sleep, startTestApi, type TestApi } from './support/api.js';
import { labelsOf, fieldMap } from './support/replies.js';
import { openEventStream } from './support/event-stream.js';

const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;
if (!hasRedisServer) console.log('[tests] skipping Redis outage tests: they stop and restart their own redis-server, and none is on PATH');

const click = { device_id: 'dev-outage', ip: '10.0.0.1' };
/** Far above REDIS_TIMEOUT_MS (200) and far below a hang: proves the answer is bounded, not a speed target. */
const BOUNDED_MS = 2000;
/**
 * These tests kill Redis with SIGKILL and expect what it answered to be there after the restart. With
 * the default `appendfsync everysec`, Redis answers before it writes when the previous fsync is still
 * running (a loaded CI machine), and the kill can take that write with it: a CI run lost a click so.
 */
const DURABLE = ['--appendfsync', 'always'];

describe.skipIf(!hasRedisServer)('when Redis fails (own redis-server, REDIS_TIMEOUT_MS=200)', () => {
  let server: LocalRedisServer;
  let api: TestApi | undefined;
  let dataDir: string;

  async function start(env: Record<string, string> = {}): Promise<TestApi> {
    dataDir = mkdtempSync(join(tmpdir(), 'click-fraud-outage-'));
    server = await startLocalRedis({ dataDir, args: DURABLE });
    api = await startTestApi({ REDIS_TIMEOUT_MS: '200', ...env }, server.url);
    return api;
  }

  afterEach(async () => {
    await api?.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function timed(transactionId: string): Promise<{ status: number; body: Record<string, unknown>; ms: number }> {
    const started = performance.now();
    const res = await api!.post({ ...click, transaction_id: transactionId });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, ms: performance.now() - started };
  }

  it('answers 503 at once while Redis is down, and recovers by itself when it is back', async () => {
    await start();
    expect((await timed('before')).status).toBe(200);

    await server.kill();
    for (const tx of ['down-1', 'down-2', 'down-3']) {
      const answer = await timed(tx);
      expect(answer.status).toBe(503);
      expect(answer.body).toMatchObject({ error: 'redis_unavailable' });
      expect(answer.ms).toBeLessThan(BOUNDED_MS);
    }
    const batch = await fetch(`${api!.base}/batch`, { method: 'POST', body: JSON.stringify({ clicks: [{ ...click, transaction_id: 'down-b' }] }) });
    expect(batch.status).toBe(503);
    expect(await batch.json()).toMatchObject({ error: 'redis_unavailable' });
    const readyz = await fetch(`${api!.base}/readyz`);
    expect(readyz.status).toBe(503);
    expect(await readyz.json()).toMatchObject({ ready: false, status: 'redis_unavailable' });

    server = await startLocalRedis({ dataDir, port: server.port, args: DURABLE });
    const recovered = await eventually(async () => (await timed('after')).status === 200);
    expect(recovered).toBe(true);
    expect((await fetch(`${api!.base}/readyz`)).status).toBe(200);
  });

  it('keeps every decision it answered across a Redis restart', async () => {
    await start();
    const answered = [];
    for (const tx of ['k1', 'k2', 'k3']) answered.push((await timed(tx)).body);
    await server.stop();
    server = await startLocalRedis({ dataDir, port: server.port, args: DURABLE });
    await eventually(async () => (await fetch(`${api!.base}/readyz`)).status === 200);

    const entries = await api!.admin.xrange(api!.config.stream.key, '-', '+');
    expect(entries.map(([id]) => id)).toEqual(answered.map((a) => a.stream_id));
    // The window survived too: a retry is still a duplicate, the next click is spam.
    expect((await timed('k3')).body).toMatchObject({ duplicate: true, stream_id: answered[2]!.stream_id });
    expect((await timed('k4')).body).toMatchObject({ fraud_type: 'click_spam' });
  });

  it('answers 503 within the timeout when Redis is slow, decides nothing behind that answer, and decides the retry', async () => {
    await start();
    const pauser = new Redis(server.url);
    try {
      await pauser.call('CLIENT', 'PAUSE', '1000', 'ALL');
      const slow = await timed('slow-1');
      expect(slow.status).toBe(503);
      expect(slow.ms).toBeLessThan(BOUNDED_MS);

      // The paused check reaches Redis after its deadline and changes nothing: no stream entry, no
      // window. The retry is decided afresh, once.
      const retried = await eventually(async () => (await timed('slow-1')).status === 200);
      expect(retried).toBe(true);
      const entries = await api!.admin.xrange(api!.config.stream.key, '-', '+');
      expect(entries).toHaveLength(1);
      expect(await api!.admin.zcard(`${api!.config.keyPrefix}window:{${click.device_id}}`)).toBe(1);
      const again = await timed('slow-1');
      expect(again.body).toMatchObject({ fraud_type: 'clean', duplicate: true, stream_id: entries[0]![0] });
    } finally {
      pauser.disconnect();
    }
  });

  it('with FAIL_MODE=open records nothing of a click it let through while Redis was slow', async () => {
    await start({ FAIL_MODE: 'open' });
    expect((await timed('first')).body).toMatchObject({ fraud_type: 'clean', duplicate: false });
    const pauser = new Redis(server.url);
    try {
      await pauser.call('CLIENT', 'PAUSE', '1000', 'ALL');
      const degraded = await timed('while-paused');
      expect(degraded.status).toBe(200);
      expect(degraded.body).toMatchObject({ fraud_type: 'clean', degraded: true, stream_id: null });
      await sleep(1200);
      // Only the first click is in the stream and the window: the next one is the second, not spam.
      expect(await api!.admin.xlen(api!.config.stream.key)).toBe(1);
      expect((await timed('second')).body).toMatchObject({ fraud_type: 'clean', duplicate: false });
      expect((await timed('third')).body).toMatchObject({ fraud_type: 'click_spam' });
    } finally {
      pauser.disconnect();
    }
  });

  it('with FAIL_MODE=open lets clicks through as clean, marked degraded, and counts them nowhere', async () => {
    await start({ FAIL_MODE: 'open' });
    await timed('open-1');
    await server.kill();
    const answer = await timed('open-2');
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ status: 'clean', fraud_type: 'clean', degraded: true, stream_id: null, ...click });

    server = await startLocalRedis({ dataDir, port: server.port, args: DURABLE });
    await eventually(async () => (await fetch(`${api!.base}/readyz`)).status === 200);
    expect(await api!.admin.xlen(api!.config.stream.key)).toBe(1);
    // open-2 was never counted: the device has one click, so the next one is clean.
    expect((await timed('open-3')).body).toMatchObject({ fraud_type: 'clean' });
  });

  it('keeps live-page event streams open through a Redis restart, and streams what comes after it', async () => {
    await start();
    const stream = await openEventStream(api!.base);
    try {
      const before = (await timed('live-1')).body;
      await stream.waitFor(1);
      await server.kill();
      await sleep(300);
      server = await startLocalRedis({ dataDir, port: server.port, args: DURABLE });
      await eventually(async () => (await timed('live-2')).status === 200);
      const after = (await api!.admin.xrange(api!.config.stream.key, '-', '+')).map(([id]) => id);
      const events = await stream.waitFor(after.length);
      expect(after[0]).toBe(before.stream_id);
      expect(events.map((event) => event.id)).toEqual(after);
    } finally {
      stream.close();
    }
  });
});

const servers = [
  { backend: 'hash', binary: 'redis-server', skip: !hasRedisServer },
  { backend: 'timeseries', binary: redisStackServerBin ?? '', skip: !redisStackServerBin },
];

describe.each(servers)('a stream worker on $backend counters when Redis restarts empty', ({ backend, binary, skip }) => {
  it.skipIf(skip)('recreates its group (and series, and the cuckoo filter), says so once, and counts again', async () => {
    let dataDir = mkdtempSync(join(tmpdir(), 'click-fraud-empty-'));
    let server = await startLocalRedis({ dataDir, binary });
    const api = await startTestApi({ STATS_BACKEND: backend, REDIS_TIMEOUT_MS: '200' }, server.url);
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const worker = await startWorker({ ...api.config, worker: { ...api.config.worker, blockMs: 100 } }, server.url, logger);
    const totals = async () => ((await (await fetch(`${api.base}/stats`)).json()) as { totals: { total: number } }).totals.total;
    try {
      for (const tx of ['a', 'b', 'c']) await api.click('before', tx);
      expect(await eventually(async () => (await totals()) === 3)).toBe(true);
      const filterInfo = async () => fieldMap((await api.admin.call('CF.INFO', api.config.blacklist.key)) as unknown[]);
      const reserved = backend === 'timeseries' ? await filterInfo() : undefined;

      // Restarted without its data: no stream, no group, no counters.
      await server.kill();
      rmSync(dataDir, { recursive: true, force: true });
      dataDir = mkdtempSync(join(tmpdir(), 'click-fraud-empty-'));
      server = await startLocalRedis({ dataDir, binary, port: server.port });
      expect(await eventually(async () => (await api.post({ device_id: 'after', ip: '10.0.0.1', transaction_id: 'x' })).status === 200)).toBe(true);
      await api.click('after', 'y');

      expect(await eventually(async () => (await totals()) === 2)).toBe(true);
      const gone = warnings.filter((line) => line.includes('the consumer group was gone'));
      expect(gone).toHaveLength(1);
      if (backend === 'timeseries') {
        // The cuckoo filter is back as the API reserves it (IP_CUCKOO_FILTER_*), not as a CF.ADDNX would make it.
        expect(await eventually(async () => (await api.admin.exists(api.config.blacklist.key)) === 1)).toBe(true);
        expect(Object.fromEntries(await filterInfo())).toEqual(Object.fromEntries(reserved!));
        const info = fieldMap((await api.admin.call('TS.INFO', api.keyspace.partitions[0]!.timeSeries('total', '1s'))) as unknown[]);
        expect(labelsOf(info.get('labels'))).toMatchObject({ app: api.config.stats.appName, fraud_type: 'total' });
      }
    } finally {
      await worker.close();
      await api.close();
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return false;
}
