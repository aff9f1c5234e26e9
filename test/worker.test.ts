import type { Redis } from 'ioredis';
import type { RedisClient } from '../src/redis/connection.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bucketStart } from '../src/domain/decision-entry.js';
import { FRAUD_TYPES, statusOf, type FraudType } from '../src/domain/verdict.js';
import { createRedisClient } from '../src/redis/connection.js';
import { MINUTE_MS, SERIES, zeroCounts, type SeriesName } from '../src/stats/series.js';
import { keyspaceFor } from '../src/redis/keyspace.js';
import { countDecisions } from '../src/redis/counters.js';
import { detectCapabilities } from '../src/redis/capabilities.js';
import { prepareOffenders, type Offender } from '../src/redis/offenders.js';
import { pino } from 'pino';
import { redisStackMissing, redisStackUrl, redisUrl, sleep, startTestApi, testConfig, type ClickAnswer, type TestApi } from './support/api.js';
import { startMain, type MainProcess } from './support/process.js';
import { startTestWorker, untilDrained, type TestWorker } from './support/worker.js';
import { fieldMap, pairs } from './support/replies.js';

/** Per bucket, the series with counts (as /stats lists them: a series at 0 is left out). */
type Counts = Record<number, Partial<Record<SeriesName, number>>>;

interface StatsAnswer {
  backend: string;
  buckets: Array<{ ts: number } & Record<SeriesName, number>>;
  totals: Record<SeriesName, number>;
  stream: { length: number; pending: number; lag: number | null; dead_letters: number };
}

const backends = [
  { backend: 'hash', url: redisUrl, skip: '' },
  { backend: 'timeseries', url: redisStackUrl ?? '', skip: redisStackUrl ? '' : redisStackMissing },
];

describe.each(backends)('the stream worker counting into $backend', ({ backend, url, skip }) => {
  describe.skipIf(skip !== '')(`counts${skip ? ` — skipped: ${skip}` : ''}`, () => {
    let api: TestApi;
    let worker: TestWorker;
    beforeAll(async () => {
      api = await startTestApi({ STATS_BACKEND: backend }, url);
      worker = await startTestWorker(api.config, url);
    });
    afterAll(async () => {
      await worker?.stop();
      await api?.close();
    });

    it('counts every decision once, per fraud type and per second bucket, and /stats shows it', async () => {
      await api.block('203.0.113.66');
      const answers: ClickAnswer[] = [];
      for (let device = 0; device < 6; device++) {
        for (let click = 0; click < 4; click++) answers.push(await api.click(`dev-${device}`, `tx-${click}`));
        answers.push(await api.click(`dev-bl-${device}`, 'tx', '203.0.113.66'));
      }
      await worker.drained();
      const expected = expectedCounts(answers);
      expect(Object.values(expected).reduce((sum, c) => sum + (c.click_spam ?? 0), 0)).toBe(12);

      // Each count is stamped with the start of its second, so the range starts at a second.
      const from = bucketStart(Math.min(...answers.map((a) => a.ts)), 1000);
      const to = Math.max(...answers.map((a) => a.ts));
      const stats = await getStats(api, { from, to, bucket: 1000 });
      expect(stats.backend).toBe(backend);
      expect(asCounts(stats.buckets)).toEqual(expected);
      expect(stats.totals).toEqual({ ...zeroCounts(), clean: 12, ip_blacklist: 6, click_spam: 12, total: 30 });
      expect(stats.stream).toEqual({ length: 30, pending: 0, lag: 0, dead_letters: 0 });

      // Wider buckets add up the same decisions.
      const perMinute = await getStats(api, { from: bucketStart(from, MINUTE_MS), to: bucketStart(to, MINUTE_MS) + MINUTE_MS - 1, bucket: MINUTE_MS });
      expect(perMinute.totals).toEqual({ ...zeroCounts(), clean: 12, ip_blacklist: 6, click_spam: 12, total: 30 });
    });

    it('counts decisions written before the worker started', async () => {
      const config = testConfig({ STATS_BACKEND: backend });
      const admin = await scriptedClient(url);
      try {
        const now = Date.now();
        await prefill(admin, config.stream.key, [
          { fraudType: 'clean', ts: now - 2000 },
          { fraudType: 'click_spam', ts: now - 2000 },
          { fraudType: 'clean', ts: now - 1000 },
        ]);
        const late = await startTestWorker(config, url);
        try {
          await late.drained();
          const counts = await countsIn(admin, config, now - 5000, now);
          expect(counts).toEqual({
            [bucketStart(now - 2000, 1000)]: { clean: 1, click_spam: 1, total: 2 },
            [bucketStart(now - 1000, 1000)]: { clean: 1, total: 1 },
          });
        } finally {
          await late.stop();
        }
      } finally {
        admin.disconnect();
      }
    });
  });
});

describe('exactly once (hash counters; the same script serves RedisTimeSeries)', () => {
  let admin: Redis;
  beforeAll(async () => {
    admin = await scriptedClient(redisUrl);
  });
  afterAll(() => admin.disconnect());

  const running: MainProcess[] = [];
  afterEach(() => {
    for (const main of running.splice(0)) main.child.kill('SIGKILL');
  });

  it('counts an entry claimed by two workers once', async () => {
    const config = testConfig({ STATS_BACKEND: 'hash' });
    const worker = await startTestWorker(config, redisUrl);
    await worker.stop(); // the group and counters now exist; this test drives the atomic step by hand
    const ts = Date.now();
    const decision = { fraudType: 'click_spam' as const, ts, shadow: [], deviceId: 'd-twice', ip: '10.0.0.2' };
    const [id] = await prefill(admin, config.stream.key, [decision]);
    await admin.xreadgroup('GROUP', config.worker.group, 'a', 'COUNT', 1, 'STREAMS', config.stream.key, '>');
    await admin.xclaim(config.stream.key, config.worker.group, 'b', 0, id!);

    const counted = [];
    const { counters, offenders } = worker.service;
    const partition = keyspaceFor(config, false).partitions[0]!;
    for (const _ of ['a', 'b']) {
      counted.push(await countDecisions(admin, config.stream.key, config.worker.group, [counters.countOf(partition, id!, decision, offenders.tally(partition, decision))]));
    }
    expect(counted).toEqual([1, 0]);
    expect(await countsIn(admin, config, ts - 1000, ts + 1000)).toEqual({
      [bucketStart(ts, 1000)]: { click_spam: 1, total: 1 },
    });
    expect(await offenders.top(admin, ts, ts, 10)).toEqual({
      devices: [{ id: 'd-twice', fraud: 1, verdicts: { click_spam: 1 } }],
      addresses: [{ id: '10.0.0.2', fraud: 1, verdicts: { click_spam: 1 } }],
    });
    expect(await admin.xpending(config.stream.key, config.worker.group)).toEqual([0, null, null, null]);
  });

  it('ends with the same counts and top offenders when a worker is killed mid-batch and restarted', async () => {
    const config = testConfig({ STATS_BACKEND: 'hash' });
    const decisions = syntheticDecisions(30_000);
    await prefill(admin, config.stream.key, decisions);
    const env = { ...config.env, REDIS_URL: redisUrl, ROLE: 'worker', WORKER_CONSUMER: 'w1', WORKER_BATCH_SIZE: '50', LOG_LEVEL: 'info' };

    const first = startMain(env);
    running.push(first);
    // Kill it once it has read some, but not all, of the decisions.
    let read = 0;
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; await sleep(5)) {
      read = await entriesRead(admin, config);
      if (read > 0) break;
    }
    first.child.kill('SIGKILL');
    await first.exit;
    const readAtKill = await entriesRead(admin, config);
    expect(readAtKill).toBeGreaterThan(0);
    expect(readAtKill).toBeLessThan(decisions.length);

    const second = startMain(env);
    running.push(second);
    await untilDrained(admin, config, false, 30_000);
    second.child.kill('SIGTERM');
    expect(await second.exit).toBe(0);
    expect(second.stdout()).not.toContain('click fraud API listening');

    expect(await countsIn(admin, config, decisions[0]!.ts - 1000, decisions.at(-1)!.ts + 1000)).toEqual(expectedCounts(decisions));
    // 20 devices and 7 addresses: few enough that every count is exact.
    const offenders = prepareOffenders(await detectCapabilities(admin), { ...config.offenders, keyspace: keyspaceFor(config, false) });
    expect(await offenders.top(admin, decisions[0]!.ts, decisions.at(-1)!.ts, 100)).toEqual({
      devices: expectedOffenders(decisions, 'deviceId'),
      addresses: expectedOffenders(decisions, 'ip'),
    });
  });

  it("lets a second worker take over a dead worker's pending decisions", async () => {
    const config = testConfig({ STATS_BACKEND: 'hash', WORKER_CLAIM_IDLE_MS: '200' });
    const setup = await startTestWorker(config, redisUrl);
    await setup.stop();
    const decisions = syntheticDecisions(25);
    await prefill(admin, config.stream.key, decisions);
    // A worker that read ten decisions and died before counting them.
    await admin.xreadgroup('GROUP', config.worker.group, 'dead-worker', 'COUNT', 10, 'STREAMS', config.stream.key, '>');
    expect((await admin.xpending(config.stream.key, config.worker.group))[0]).toBe(10);

    const heir = await startTestWorker(config, redisUrl);
    try {
      await heir.drained();
      expect(await countsIn(admin, config, decisions[0]!.ts - 1000, decisions.at(-1)!.ts + 1000)).toEqual(expectedCounts(decisions));
      const consumers = (await admin.call('XINFO', 'CONSUMERS', config.stream.key, config.worker.group)) as unknown[][];
      const dead = consumers.map(fieldMap).find((c) => c.get('name') === 'dead-worker');
      expect(dead?.get('pending')).toBe(0);
    } finally {
      await heir.stop();
    }
  });
});

describe('decisions that cannot be counted', () => {
  let admin: Redis;
  beforeAll(async () => {
    admin = await scriptedClient(redisUrl);
  });
  afterAll(() => admin.disconnect());

  /** A worker that runs until every decision is counted or set aside. */
  async function drainOnce(config: ReturnType<typeof testConfig>): Promise<void> {
    const worker = await startTestWorker(config, redisUrl);
    try {
      await worker.drained();
    } finally {
      await worker.stop();
    }
  }

  async function deadLetters(config: ReturnType<typeof testConfig>): Promise<Array<Record<string, string>>> {
    return (await admin.xrange(config.worker.deadLetterKey, '-', '+')).map(([, fields]) => Object.fromEntries(pairs(fields)));
  }

  it('moves a malformed entry to the dead-letter stream at once, with the reason, and counts the rest', async () => {
    const config = testConfig({ STATS_BACKEND: 'hash' });
    const ts = Date.now();
    await prefill(admin, config.stream.key, [{ fraudType: 'clean', ts }]);
    const poisonId = await admin.xadd(config.stream.key, '*', 'fraud_type', 'bogus', 'ts', String(ts));
    await prefill(admin, config.stream.key, [{ fraudType: 'click_spam', ts }]);

    await drainOnce(config);
    expect(await deadLetters(config)).toEqual([
      { entry_id: poisonId, reason: 'malformed: unknown fraud_type "bogus"', deliveries: '1', fraud_type: 'bogus', ts: String(ts) },
    ]);
    expect(await countsIn(admin, config, ts - 1000, ts + 1000)).toEqual({
      [bucketStart(ts, 1000)]: { clean: 1, click_spam: 1, total: 2 },
    });
  });

  it('sets aside a pending entry that was trimmed from the stream before it was counted', async () => {
    const config = testConfig({ STATS_BACKEND: 'hash', WORKER_CONSUMER: 'w1' });
    const setup = await startTestWorker(config, redisUrl);
    await setup.stop();
    const [id] = await prefill(admin, config.stream.key, [{ fraudType: 'clean', ts: Date.now() }]);
    // w1 read it, then died; the stream was trimmed past it before w1 came back.
    await admin.xreadgroup('GROUP', config.worker.group, 'w1', 'COUNT', 1, 'STREAMS', config.stream.key, '>');
    await admin.xtrim(config.stream.key, 'MAXLEN', 0);

    await drainOnce(config);
    expect(await deadLetters(config)).toEqual([{ entry_id: id, reason: 'trimmed from the stream before it was counted', deliveries: '1' }]);
  });

  it('retries an entry whose count keeps failing, then dead-letters it after WORKER_MAX_DELIVERIES', async () => {
    const config = testConfig({ STATS_BACKEND: 'hash', WORKER_CLAIM_IDLE_MS: '50', WORKER_MAX_DELIVERIES: '3' });
    const ts = Date.now() - 60_000; // a minute of its own, whose counter key we break
    const [poisonId] = await prefill(admin, config.stream.key, [{ fraudType: 'clean', ts }]);
    await admin.set(keyspaceFor(config, false).partitions[0]!.minuteCounts(bucketStart(ts, MINUTE_MS)), 'not a hash');
    const [goodId] = await prefill(admin, config.stream.key, [{ fraudType: 'clean', ts: Date.now() }]);

    await drainOnce(config);
    expect(await deadLetters(config)).toMatchObject([
      { entry_id: poisonId, deliveries: '3', reason: expect.stringContaining('WRONGTYPE') },
    ]);
    expect(goodId).toBeDefined();
    expect(await admin.xpending(config.stream.key, config.worker.group)).toEqual([0, null, null, null]);
  });

  it('writes nothing for a decision whose top offenders it cannot add to: not its counts either, on any retry', async () => {
    // The sorted sets whatever the server (the key broken below is one), as on plain Redis.
    const config = testConfig({ STATS_BACKEND: 'hash', OFFENDERS_BACKEND: 'zset', WORKER_CLAIM_IDLE_MS: '50', WORKER_MAX_DELIVERIES: '3' });
    const ts = Date.now() - 60_000;
    const [poisonId] = await prefill(admin, config.stream.key, [{ fraudType: 'click_spam', ts, deviceId: 'd-broken' }]);
    // Its minute's address offenders: the second of the two keys, written after its counts would be.
    const partition = keyspaceFor(config, false).partitions[0]!;
    await admin.set(partition.offenders('address', 'zset', bucketStart(ts, MINUTE_MS)), 'not a sorted set');

    await drainOnce(config);
    expect(await deadLetters(config)).toMatchObject([{ entry_id: poisonId, deliveries: '3', reason: expect.stringContaining('WRONGTYPE offenders key') }]);
    expect(await countsIn(admin, config, ts - 1000, ts + 1000)).toEqual({});
    expect(await admin.exists(partition.offenders('device', 'zset', bucketStart(ts, MINUTE_MS)))).toBe(0);
  });
});

describe('GET /stats', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ STATS_BACKEND: 'hash' });
  });
  afterAll(() => api.close());

  it('answers the last 15 minutes in 1 s buckets by default', async () => {
    const before = Date.now();
    const res = await fetch(`${api.base}/stats`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as StatsAnswer & { from: number; to: number; bucket_ms: number };
    expect(body.bucket_ms).toBe(1000);
    expect(body.to - body.from).toBe(15 * MINUTE_MS);
    expect(body.to).toBeGreaterThanOrEqual(before);
    expect(body.totals).toEqual(zeroCounts());
  });

  it('adds whole minutes and hours up from the per-minute hashes, as the per-second counts do', async () => {
    const now = Date.now();
    const decisions = Array.from({ length: 400 }, (_, i) => ({ fraudType: FRAUD_TYPES[i % 3]!, ts: now - 3 * 3_600_000 + Math.floor((i * 3 * 3_600_000) / 400) }));
    await prefill(api.admin, api.config.stream.key, decisions);
    const worker = await startTestWorker(api.config, api.redisUrl);
    try {
      await worker.drained();
    } finally {
      await worker.stop();
    }
    for (const bucket of [MINUTE_MS, 15 * MINUTE_MS, 3_600_000]) {
      const from = bucketStart(now - 4 * 3_600_000, bucket);
      const stats = await getStats(api, { from, to: now, bucket });
      const expected: Counts = {};
      for (const { fraudType, ts } of decisions) {
        const counts = (expected[bucketStart(ts, bucket)] ??= {});
        counts[fraudType] = (counts[fraudType] ?? 0) + 1;
        counts.total = (counts.total ?? 0) + 1;
      }
      expect(asCounts(stats.buckets), `bucket ${bucket}`).toEqual(expected);
    }
  });

  it.each([
    ['from=abc', [{ path: 'from', message: 'from must be a time in ms since the epoch' }]],
    ['to=-5', [{ path: 'to', message: 'to must be a time in ms since the epoch' }]],
    ['bucket=500', [{ path: 'bucket', message: 'bucket must be at least 1000 ms' }]],
    ['bucket=1500', [{ path: 'bucket', message: 'bucket must be a whole number of seconds' }]],
    ['bucket=1s', [{ path: 'bucket', message: 'bucket must be a whole number of ms' }]],
    ['from=2000000&to=1000000', [{ path: 'from', message: 'from must not be after to' }]],
    ['from=0&to=172800000&bucket=60000', [{ path: 'to', message: 'the range must be at most 1 day(s) for this bucket on the hash counters' }]],
    ['from=0&to=7200000&bucket=1000', [{ path: 'to', message: 'the range must be at most 1 hour(s) for this bucket on the hash counters' }]],
    [
      'from=0&to=86400000&bucket=1000',
      [
        { path: 'to', message: 'the range must be at most 1 hour(s) for this bucket on the hash counters' },
        { path: 'bucket', message: 'the range must hold at most 10000 buckets' },
      ],
    ],
  ])('refuses %s with a 400 naming the parameter', async (query, issues) => {
    const res = await fetch(`${api.base}/stats?${query}`);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_query', message: 'the stats query has invalid parameters', issues });
  });
});

async function getStats(api: TestApi, query: Record<string, number>): Promise<StatsAnswer> {
  const res = await fetch(`${api.base}/stats?${new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]))}`);
  expect(res.status).toBe(200);
  return (await res.json()) as StatsAnswer;
}

/** A client with the project's scripts, for driving the atomic steps directly. */
async function scriptedClient(url: string): Promise<Redis> {
  // The worker tests run on a single Redis.
  const redis = createRedisClient({ url, timeoutMs: 5000, connectionName: 'test-admin', logger: pino({ level: 'silent' }) }) as Redis;
  await redis.connect();
  return redis;
}

interface Prefilled {
  fraudType: FraudType;
  ts: number;
  /** Default: one of 97 devices, round robin. */
  deviceId?: string;
  /** Default: 10.0.0.1. */
  ip?: string;
}

/** Decisions as the API writes them, straight into the stream. Returns their ids. */
async function prefill(redis: RedisClient, streamKey: string, decisions: Prefilled[]): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < decisions.length; i += 1000) {
    const pipeline = redis.pipeline();
    for (const [j, { fraudType, ts, deviceId = `d${(i + j) % 97}`, ip = '10.0.0.1' }] of decisions.slice(i, i + 1000).entries()) {
      pipeline.xadd(streamKey, '*', 'transaction_id', `t${i + j}`, 'device_id', deviceId, 'ip', ip, 'status', statusOf(fraudType), 'fraud_type', fraudType, 'ts', String(ts));
    }
    for (const [error, id] of (await pipeline.exec())!) {
      if (error) throw error;
      ids.push(id as string);
    }
  }
  return ids;
}

/** Decisions spread over a few seconds, the first three fraud types, from 20 devices and 7 addresses. */
function syntheticDecisions(count: number): Array<Required<Prefilled>> {
  const start = Date.now() - 10_000;
  return Array.from({ length: count }, (_, i) => ({
    fraudType: FRAUD_TYPES[i % 3]!,
    ts: start + Math.floor((i * 5000) / count),
    deviceId: `d${i % 20}`,
    ip: `10.0.${i % 7}.1`,
  }));
}

/** The fraud decisions' devices or addresses, with their clicks per verdict, heaviest first (ties by id). */
function expectedOffenders(decisions: Array<Required<Prefilled>>, key: 'deviceId' | 'ip'): Offender[] {
  const byId = new Map<string, Offender>();
  for (const decision of decisions) {
    if (decision.fraudType === 'clean') continue;
    const id = decision[key];
    const offender = byId.get(id) ?? { id, fraud: 0, verdicts: {} };
    offender.fraud += 1;
    offender.verdicts[decision.fraudType] = (offender.verdicts[decision.fraudType] ?? 0) + 1;
    byId.set(id, offender);
  }
  return [...byId.values()].sort((a, b) => b.fraud - a.fraud || (a.id < b.id ? -1 : 1));
}

function expectedCounts(decisions: Array<{ fraudType?: FraudType; fraud_type?: string; ts: number }>): Counts {
  const counts: Counts = {};
  for (const decision of decisions) {
    const bucket = (counts[bucketStart(decision.ts, 1000)] ??= {});
    const type = (decision.fraudType ?? decision.fraud_type) as FraudType;
    bucket[type] = (bucket[type] ?? 0) + 1;
    bucket.total = (bucket.total ?? 0) + 1;
  }
  return counts;
}

function asCounts(buckets: StatsAnswer['buckets']): Counts {
  return Object.fromEntries(buckets.map(({ ts, ...series }) => [ts, series]));
}

/** Per-second counts as stored, read back without going through the code under test. */
async function countsIn(redis: RedisClient, config: ReturnType<typeof testConfig>, from: number, to: number): Promise<Counts> {
  const counts: Counts = {};
  const add = (ts: number, series: SeriesName, value: number) => {
    const bucket = (counts[ts] ??= {});
    bucket[series] = (bucket[series] ?? 0) + value;
  };
  const partition = keyspaceFor(config, false).partitions[0]!;
  if (config.stats.backend === 'timeseries') {
    for (const series of SERIES) {
      const samples = (await redis.call('TS.RANGE', partition.timeSeries(series, '1s'), from, to)) as Array<[number, string]>;
      for (const [ts, value] of samples) add(Number(ts), series, Number(value));
    }
  } else {
    for (let minute = bucketStart(from, MINUTE_MS); minute <= to; minute += MINUTE_MS) {
      for (const [field, value] of Object.entries(await redis.hgetall(partition.minuteCounts(minute)))) {
        const [series, second] = field.split('@');
        add(Number(second), series as SeriesName, Number(value));
      }
    }
  }
  return counts;
}

async function entriesRead(redis: Redis, config: ReturnType<typeof testConfig>): Promise<number> {
  const groups = (await redis.call('XINFO', 'GROUPS', config.stream.key).catch(() => [])) as unknown[][];
  const group = groups.map(fieldMap).find((g) => g.get('name') === config.worker.group);
  return Number(group?.get('entries-read') ?? 0);
}
