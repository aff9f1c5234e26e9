import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startTestApi, type TestApi } from './support/api.js';
import { pairs } from './support/replies.js';

describe('POST / with the default rules (threshold 2 in 10 s)', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(() => api.close());

  it('answers clean, clean, then click_spam for a device clicking three times quickly', async () => {
    const first = await api.click('dev-1', 'tx-1');
    const second = await api.click('dev-1', 'tx-2');
    const third = await api.click('dev-1', 'tx-3');
    const fourth = await api.click('dev-1', 'tx-4');
    expect([first, second, third, fourth].map((a) => a.fraud_type)).toEqual(['clean', 'clean', 'click_spam', 'click_spam']);
    expect([first, second, third, fourth].map((a) => a.status)).toEqual(['clean', 'clean', 'fraud', 'fraud']);
  });

  it('answers with the whole decision, stamped by the Redis clock, and records it in the stream', async () => {
    const [seconds] = await api.admin.time();
    const answer = await api.click('dev-2', 'tx-a', '192.0.2.7');
    expect(answer).toMatchObject({
      transaction_id: 'tx-a',
      device_id: 'dev-2',
      ip: '192.0.2.7',
      status: 'clean',
      fraud_type: 'clean',
      duplicate: false,
    });
    expect(answer.ts).toBeGreaterThanOrEqual(Number(seconds) * 1000);
    expect(answer.ts).toBeLessThan(Number(seconds) * 1000 + 5000);

    const entries = await api.admin.xrange(api.config.stream.key, answer.stream_id!, answer.stream_id!);
    expect(entries).toHaveLength(1);
    const [, fields] = entries[0]!;
    expect(Object.fromEntries(pairs(fields))).toEqual({
      transaction_id: 'tx-a',
      device_id: 'dev-2',
      ip: '192.0.2.7',
      status: 'clean',
      fraud_type: 'clean',
      ts: String(answer.ts),
      rules_version: String(answer.rules_version),
    });
    expect(answer.rules_version).toBeGreaterThan(0);
  });

  it('answers ip_blacklist for a blacklisted address, before the spam rule, and still records the click', async () => {
    await api.block('203.0.113.9');
    const answers = [];
    for (const tx of ['b1', 'b2', 'b3']) answers.push(await api.click('dev-3', tx, '203.0.113.9'));
    expect(answers.map((a) => a.fraud_type)).toEqual(['ip_blacklist', 'ip_blacklist', 'ip_blacklist']);
    // The blacklisted clicks filled the device's window: a clean address from it is now spam.
    expect((await api.click('dev-3', 'b4', '198.51.100.1')).fraud_type).toBe('click_spam');
  });

  it('gives the bare fraud type to a client that accepts text/plain, as the article curl shows', async () => {
    const res = await api.post({ device_id: 'dev-4', ip: '10.1.1.1', transaction_id: 'p1' }, { accept: 'text/plain' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toBe('clean');
  });

  it('reads a JSON body whatever its Content-Type (sendBeacon posts text/plain, curl -d posts a form type)', async () => {
    const res = await api.post(JSON.stringify({ device_id: 'dev-5', ip: '10.1.1.2', transaction_id: 'c1' }), {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { fraud_type: string }).fraud_type).toBe('clean');
  });

  it('decides 50 concurrent clicks of one device exactly: 2 clean, 48 click_spam', async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => api.click('dev-race', `race-${i}`)));
    const counts = countBy(answers.map((a) => a.fraud_type));
    expect(counts).toEqual({ clean: 2, click_spam: 48 });
    expect(new Set(answers.map((a) => a.stream_id)).size).toBe(50);
    expect(await api.admin.zcard(api.deviceKeys('dev-race').window)).toBe(50);
  });

  it('answers a retried transaction with the original verdict, marked duplicate, counted and streamed once', async () => {
    const original = await api.click('dev-dup', 'same-tx');
    const lengthAfterFirst = await api.admin.xlen(api.config.stream.key);
    const retry = await api.click('dev-dup', 'same-tx');
    expect(retry).toEqual({ ...original, duplicate: true });
    expect(await api.admin.xlen(api.config.stream.key)).toBe(lengthAfterFirst);
    expect(await api.admin.zcard(api.deviceKeys('dev-dup').window)).toBe(1);
    // Not counted twice: the next new click is still the second one, so clean.
    expect((await api.click('dev-dup', 'other-tx')).fraud_type).toBe('clean');
    // A spam verdict is replayed as spam, not re-decided.
    await api.click('dev-dup', 'third-tx');
    const spamRetry = await api.click('dev-dup', 'third-tx');
    expect(spamRetry).toMatchObject({ fraud_type: 'click_spam', duplicate: true });
  });

  it('keeps the same transaction id of different devices apart', async () => {
    await api.click('dev-x', 'shared-tx');
    expect((await api.click('dev-y', 'shared-tx')).duplicate).toBe(false);
  });

  it('treats every spelling of one address as that address', async () => {
    await api.block('1.1.1.1', '2001:db8::1');
    const spellings = [
      ['1.1.1.1', '1.1.1.1'],
      ['::ffff:1.1.1.1', '1.1.1.1'],
      ['::FFFF:1.1.1.1', '1.1.1.1'],
      ['::ffff:0101:0101', '1.1.1.1'],
      ['0:0:0:0:0:ffff:1.1.1.1', '1.1.1.1'],
      ['2001:db8::1', '2001:db8::1'],
      ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
      ['2001:0db8:0000::0001', '2001:db8::1'],
    ];
    for (const [i, [spelling, canonical]] of spellings.entries()) {
      const answer = await api.click(`dev-ip-${i}`, 'tx', spelling);
      expect(answer, spelling).toMatchObject({ ip: canonical, fraud_type: 'ip_blacklist' });
    }
  });

  it('counts a click 1 s inside the window and not one 1 ms past it', async () => {
    const windowMs = api.config.rules.click_spam.window_sec * 1000;
    const seed = async (deviceId: string, ...ages: number[]) => {
      const keys = api.deviceKeys(deviceId);
      const now = await serverTime(api);
      for (const [i, age] of ages.entries()) {
        await api.admin.zadd(keys.window, now - age, `seed-${i}`);
        await api.admin.hset(keys.verdicts, `seed-${i}`, `${now - age} clean 0-${i + 1}`);
      }
    };
    await seed('dev-edge-out', windowMs - 1000, windowMs + 1);
    expect((await api.click('dev-edge-out', 'live')).fraud_type).toBe('clean');
    await seed('dev-edge-in', windowMs - 1000, windowMs - 1000);
    expect((await api.click('dev-edge-in', 'live')).fraud_type).toBe('click_spam');
  });

  it('keeps a device window bounded: only in-window clicks, expiring with the window', async () => {
    const keys = api.deviceKeys('dev-ttl');
    await api.click('dev-ttl', 't1');
    const ttl = await api.admin.pttl(keys.window);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(api.config.rules.click_spam.window_sec * 1000);
    expect(await api.admin.pttl(keys.verdicts)).toBeGreaterThan(0);
  });
});

describe('the window boundary (threshold 2 in 0.5 s)', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ CLICK_SPAM_WINDOW_IN_SEC: '0.5' });
  });
  afterAll(() => api.close());

  it('stops counting a click once it is a whole window old', async () => {
    const first = await api.click('dev-w', 'w1');
    await api.click('dev-w', 'w2');
    expect((await api.click('dev-w', 'w3')).fraud_type).toBe('click_spam');
    // Wait until w1 and w2 are just outside the window, w3 still inside: one click remains.
    await untilServerTime(api, first.ts + 500 + 20);
    const answer = await api.click('dev-w', 'w4');
    expect(answer.ts - first.ts).toBeGreaterThanOrEqual(500);
    expect(answer.fraud_type).toBe('clean');
  });

  it('forgets a device entirely once it has been quiet for a window', async () => {
    const keys = api.deviceKeys('dev-quiet');
    await api.click('dev-quiet', 'q1');
    await api.click('dev-quiet', 'q2');
    await sleep(700);
    expect(await api.admin.exists(keys.window, keys.verdicts)).toBe(0);
    // A transaction id seen before the window passed is a new click, not a duplicate.
    const again = await api.click('dev-quiet', 'q1');
    expect(again).toMatchObject({ duplicate: false, fraud_type: 'clean' });
  });

  it('trims clicks that left the window from the window key', async () => {
    const keys = api.deviceKeys('dev-trim');
    for (const tx of ['a', 'b', 'c']) await api.click('dev-trim', tx);
    await sleep(550);
    await api.click('dev-trim', 'd');
    expect(await api.admin.zrange(keys.window, '0', '-1')).toEqual(['d']);
    expect(await api.admin.hkeys(keys.verdicts)).toEqual(['d']);
  });
});

describe('the thresholds come from the settings', () => {
  it('with CLICK_SPAM_THRESHOLD=3 the fourth quick click is spam', async () => {
    const api = await startTestApi({ CLICK_SPAM_THRESHOLD: '3' });
    try {
      const answers = [];
      for (const tx of ['1', '2', '3', '4']) answers.push((await api.click('dev-t', tx)).fraud_type);
      expect(answers).toEqual(['clean', 'clean', 'clean', 'click_spam']);
    } finally {
      await api.close();
    }
  });

  it('caps the decision stream at about DECISION_STREAM_MAXLEN entries', async () => {
    const api = await startTestApi({ DECISION_STREAM_MAXLEN: '100' });
    try {
      for (let i = 0; i < 400; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => api.click(`dev-cap-${i + j}`, 'tx')));
      }
      const length = await api.admin.xlen(api.config.stream.key);
      // MAXLEN ~ trims whole stream nodes (100 entries by default), so it keeps at least the cap
      // and less than a node more.
      expect(length).toBeGreaterThanOrEqual(100);
      expect(length).toBeLessThan(400);
    } finally {
      await api.close();
    }
  });
});

async function serverTime(api: TestApi): Promise<number> {
  const [seconds, micros] = await api.admin.time();
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
}

async function untilServerTime(api: TestApi, ms: number): Promise<void> {
  for (let now = await serverTime(api); now < ms; now = await serverTime(api)) await sleep(Math.min(ms - now, 50));
}

function countBy(values: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}
