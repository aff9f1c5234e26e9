import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bucketStart } from '../src/domain/decision-entry.js';
import { MINUTE_MS } from '../src/stats/series.js';
import { redisClusterUrl, redisStackClusterUrl, redisStackMissing, redisStackUrl, redisUrl, startTestApi, type ClickAnswer, type TestApi } from './support/api.js';
import { startTestWorker, type TestWorker } from './support/worker.js';

interface OffenderAnswer {
  fraud: number;
  verdicts: Record<string, number>;
}
interface OffendersAnswer {
  from: number;
  to: number;
  limit: number;
  backend: string;
  devices: Array<{ device_id: string } & OffenderAnswer>;
  addresses: Array<{ ip: string } & OffenderAnswer>;
}

const servers = [
  { name: 'plain Redis', url: redisUrl, backend: 'zset', skip: '' },
  { name: 'Redis Stack', url: redisStackUrl ?? '', backend: 'topk', skip: redisStackUrl ? '' : redisStackMissing },
  { name: 'a Redis Cluster of plain Redis', url: redisClusterUrl ?? '', backend: 'zset', skip: redisClusterUrl ? '' : 'no plain Redis cluster' },
  { name: 'a Redis Cluster of Redis Stack', url: redisStackClusterUrl ?? '', backend: 'topk', skip: redisStackClusterUrl ? '' : 'no Redis Stack cluster' },
];

const BLACKLISTED = ['203.0.113.1', '203.0.113.2', '203.0.113.3'];

/**
 * A burst with known offenders, among background traffic, as the simulator sends it (threshold 2):
 * spam devices of 12, 10, 8 and 6 clicks, each from an address of its own (10, 8, 6 and 4 of them
 * click_spam); blacklisted addresses with 9, 7 and 5 clicks, each click from a device of its own; a
 * device that spams, then moves to a blacklisted address; 150 clean devices of one click; 20
 * devices of three clicks (one click_spam each).
 */
function burst(): Array<{ device_id: string; ip: string; transaction_id: string }> {
  const clicks: Array<{ device_id: string; ip: string; transaction_id: string }> = [];
  const add = (device_id: string, ip: string) => clicks.push({ device_id, ip, transaction_id: `t${clicks.length}` });
  [12, 10, 8, 6].forEach((count, i) => {
    for (let n = 0; n < count; n++) add(`spam-${i + 1}`, `10.9.0.${i + 1}`);
  });
  [9, 7, 5].forEach((count, i) => {
    for (let n = 0; n < count; n++) add(`listed-${i + 1}-${n}`, BLACKLISTED[i]!);
  });
  for (let n = 0; n < 4; n++) add('mover', '10.9.0.9');
  for (let n = 0; n < 3; n++) add('mover', BLACKLISTED[2]!);
  for (let n = 0; n < 150; n++) add(`clean-${n}`, `10.7.${n >> 8}.${n & 255}`);
  for (let n = 0; n < 20; n++) for (let k = 0; k < 3; k++) add(`noise-${n}`, `10.8.0.${n}`);
  return clicks;
}

/** What was injected, heaviest first (ties by id), as /offenders should list it first. */
const INJECTED_DEVICES = [
  { device_id: 'spam-1', fraud: 10, verdicts: { click_spam: 10 } },
  { device_id: 'spam-2', fraud: 8, verdicts: { click_spam: 8 } },
  { device_id: 'spam-3', fraud: 6, verdicts: { click_spam: 6 } },
  { device_id: 'mover', fraud: 5, verdicts: { click_spam: 2, ip_blacklist: 3 } },
  { device_id: 'spam-4', fraud: 4, verdicts: { click_spam: 4 } },
];
const INJECTED_ADDRESSES = [
  { ip: '10.9.0.1', fraud: 10, verdicts: { click_spam: 10 } },
  { ip: '203.0.113.1', fraud: 9, verdicts: { ip_blacklist: 9 } },
  { ip: '10.9.0.2', fraud: 8, verdicts: { click_spam: 8 } },
  { ip: '203.0.113.3', fraud: 8, verdicts: { ip_blacklist: 8 } },
  { ip: '203.0.113.2', fraud: 7, verdicts: { ip_blacklist: 7 } },
  { ip: '10.9.0.3', fraud: 6, verdicts: { click_spam: 6 } },
  { ip: '10.9.0.4', fraud: 4, verdicts: { click_spam: 4 } },
  { ip: '10.9.0.9', fraud: 2, verdicts: { click_spam: 2 } },
];

/** Every device or address with fraud clicks among `answers`, heaviest first, ties by id: what the API decided. */
function expectedOffenders(answers: ClickAnswer[], key: 'device_id' | 'ip'): Array<{ id: string } & OffenderAnswer> {
  const byId = new Map<string, OffenderAnswer>();
  for (const answer of answers) {
    if (answer.status !== 'fraud') continue;
    const offender = byId.get(answer[key]) ?? { fraud: 0, verdicts: {} };
    offender.fraud += 1;
    offender.verdicts[answer.fraud_type] = (offender.verdicts[answer.fraud_type] ?? 0) + 1;
    byId.set(answer[key], offender);
  }
  return [...byId].map(([id, offender]) => ({ id, ...offender })).sort((a, b) => b.fraud - a.fraud || (a.id < b.id ? -1 : 1));
}

async function getOffenders(api: TestApi, query: string): Promise<OffendersAnswer> {
  const res = await fetch(`${api.base}/offenders?${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as OffendersAnswer;
}

describe.each(servers)('top offenders on $name', ({ url, backend, skip }) => {
  describe.skipIf(skip !== '')(`GET /offenders${skip ? ` — skipped: ${skip}` : ''}`, () => {
    let api: TestApi;
    let worker: TestWorker;
    beforeAll(async () => {
      // Each store as named, also where the default Redis is a Stack server (the sorted sets then by choice).
      api = await startTestApi({ REDIS_TIMEOUT_MS: '1000', OFFENDERS_BACKEND: backend }, url);
      worker = await startTestWorker(api.config, url);
    });
    afterAll(async () => {
      await worker?.stop();
      await api?.close();
    });

    it('lists the injected devices and addresses first, with the clicks sent per verdict, and every other offender exactly', async () => {
      await api.block(...BLACKLISTED);
      const clicks = burst();
      const res = await fetch(`${api.base}/batch`, { method: 'POST', body: JSON.stringify({ clicks }) });
      expect(res.status).toBe(200);
      const { results: answers } = (await res.json()) as { results: ClickAnswer[] };
      await worker.drained();

      const from = Math.min(...answers.map((a) => a.ts));
      const to = Math.max(...answers.map((a) => a.ts));
      const top = await getOffenders(api, `from=${from}&to=${to}&limit=100`);
      expect(top.backend).toBe(backend);
      expect([top.from, top.to]).toEqual([bucketStart(from, MINUTE_MS), bucketStart(to, MINUTE_MS) + MINUTE_MS - 1]);
      expect(top.devices.slice(0, INJECTED_DEVICES.length)).toEqual(INJECTED_DEVICES);
      expect(top.addresses.slice(0, INJECTED_ADDRESSES.length)).toEqual(INJECTED_ADDRESSES);
      // The rest: one fraud click each (the blacklisted addresses' devices, the noise), none clean.
      expect(top.devices.map(({ device_id, ...counts }) => ({ id: device_id, ...counts }))).toEqual(expectedOffenders(answers, 'device_id'));
      expect(top.addresses.map(({ ip, ...counts }) => ({ id: ip, ...counts }))).toEqual(expectedOffenders(answers, 'ip'));
      expect(top.devices).toHaveLength(5 + 21 + 20);

      // The first ones, and nothing from an hour before.
      expect((await getOffenders(api, `from=${from}&to=${to}&limit=3`)).devices).toEqual(INJECTED_DEVICES.slice(0, 3));
      const before = await getOffenders(api, `from=${from - 2 * 3_600_000}&to=${from - 3_600_000 - MINUTE_MS}`);
      expect([before.devices, before.addresses]).toEqual([[], []]);
    });
  });
});

describe('GET /offenders refuses a bad query', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(() => api.close());

  it('answers the last 15 minutes (whole minutes), ten of each, by default', async () => {
    const before = Date.now();
    const top = await getOffenders(api, '');
    expect(top.limit).toBe(10);
    expect(top.from).toBe(bucketStart(top.to - 15 * MINUTE_MS, MINUTE_MS));
    expect((top.to + 1) % MINUTE_MS).toBe(0);
    expect(top.to).toBeGreaterThanOrEqual(before);
    expect([top.devices, top.addresses]).toEqual([[], []]);
  });

  const limitProblem = [{ path: 'limit', message: 'limit must be a whole number from 1 to 100' }];
  it.each([
    ['from=abc', [{ path: 'from', message: 'from must be a time in ms since the epoch' }]],
    ['to=-5', [{ path: 'to', message: 'to must be a time in ms since the epoch' }]],
    ['limit=0', limitProblem],
    ['limit=101', limitProblem],
    ['limit=ten', limitProblem],
    ['from=2000000&to=1000000', [{ path: 'from', message: 'from must not be after to' }]],
    ['from=0&to=3600001', [{ path: 'to', message: 'the range must be at most 60 minutes' }]],
  ])('refuses %s with a 400 naming the parameter', async (query, issues) => {
    const res = await fetch(`${api.base}/offenders?${query}`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_query', message: 'the offenders query has invalid parameters', issues });
  });
});
