import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capturingLogger, redisStackMissing, redisStackUrl, redisUrl, startTestApi, type TestApi } from './support/api.js';
import { runCli } from './support/cli.js';

const TOKEN = 'test-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

interface Readyz {
  blacklist: { backend: string; non_canonical?: { found: number; examples: Array<{ raw: string; canonical: string | null }>; scanned: number; complete: boolean } };
}
interface NonCanonicalAnswer {
  items?: Array<{ raw: string; canonical: string | null }>;
  fixed?: Array<{ raw: string; canonical: string | null }>;
  scanned: number;
  next_cursor: string | null;
}

const byRaw = (entries: Array<{ raw: string; canonical: string | null }>) => [...entries].sort((a, b) => (a.raw < b.raw ? -1 : 1));

/** A blacklist key of a test's own, filled before the API starts, as an operator's redis-cli would have. */
async function prefilledKey(redis: Redis, members: string[]): Promise<string> {
  const key = `test:${randomUUID().slice(0, 8)}:ip_cf`;
  for (let i = 0; i < members.length; i += 10_000) await redis.sadd(key, ...members.slice(i, i + 10_000));
  return key;
}

describe('entries of the set blacklist that are not in canonical form', () => {
  let redis: Redis;
  let api: TestApi;
  let log: ReturnType<typeof capturingLogger>;
  let key: string;
  const nonCanonical = ['2001:DB8::9', '::ffff:5.6.7.8', '10.0.0.0/8', ' 198.51.100.9'];

  beforeAll(async () => {
    redis = new Redis(redisUrl);
    key = await prefilledKey(redis, [...nonCanonical, '192.0.2.1', '2001:db8::1']);
    log = capturingLogger();
    api = await startTestApi({ BLACKLIST_BACKEND: 'set', IP_CUCKOO_FILTER_NAME: key, ADMIN_TOKEN: TOKEN }, redisUrl, log.logger);
  });
  afterAll(async () => {
    await api?.close();
    await redis.del(key);
    redis.disconnect();
  });

  const readyz = async () => ((await (await fetch(`${api.base}/readyz`)).json()) as Readyz).blacklist.non_canonical;
  const verdict = async (ip: string) => (await api.click(`dev-${randomUUID()}`, 'tx', ip)).fraud_type;
  const adminCall = async (method: string, path: string) => fetch(`${api.base}/admin/blacklist${path}`, { method, headers: auth });

  it('block nothing, which is why they matter', async () => {
    expect(await verdict('2001:db8::9')).toBe('clean');
    expect(await verdict('5.6.7.8')).toBe('clean');
    expect(await verdict('192.0.2.1')).toBe('ip_blacklist');
  });

  it('are named in a start-up warning, with how to fix them', () => {
    const warning = log.lines().find((line) => String(line.msg).includes('not in canonical form'));
    expect(warning).toMatchObject({ level: 40, blacklist: key, nonCanonical: 4, complete: true });
    expect(warning!.msg).toContain(`the blacklist set "${key}" holds 4 entries not in canonical form, which block nothing: `);
    for (const text of ['"2001:DB8::9" (should be 2001:db8::9)', '"::ffff:5.6.7.8" (should be 5.6.7.8)', '"10.0.0.0/8" (not an address)', '" 198.51.100.9" (should be 198.51.100.9)']) {
      expect(warning!.msg).toContain(text);
    }
    expect(warning!.msg).toContain('npm run blacklist -- non-canonical --fix');
  });

  it('are pointed out by /readyz, from the start-up look rather than a scan per request', async () => {
    const report = await readyz();
    expect(report).toMatchObject({ found: 4, scanned: 6, complete: true });
    expect(byRaw(report!.examples)).toEqual([
      { raw: ' 198.51.100.9', canonical: '198.51.100.9' },
      { raw: '10.0.0.0/8', canonical: null },
      { raw: '2001:DB8::9', canonical: '2001:db8::9' },
      { raw: '::ffff:5.6.7.8', canonical: '5.6.7.8' },
    ]);
    // Added after start-up, outside the admin API: /readyz does not scan again by itself.
    await redis.sadd(key, '::FFFF:1.2.3.4');
    expect((await readyz())!.found).toBe(4);
    await redis.srem(key, '::FFFF:1.2.3.4');
  });

  it('are listed by the admin API, raw spelling and canonical form', async () => {
    const res = await adminCall('GET', '/non-canonical');
    expect(res.status).toBe(200);
    const answer = (await res.json()) as NonCanonicalAnswer;
    expect(answer).toMatchObject({ scanned: 6, next_cursor: null });
    expect(byRaw(answer.items!)).toEqual(byRaw((await readyz())!.examples));
    expect((await adminCall('GET', '/non-canonical?cursor=abc')).status).toBe(400);
  });

  it('are removed by a DELETE of that spelling, which /readyz then reflects', async () => {
    const res = await adminCall('DELETE', '/2001:DB8::9');
    expect(await res.json()).toEqual({ ip: '2001:db8::9', unblocked: false, entry_removed: false, spelling: '2001:DB8::9', spelling_removed: true });
    expect(await redis.sismember(key, '2001:DB8::9')).toBe(0);
    expect((await readyz())!.found).toBe(3);
    expect((await adminCall('DELETE', '/2001:DB8::9')).status).toBe(404);
  });

  it('are fixed by the admin API: replaced by their canonical spelling, or removed when no address', async () => {
    const res = await adminCall('POST', '/non-canonical/fix');
    expect(res.status).toBe(200);
    const answer = (await res.json()) as NonCanonicalAnswer;
    expect(byRaw(answer.fixed!)).toEqual([
      { raw: ' 198.51.100.9', canonical: '198.51.100.9' },
      { raw: '10.0.0.0/8', canonical: null },
      { raw: '::ffff:5.6.7.8', canonical: '5.6.7.8' },
    ]);
    expect((await redis.smembers(key)).sort()).toEqual(['192.0.2.1', '198.51.100.9', '2001:db8::1', '5.6.7.8']);
    expect(await verdict('5.6.7.8')).toBe('ip_blacklist');
    expect(await verdict('::ffff:198.51.100.9')).toBe('ip_blacklist');
    expect(await readyz()).toMatchObject({ found: 0, examples: [], complete: true });
    expect(((await (await adminCall('GET', '/non-canonical')).json()) as NonCanonicalAnswer).items).toEqual([]);
  });

  it('are listed, fixed and removed with the CLI too', async () => {
    await redis.sadd(key, '2001:DB8::77', '::ffff:5.6.7.9', 'junk');
    const listed = await runCli(api, ['non-canonical']);
    expect(listed.code).toBe(0);
    expect(listed.stdout.trim().split('\n').sort()).toEqual(
      ['"2001:DB8::77" (should be 2001:db8::77)', '"::ffff:5.6.7.9" (should be 5.6.7.9)', '"junk" (not an address)', '3 entries not in canonical form (7 entries looked at)'].sort(),
    );

    const removed = await runCli(api, ['remove', '2001:DB8::77']);
    expect(removed.stdout.trim()).toBe('removed the entry "2001:DB8::77", not in canonical form (it blocked nothing)');

    const fixed = await runCli(api, ['non-canonical', '--fix']);
    expect(fixed.stdout.trim().split('\n').sort()).toEqual(['2 entries not in canonical form fixed (6 entries looked at)', 'removed "junk" (not an address)', 'replaced "::ffff:5.6.7.9" by 5.6.7.9'].sort());
    expect(await redis.sismember(key, '5.6.7.9')).toBe(1);
    expect(await redis.scard(key)).toBe(5);
  });
});

describe('looking through a large set blacklist', () => {
  let redis: Redis;
  let api: TestApi;
  let key: string;
  const hidden = ['::FFFF:10.1.2.3', '2001:0DB8::5', 'not-an-ip'];

  beforeAll(async () => {
    redis = new Redis(redisUrl);
    // 120,000 canonical members, more than one look covers (100,000), and three others among them.
    const members = Array.from({ length: 120_000 }, (_, n) => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`);
    members.splice(30_000, 0, hidden[0]!);
    members.splice(60_000, 0, hidden[1]!);
    members.splice(110_000, 0, hidden[2]!);
    key = await prefilledKey(redis, members);
    api = await startTestApi({ BLACKLIST_BACKEND: 'set', IP_CUCKOO_FILTER_NAME: key, ADMIN_TOKEN: TOKEN });
  }, 60_000);
  afterAll(async () => {
    await api?.close();
    await redis.del(key);
    redis.disconnect();
  });

  it('looks at a bounded page per request, and finds everything page by page', async () => {
    const report = ((await (await fetch(`${api.base}/readyz`)).json()) as Readyz).blacklist.non_canonical!;
    expect(report.complete).toBe(false);
    expect(report.scanned).toBeGreaterThanOrEqual(100_000);
    expect(report.scanned).toBeLessThan(100_000 + 2000);

    const found: string[] = [];
    let cursor: string | null = '0';
    let pages = 0;
    let scanned = 0;
    while (cursor !== null) {
      const answer = (await (await fetch(`${api.base}/admin/blacklist/non-canonical?cursor=${cursor}`, { headers: auth })).json()) as NonCanonicalAnswer;
      expect(answer.scanned).toBeLessThan(100_000 + 2000);
      found.push(...answer.items!.map((item) => item.raw));
      scanned += answer.scanned;
      cursor = answer.next_cursor;
      pages += 1;
    }
    expect(pages).toBe(2);
    expect(scanned).toBeGreaterThanOrEqual(120_003);
    expect(found.sort()).toEqual([...hidden].sort());
  }, 60_000);
});

describe.skipIf(!redisStackUrl)(`a cuckoo filter blacklist${redisStackUrl ? '' : ` — skipped: ${redisStackMissing}`}`, () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ BLACKLIST_BACKEND: 'cuckoo', ADMIN_TOKEN: TOKEN }, redisStackUrl);
  });
  afterAll(() => api?.close());

  it('cannot be listed, and the admin API and CLI say why', async () => {
    const res = await fetch(`${api.base}/admin/blacklist/non-canonical`, { headers: auth });
    expect(res.status).toBe(409);
    expect(await res.json()).toEqual({
      error: 'not_enumerable',
      message: `the blacklist "${api.config.blacklist.key}" is a cuckoo filter, which cannot be listed: add addresses in canonical form (the admin API and the CLI always do)`,
    });
    const cli = await runCli(api, ['non-canonical']);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('is a cuckoo filter, which cannot be listed');
    const readyz = (await (await fetch(`${api.base}/readyz`)).json()) as Readyz;
    expect(readyz.blacklist.backend).toBe('cuckoo');
    expect(readyz.blacklist.non_canonical).toBeUndefined();
  });

  it('deletes only canonical addresses from it: a spelling nobody added may be a false positive, another address', async () => {
    await api.admin.call('CF.ADDNX', api.config.blacklist.key, '2001:DB8::9');
    expect((await api.click('dev-cf', 'tx', '2001:db8::9')).fraud_type).toBe('clean');
    const res = await fetch(`${api.base}/admin/blacklist/2001:DB8::9`, { method: 'DELETE', headers: auth });
    expect(res.status).toBe(404);
    expect(await api.admin.call('CF.EXISTS', api.config.blacklist.key, '2001:DB8::9')).toBe(1);
  });
});
