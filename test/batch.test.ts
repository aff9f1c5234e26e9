import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type ClickAnswer, type TestApi } from './support/api.js';

interface BatchAnswer {
  results: Array<ClickAnswer & { index?: number; error?: string; issues?: unknown }>;
}

describe('POST /batch', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ BATCH_MAX_CLICKS: '50' });
  });
  afterAll(() => api.close());

  const batch = (clicks: unknown, raw = false) =>
    fetch(`${api.base}/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw ? String(clicks) : JSON.stringify({ clicks }) });

  it('decides the clicks in order, so a device sees its own earlier clicks', async () => {
    const res = await batch(['t1', 't2', 't3', 't4'].map((tx) => ({ device_id: 'dev-order', ip: '10.0.0.1', transaction_id: tx })));
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as BatchAnswer;
    expect(results.map((r) => [r.transaction_id, r.fraud_type])).toEqual([
      ['t1', 'clean'],
      ['t2', 'clean'],
      ['t3', 'click_spam'],
      ['t4', 'click_spam'],
    ]);
    expect(results.map((r) => r.ts)).toEqual([...results.map((r) => r.ts)].sort((a, b) => a - b));
  });

  it('gives a bad item its own error with its index, and still decides the good ones', async () => {
    const before = await api.admin.xlen(api.config.stream.key);
    const res = await batch([
      { device_id: 'dev-mixed', ip: '10.0.0.2', transaction_id: 'ok-1' },
      { device_id: 'dev-mixed', ip: '1.1.1', transaction_id: 'bad-ip' },
      'not a click',
      { device_id: 'dev-mixed', ip: '::ffff:10.0.0.2', transaction_id: 'ok-2' },
    ]);
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as BatchAnswer;
    expect(results).toHaveLength(4);
    expect(results[0]).toMatchObject({ transaction_id: 'ok-1', fraud_type: 'clean' });
    expect(results[1]).toEqual({ index: 1, error: 'invalid_click', message: 'the click has invalid fields', issues: [{ path: 'ip', message: 'ip must be an IPv4 or IPv6 address' }] });
    expect(results[2]).toMatchObject({ index: 2, error: 'invalid_click', issues: [{ path: '(body)' }] });
    expect(results[3]).toMatchObject({ transaction_id: 'ok-2', ip: '10.0.0.2', fraud_type: 'clean' });
    expect(await api.admin.xlen(api.config.stream.key)).toBe(before + 2);
  });

  it('answers a click whose keys Redis refuses with its own error, and decides the others of its call', async () => {
    // A key of the wrong type where the device's window should be: Redis refuses that click's step.
    await api.admin.set(api.deviceKeys('dev-refused').window, 'not a window');
    const before = await api.admin.xlen(api.config.stream.key);
    const clicks = ['dev-before', 'dev-refused', 'dev-after'].map((device) => ({ device_id: device, ip: '10.0.0.3', transaction_id: `refused-${device}` }));
    const res = await batch(clicks);
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as BatchAnswer;
    expect(results[0]).toMatchObject({ transaction_id: 'refused-dev-before', fraud_type: 'clean' });
    expect(results[1]).toMatchObject({ index: 1, error: 'redis_unavailable' });
    expect(results[2]).toMatchObject({ transaction_id: 'refused-dev-after', fraud_type: 'clean' });
    expect(await api.admin.xlen(api.config.stream.key)).toBe(before + 2);

    // Single clicks sent together share a call likewise: only the refused one is a 503.
    const answers = await Promise.all(
      ['dev-before', 'dev-refused', 'dev-after'].map((device) => api.post({ device_id: device, ip: '10.0.0.3', transaction_id: `single-${device}` })),
    );
    expect(answers.map((answer) => answer.status)).toEqual([200, 503, 200]);
    expect(await api.admin.xlen(api.config.stream.key)).toBe(before + 4);
    await api.admin.del(api.deviceKeys('dev-refused').window);
  });

  it('answers the same verdicts as single clicks would, duplicates and blacklist included', async () => {
    const single = await startTestApi();
    try {
      await api.block('203.0.113.1');
      await single.block('203.0.113.1');
      const clicks = Array.from({ length: 40 }, (_, i) => ({
        device_id: `dev-same-${i % 4}`,
        ip: i % 7 === 0 ? '203.0.113.1' : `10.1.0.${i % 5}`,
        transaction_id: `tx-${i % 6}`, // the same device and transaction every 12 clicks: duplicates
      }));
      const res = await batch(clicks);
      const batched = ((await res.json()) as BatchAnswer).results.map((r) => [r.fraud_type, r.duplicate]);
      const one = [];
      for (const click of clicks) {
        const answer = await single.click(click.device_id, click.transaction_id, click.ip);
        one.push([answer.fraud_type, answer.duplicate]);
      }
      expect(batched).toEqual(one);
      expect(new Set(batched.map(([type]) => type))).toEqual(new Set(['clean', 'click_spam', 'ip_blacklist']));
      expect(batched.some(([, duplicate]) => duplicate)).toBe(true);
    } finally {
      await single.close();
    }
  });

  it('answers an empty batch with no results', async () => {
    const res = await batch([]);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ results: [] });
  });

  it.each([
    ['no clicks field', {}],
    ['clicks that is not an array', { clicks: 'many' }],
    ['a body that is an array', [{ device_id: 'd', ip: '10.0.0.1', transaction_id: 't' }]],
  ])('refuses %s with a 400 and writes nothing', async (_, body) => {
    const before = await api.writtenKeys();
    const res = await fetch(`${api.base}/batch`, { method: 'POST', body: JSON.stringify(body) });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: 'invalid_batch',
      message: 'body must be a JSON object with a clicks array',
      issues: [{ path: 'clicks', message: 'clicks must be an array of clicks' }],
    });
    expect(await api.writtenKeys()).toEqual(before);
  });

  it('refuses more than BATCH_MAX_CLICKS clicks with a 413 and writes nothing', async () => {
    const before = await api.writtenKeys();
    const res = await batch(Array.from({ length: 51 }, (_, i) => ({ device_id: `dev-over-${i}`, ip: '10.0.0.1', transaction_id: 't' })));
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({
      error: 'batch_too_large',
      message: 'a batch holds at most 50 clicks',
      issues: [{ path: 'clicks', message: 'clicks must hold at most 50 clicks, not 51' }],
    });
    expect(await api.writtenKeys()).toEqual(before);
  });

  it('refuses a body past its size limit, and bad JSON, with clear errors', async () => {
    // 50 clicks at most, each given room for its fields in the longest escapes (batch-size.test.ts).
    const huge = await batch([{ device_id: 'd'.repeat(200_000), ip: '10.0.0.1', transaction_id: 't' }]);
    expect(huge.status).toBe(413);
    expect(await huge.json()).toEqual({ error: 'body_too_large', message: 'body must be at most 175 KiB' });
    const bad = await batch('{"clicks": [', true);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toBe('invalid_json');
  });
});

describe('POST /batch under load (batches of 1,000, 8 senders at once)', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(() => api.close());

  it('decides every click: a batch waits for Redis by its size and what waits ahead of it, not the single-click timeout', async () => {
    const SENDERS = 8;
    const ROUNDS = 4;
    const statuses: number[] = [];
    let decided = 0;
    const sender = async (s: number) => {
      for (let round = 0; round < ROUNDS; round++) {
        const clicks = Array.from({ length: 1000 }, (_, i) => ({ device_id: `load-${s}-${round}-${i % 200}`, ip: '10.2.0.1', transaction_id: `t-${i}` }));
        const res = await fetch(`${api.base}/batch`, { method: 'POST', body: JSON.stringify({ clicks }) });
        statuses.push(res.status);
        // Read first, then add: `decided += await ...` would read `decided` before the await.
        const { results } = (await res.json()) as BatchAnswer;
        decided += results.filter((r) => r.stream_id).length;
      }
    };
    const before = await api.admin.xlen(api.config.stream.key);
    await Promise.all(Array.from({ length: SENDERS }, (_, s) => sender(s)));
    expect(statuses).toEqual(Array(SENDERS * ROUNDS).fill(200));
    expect(decided).toBe(SENDERS * ROUNDS * 1000);
    expect(await api.admin.xlen(api.config.stream.key)).toBe(before + decided);
  });
});
