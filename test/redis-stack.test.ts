import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { startApi } from '../src/http/start-api.js';
import { bucketStart } from '../src/domain/decision-entry.js';
import { MINUTE_MS, SERIES, seriesLabels } from '../src/stats/series.js';
import { redisStackMissing, redisStackUrl, sleep, startTestApi, testConfig, type TestApi } from './support/api.js';
import { startTestWorker, type TestWorker } from './support/worker.js';
import { fieldMap, labelsOf, mrangeSeries, pairs, rulesOf } from './support/replies.js';

/** Runs where a module-enabled Redis is given (REDIS_STACK_URL, or testcontainers with Docker). */
describe.skipIf(!redisStackUrl)(`the cuckoo filter blacklist (Redis Stack)${redisStackUrl ? '' : ` — skipped: ${redisStackMissing}`}`, () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ IP_CUCKOO_FILTER_CAPACITY: '5000' }, redisStackUrl);
  });
  afterAll(() => api?.close());

  it('is chosen, created with CF.RESERVE and the configured capacity, and announced', async () => {
    const key = api.config.blacklist.key;
    expect(api.service.capabilities).toMatchObject({ bloom: true, timeseries: true });
    expect(api.service.blacklist).toEqual({ backend: 'cuckoo', key, addCommand: `CF.ADDNX ${key} <ip>` });
    expect(await api.admin.type(key)).toBe('MBbloomCF');
    const info = (await api.admin.call('CF.INFO', key)) as Array<string | number>;
    const field = (name: string) => Number(info[info.indexOf(name) + 1]);
    expect(field('Number of buckets') * field('Bucket size')).toBeGreaterThanOrEqual(5000);
    expect(await (await fetch(`${api.base}/readyz`)).json()).toMatchObject({
      blacklist: { backend: 'cuckoo', key, add_command: `CF.ADDNX ${key} <ip>` },
    });
  });

  it('blocks an address added with CF.ADDNX, whatever its spelling, as the article shows', async () => {
    await api.admin.call('CF.ADDNX', api.config.blacklist.key, '1.1.1.1');
    expect((await api.click('dev-1', 't1', '1.1.1.1')).fraud_type).toBe('ip_blacklist');
    expect((await api.click('dev-2', 't1', '::ffff:1.1.1.1')).fraud_type).toBe('ip_blacklist');
    expect((await api.click('dev-3', 't1', '1.1.1.2')).fraud_type).toBe('clean');
  });

  it('unblocks an address removed with CF.DEL', async () => {
    await api.admin.call('CF.ADDNX', api.config.blacklist.key, '203.0.113.5');
    expect((await api.click('dev-4', 't1', '203.0.113.5')).fraud_type).toBe('ip_blacklist');
    await api.admin.call('CF.DEL', api.config.blacklist.key, '203.0.113.5');
    expect((await api.click('dev-5', 't1', '203.0.113.5')).fraud_type).toBe('clean');
  });

  it('decides 50 concurrent clicks of one device exactly: 2 clean, 48 click_spam', async () => {
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => api.click('dev-race', `race-${i}`)));
    expect(answers.filter((a) => a.fraud_type === 'clean')).toHaveLength(2);
    expect(answers.filter((a) => a.fraud_type === 'click_spam')).toHaveLength(48);
  });

  it('keeps an existing filter when another instance starts', async () => {
    const second = await startApi(api.config, redisStackUrl!, pino({ level: 'silent' }));
    try {
      expect((await api.click('dev-6', 't1', '1.1.1.1')).fraud_type).toBe('ip_blacklist');
    } finally {
      await second.close();
    }
  });

  it('refuses to start when the key is a set rather than a cuckoo filter', async () => {
    const config = testConfig();
    const admin = new Redis(redisStackUrl!);
    try {
      await admin.sadd(config.blacklist.key, '1.1.1.1');
      await expect(startApi(config, redisStackUrl!, pino({ level: 'silent' }))).rejects.toThrow(
        `Redis key "${config.blacklist.key}" holds a set, not a cuckoo filter`,
      );
    } finally {
      await admin.del(config.blacklist.key);
      admin.disconnect();
    }
  });
});

describe.skipIf(!redisStackUrl)(`the RedisTimeSeries counters (Redis Stack)${redisStackUrl ? '' : ` — skipped: ${redisStackMissing}`}`, () => {
  let api: TestApi;
  let worker: TestWorker;
  beforeAll(async () => {
    api = await startTestApi({ STATS_RETENTION_SEC: '3600', STATS_MINUTE_RETENTION_SEC: '86400' }, redisStackUrl);
    worker = await startTestWorker(api.config, redisStackUrl!);
  });
  afterAll(async () => {
    await worker?.stop();
    await api?.close();
  });

  it('creates every series with its labels, retention and per-minute compaction rule', async () => {
    expect(worker.service.counters.backend).toBe('timeseries');
    expect(await (await fetch(`${api.base}/readyz`)).json()).toMatchObject({ stats: { backend: 'timeseries' } });
    for (const series of SERIES) {
      const info = fieldMap((await api.admin.call('TS.INFO', api.keyspace.partitions[0]!.timeSeries(series, '1s'))) as unknown[]);
      expect(info.get('retentionTime')).toBe(3_600_000);
      expect(labelsOf(info.get('labels'))).toEqual(Object.fromEntries(pairs(seriesLabels(api.config.stats.appName, series, '1s', 0))));
      expect(rulesOf(info.get('rules'))).toEqual([{ dest: api.keyspace.partitions[0]!.timeSeries(series, '1m'), bucketMs: MINUTE_MS, aggregation: 'sum' }]);
      const minute = fieldMap((await api.admin.call('TS.INFO', api.keyspace.partitions[0]!.timeSeries(series, '1m'))) as unknown[]);
      expect(minute.get('retentionTime')).toBe(86_400_000);
    }
  });

  it('sums a closed minute into the per-minute series, and records the lag', async () => {
    const minute = bucketStart(Date.now(), MINUTE_MS) - 2 * MINUTE_MS;
    // Two decisions in one minute, then one in the next, which closes the first minute's bucket.
    for (const [i, ts] of [minute + 1000, minute + 2000, minute + MINUTE_MS + 1000].entries()) {
      await api.admin.xadd(api.config.stream.key, '*', 'transaction_id', `m${i}`, 'device_id', 'd', 'ip', '10.0.0.1', 'status', 'clean', 'fraud_type', 'clean', 'ts', String(ts));
    }
    await worker.drained();
    const perMinute = (await api.admin.call('TS.RANGE', api.keyspace.partitions[0]!.timeSeries('clean', '1m'), minute, minute)) as Array<[number, string]>;
    expect(perMinute).toEqual([[minute, '2']]);
    await sleep(1200);
    const lag = (await api.admin.call('TS.GET', api.keyspace.partitions[0]!.workerLag)) as [number, string];
    expect(lag[1]).toBe('0');
  });
});

describe.skipIf(!redisStackUrl)(`module replies over RESP2 and RESP3 (Redis Stack)${redisStackUrl ? '' : ` — skipped: ${redisStackMissing}`}`, () => {
  const namespace = `test:${randomUUID().slice(0, 8)}:`;
  const clients = [2, 3].map((protocol) => new Redis(redisStackUrl ?? '', { protocol: protocol as 2 | 3, lazyConnect: true }));
  beforeAll(async () => {
    const [resp2] = clients;
    await resp2!.call('TS.CREATE', `${namespace}a`, 'LABELS', 'app', namespace, 'kind', 'a');
    await resp2!.call('TS.CREATE', `${namespace}b`, 'LABELS', 'app', namespace, 'kind', 'b');
    await resp2!.call('TS.CREATE', `${namespace}a:1m`);
    await resp2!.call('TS.CREATERULE', `${namespace}a`, `${namespace}a:1m`, 'AGGREGATION', 'sum', MINUTE_MS);
    await resp2!.call('TS.ADD', `${namespace}a`, 1000, 1.5);
    await resp2!.call('TS.ADD', `${namespace}b`, 1000, 2);
  });
  afterAll(async () => {
    await clients[0]?.del(`${namespace}a`, `${namespace}b`, `${namespace}a:1m`);
    for (const client of clients) client.disconnect();
  });

  it('come in different shapes, and read the same', async () => {
    const read = async (redis: Redis) => {
      const info = fieldMap((await redis.call('TS.INFO', `${namespace}a`)) as unknown[]);
      const filter = ['FILTER', `app=${namespace}`];
      return {
        hello: ((await redis.call('HELLO')) as unknown[])[5],
        labels: labelsOf(info.get('labels')),
        rules: rulesOf(info.get('rules')),
        series: mrangeSeries(await redis.call('TS.MRANGE', '-', '+', 'WITHLABELS', ...filter)),
        grouped: mrangeSeries(await redis.call('TS.MRANGE', '-', '+', ...filter, 'GROUPBY', 'app', 'REDUCE', 'sum')),
        raw: JSON.stringify(await redis.call('TS.MRANGE', '-', '+', 'WITHLABELS', ...filter)),
      };
    };
    const [resp2, resp3] = await Promise.all(clients.map(read));
    expect([resp2!.hello, resp3!.hello]).toEqual([2, 3]);
    // The protocols really differ on the wire, so a reader that assumed one shape would break.
    expect(resp2!.raw).not.toBe(resp3!.raw);
    const { hello: _2, raw: _r2, ...read2 } = resp2!;
    const { hello: _3, raw: _r3, ...read3 } = resp3!;
    expect(read3).toEqual(read2);
    expect(read2).toEqual({
      labels: { app: namespace, kind: 'a' },
      rules: [{ dest: `${namespace}a:1m`, bucketMs: MINUTE_MS, aggregation: 'sum' }],
      series: [
        { key: `${namespace}a`, labels: { app: namespace, kind: 'a' }, samples: [[1000, 1.5]] },
        { key: `${namespace}b`, labels: { app: namespace, kind: 'b' }, samples: [[1000, 2]] },
      ],
      grouped: [{ key: `app=${namespace}`, labels: {}, samples: [[1000, 3.5]] }],
    });
  });
});
