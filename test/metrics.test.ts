import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startLocalRedis } from '../src/redis/local-server.js';
import { redisUrl, sleep, startTestApi, testConfig, type TestApi } from './support/api.js';
import { listeningPort, startMain, type MainProcess } from './support/process.js';

/** A sample's value in a Prometheus text exposition: `name{labels} value`, labels in any order. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[3]);
  }
  return undefined;
}

async function scrape(base: string): Promise<string> {
  const response = await fetch(`${base}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return response.text();
}

/** Scrapes until `ready` holds (the worker counts a moment after the API answers). */
async function scrapeUntil(base: string, ready: (text: string) => boolean, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await scrape(base);
    if (ready(text) || Date.now() > deadline) return text;
    await sleep(100);
  }
}

const click = (base: string, device: string, tx: string, ip = '10.1.0.1') =>
  fetch(base, { method: 'POST', body: JSON.stringify({ device_id: device, ip, transaction_id: tx }) });

describe('GET /metrics, one API process', () => {
  let api: TestApi | undefined;
  afterEach(async () => {
    await api?.close();
    api = undefined;
  });

  it('counts decisions by verdict, retries not again, requests by declared route and status class, and open event streams', async () => {
    api = await startTestApi({ ADMIN_TOKEN: 'a-token-of-16-chars', RULES: '{"ip_flood":{"mode":"shadow","threshold":1,"window_sec":60}}' });
    await api.block('10.9.9.9');
    const answers = [
      await api.click('m-1', 'tx-1'),
      await api.click('m-1', 'tx-2'),
      await api.click('m-1', 'tx-3'),
      await api.click('m-2', 'tx-4', '10.9.9.9'),
      await api.click('m-1', 'tx-1'),
    ];
    expect(answers.map((a) => [a.fraud_type, a.duplicate])).toEqual([
      ['clean', false],
      ['clean', false],
      ['click_spam', false],
      ['ip_blacklist', false],
      ['clean', true],
    ]);
    expect((await api.post({ device_id: 'm-3' })).status).toBe(400);
    const admin = await fetch(`${api.base}/admin/blacklist/10.9.9.9`, { headers: { authorization: 'Bearer a-token-of-16-chars' } });
    expect(admin.status).toBe(200);
    const events = await fetch(`${api.base}/events`, { headers: { accept: 'text/event-stream' } });
    expect(events.status).toBe(200);

    const text = await scrape(api.base);
    expect(sample(text, 'click_fraud_decisions_total', { fraud_type: 'clean' })).toBe(2);
    expect(sample(text, 'click_fraud_decisions_total', { fraud_type: 'click_spam' })).toBe(1);
    expect(sample(text, 'click_fraud_decisions_total', { fraud_type: 'ip_blacklist' })).toBe(1);
    // Three clicks from 10.1.0.1 within the window: the second and third are over ip_flood's 1.
    expect(sample(text, 'click_fraud_shadow_hits_total', { rule: 'ip_flood' })).toBe(2);
    const requests = (labels: Record<string, string>) => sample(text, 'click_fraud_http_request_duration_seconds_count', labels);
    expect(requests({ route: '/', method: 'POST', status_class: '2xx' })).toBe(5);
    expect(requests({ route: '/', method: 'POST', status_class: '4xx' })).toBe(1);
    // The declared route, never the address it was called with.
    expect(requests({ route: '/admin/blacklist/:ip', method: 'GET', status_class: '2xx' })).toBe(1);
    expect(text).not.toContain('10.9.9.9');
    expect(text).not.toContain('m-1');
    expect(sample(text, 'click_fraud_event_streams')).toBe(1);
    // The process's own, from prom-client's default metrics.
    expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);
    await events.body?.cancel();
  });

  it('counts the clicks Redis did not decide, by kind', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'click-fraud-metrics-'));
    const server = await startLocalRedis({ dataDir });
    try {
      api = await startTestApi({ REDIS_TIMEOUT_MS: '100' }, server.url);
      expect((await api.click('f-1', 'tx-1')).fraud_type).toBe('clean');
      process.kill(server.pid, 'SIGSTOP');
      const refused = await Promise.all(['tx-2', 'tx-3'].map((tx) => api!.post({ device_id: 'f-1', ip: '10.1.0.2', transaction_id: tx })));
      expect(refused.map((r) => r.status)).toEqual([503, 503]);
      const text = await scrape(api.base);
      const failures = ['timeout', 'hung', 'overloaded', 'connection'].map((kind) => sample(text, 'click_fraud_redis_failures_total', { kind }) ?? 0);
      expect(failures.reduce((a, b) => a + b)).toBe(2);
      expect(sample(text, 'click_fraud_redis_failures_total', { kind: 'timeout' })).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'click_fraud_decisions_total', { fraud_type: 'clean' })).toBe(1);
      expect(sample(text, 'click_fraud_http_request_duration_seconds_count', { route: '/', method: 'POST', status_class: '5xx' })).toBe(2);
    } finally {
      process.kill(server.pid, 'SIGCONT');
      await api?.close();
      api = undefined;
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('GET /metrics of the whole service (npm start)', () => {
  const running: MainProcess[] = [];
  afterAll(async () => {
    for (const main of running) main.child.kill('SIGKILL');
    await Promise.all(running.map((main) => main.exit));
  });

  it('with API_PROCESSES=2 adds up every API process and puts the stream worker beside them', async () => {
    const config = testConfig();
    const main = startMain({ ...config.env, LOG_LEVEL: 'info', REDIS_URL: redisUrl, API_PROCESSES: '2' });
    running.push(main);
    const base = `http://127.0.0.1:${await listeningPort(main.stdout, main.exit)}`;
    for (const deadline = Date.now() + 15_000; !main.stdout().includes('API running in 2 processes') && Date.now() < deadline; ) await sleep(50);
    // Twenty clicks at once, on as many connections, which the primary hands to both processes in turn.
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => click(base, `w-${i}`, `tx-${i}`)));
    expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));

    const text = await scrapeUntil(base, (t) => sample(t, 'click_fraud_worker_counted_total') === 20 && sample(t, 'click_fraud_worker_lag', { partition: '0' }) === 0);
    expect(sample(text, 'click_fraud_decisions_total', { fraud_type: 'clean' })).toBe(20);
    expect(sample(text, 'click_fraud_http_request_duration_seconds_count', { route: '/', method: 'POST', status_class: '2xx' })).toBe(20);
    expect(sample(text, 'click_fraud_worker_counted_total')).toBe(20);
    expect(sample(text, 'click_fraud_worker_lag', { partition: '0' })).toBe(0);
    // Each metric once: a name twice would make Prometheus refuse the whole scrape.
    const declared = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]);
    expect(new Set(declared).size).toBe(declared.length);
  });

  it('a worker alone (ROLE=worker) answers on WORKER_METRICS_PORT, with its process metrics', async () => {
    const config = testConfig();
    const api = await startTestApi(config.env);
    try {
      for (let i = 0; i < 3; i++) await api.click(`r-${i}`, `tx-${i}`);
      const worker = startMain({ ...config.env, LOG_LEVEL: 'info', REDIS_URL: redisUrl, ROLE: 'worker', WORKER_METRICS_PORT: '0', WORKER_BLOCK_MS: '100' });
      running.push(worker);
      let port: number | undefined;
      for (const deadline = Date.now() + 15_000; port === undefined && Date.now() < deadline; await sleep(50)) {
        const match = /"port":(\d+),"msg":"worker metrics on/.exec(worker.stdout());
        if (match) port = Number(match[1]);
      }
      expect(port, worker.stdout()).toBeDefined();
      const base = `http://127.0.0.1:${port}`;
      const text = await scrapeUntil(base, (t) => sample(t, 'click_fraud_worker_counted_total') === 3);
      expect(sample(text, 'click_fraud_worker_counted_total')).toBe(3);
      expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
      expect(text).not.toContain('click_fraud_decisions_total');
      expect((await fetch(`${base}/stats`)).status).toBe(404);
    } finally {
      await api.close();
    }
  });
});
