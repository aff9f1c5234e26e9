import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { startApi } from '../src/http/start-api.js';
import { bucketStart } from '../src/domain/decision-entry.js';
import { MINUTE_MS, SERIES, seriesLabels, timeSeriesKey, workerLagKey } from '../src/stats/series.js';
import { redisStackMissing, redisStackUrl, sleep, startTestApi, testConfig, type TestApi } from './support/api.js';
import { startTestWorker, type TestWorker } from './support/worker.js';
import { fieldMap, pairs } from './support/replies.js';

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
      const info = fieldMap((await api.admin.call('TS.INFO', timeSeriesKey(api.config.keyPrefix, series, '1s'))) as unknown[]);
      expect(info.get('retentionTime')).toBe(3_600_000);
      expect(Object.fromEntries(info.get('labels') as Array<[string, string]>)).toEqual(
        Object.fromEntries(pairs(seriesLabels(api.config.stats.appName, series, '1s'))),
      );
      const [rule] = info.get('rules') as Array<[string, number, string]>;
      expect(rule!.slice(0, 3).map((v) => (typeof v === 'string' ? v.toLowerCase() : v))).toEqual([
        timeSeriesKey(api.config.keyPrefix, series, '1m').toLowerCase(),
        MINUTE_MS,
        'sum',
      ]);
      const minute = fieldMap((await api.admin.call('TS.INFO', timeSeriesKey(api.config.keyPrefix, series, '1m'))) as unknown[]);
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
    const perMinute = (await api.admin.call('TS.RANGE', timeSeriesKey(api.config.keyPrefix, 'clean', '1m'), minute, minute)) as Array<[number, string]>;
    expect(perMinute).toEqual([[minute, '2']]);
    await sleep(1200);
    const lag = (await api.admin.call('TS.GET', workerLagKey(api.config.keyPrefix))) as [number, string];
    expect(lag[1]).toBe('0');
  });
});
