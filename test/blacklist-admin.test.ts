import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisStackMissing, redisStackUrl, redisUrl, sleep, startTestApi, type TestApi } from './support/api.js';
import { runCli } from './support/cli.js';
import { startTestWorker, type TestWorker } from './support/worker.js';

const TOKEN = 'test-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

const backends = [
  { backend: 'set', url: redisUrl, skip: '' },
  { backend: 'cuckoo', url: redisStackUrl ?? '', skip: redisStackUrl ? '' : redisStackMissing },
];

describe.each(backends)('blacklist management on the $backend blacklist', ({ backend, url, skip }) => {
  describe.skipIf(skip !== '')(`admin API and CLI${skip ? ` — skipped: ${skip}` : ''}`, () => {
    let api: TestApi;
    let worker: TestWorker;
    beforeAll(async () => {
      api = await startTestApi({ BLACKLIST_BACKEND: backend, ADMIN_TOKEN: TOKEN, BAN_SWEEP_INTERVAL_MS: '50' }, url);
      worker = await startTestWorker(api.config, url);
    });
    afterAll(async () => {
      await worker?.stop();
      await api?.close();
    });

    const admin = (method: string, path = '', body?: unknown, headers: Record<string, string> = auth) =>
      fetch(`${api.base}/admin/blacklist${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const verdict = async (ip: string) => (await api.click(`dev-${Math.random()}`, 'tx', ip)).fraud_type;
    /** What a change would touch: the blacklist and every registry key. */
    const state = async () => ({ keys: await api.writtenKeys(), blacklist: await api.admin.dump(api.config.blacklist.key) });

    it('blocks an added address and unblocks a removed one', async () => {
      const added = await admin('POST', '', { ip: '::ffff:198.51.100.1', reason: 'bot farm' });
      expect(added.status).toBe(201);
      const body = (await added.json()) as Record<string, unknown>;
      expect(body).toMatchObject({ ip: '198.51.100.1', reason: 'bot farm', source: 'admin-api', expires_at: null, blocked: true, already_blocked: false });
      expect(await verdict('198.51.100.1')).toBe('ip_blacklist');

      const got = await admin('GET', '/198.51.100.1');
      expect(await got.json()).toMatchObject({ ip: '198.51.100.1', blocked: true, entry: { reason: 'bot farm', source: 'admin-api' } });

      const removed = await admin('DELETE', '/198.51.100.1');
      expect(await removed.json()).toEqual({ ip: '198.51.100.1', unblocked: true, entry_removed: true });
      expect(await verdict('198.51.100.1')).toBe('clean');
      expect((await admin('GET', '/198.51.100.1')).status).toBe(404);
      expect((await admin('DELETE', '/198.51.100.1')).status).toBe(404);
    });

    it('adds an address once however often it is added, so one removal unblocks it', async () => {
      expect((await admin('POST', '', { ip: '198.51.100.2', reason: 'first' })).status).toBe(201);
      const again = await admin('POST', '', { ip: '198.51.100.2', reason: 'second' });
      expect(again.status).toBe(200);
      expect(await again.json()).toMatchObject({ reason: 'second', already_blocked: true, replaced: true });
      await admin('DELETE', '/198.51.100.2');
      expect(await verdict('198.51.100.2')).toBe('clean');
    });

    it('ends a temporary ban on time: the click is clean again and the record gone', async () => {
      const added = await admin('POST', '', { ip: '198.51.100.3', reason: 'cool-off', ttl: '1s' });
      const { added_at, expires_at } = (await added.json()) as { added_at: number; expires_at: number };
      expect(expires_at - added_at).toBe(1000);
      expect(await verdict('198.51.100.3')).toBe('ip_blacklist');
      const deadline = Date.now() + 5000;
      while ((await verdict('198.51.100.3')) !== 'clean' && Date.now() < deadline) await sleep(50);
      expect(await verdict('198.51.100.3')).toBe('clean');
      expect((await admin('GET', '/198.51.100.3')).status).toBe(404);
      expect(await api.admin.zscore(api.keyspace.bans.byExpiry, '198.51.100.3')).toBeNull();
    });

    it('keeps a ban that was renewed without end before its ttl ran out', async () => {
      await admin('POST', '', { ip: '198.51.100.4', reason: 'short', ttl: 1 });
      await admin('POST', '', { ip: '198.51.100.4', reason: 'for good' });
      await sleep(1300);
      expect(await verdict('198.51.100.4')).toBe('ip_blacklist');
      expect(await (await admin('GET', '/198.51.100.4')).json()).toMatchObject({ blocked: true, entry: { reason: 'for good', expires_at: null } });
    });

    it('reports an address blocked with redis-cli as blocked without a record, and removes it', async () => {
      await api.block('198.51.100.5');
      expect(await verdict('198.51.100.5')).toBe('ip_blacklist');
      expect(await (await admin('GET', '/198.51.100.5')).json()).toEqual({ ip: '198.51.100.5', blocked: true, entry: null });
      expect(await (await admin('DELETE', '/198.51.100.5')).json()).toEqual({ ip: '198.51.100.5', unblocked: true, entry_removed: false });
      expect(await verdict('198.51.100.5')).toBe('clean');
    });

    it('lists recorded bans newest first, a page at a time', async () => {
      for (const n of [10, 11, 12]) await admin('POST', '', { ip: `192.0.2.${n}`, reason: `r${n}`, source: 'list-test' });
      const first = (await (await admin('GET', '?limit=2')).json()) as { items: Array<{ ip: string }>; total: number };
      const second = (await (await admin('GET', '?limit=2&offset=2')).json()) as { items: Array<{ ip: string }> };
      expect(first.items.map((b) => b.ip)).toEqual(['192.0.2.12', '192.0.2.11']);
      expect(second.items[0]!.ip).toBe('192.0.2.10');
      expect(first.total).toBeGreaterThanOrEqual(3);
      const bad = await admin('GET', '?limit=0');
      expect(bad.status).toBe(400);
    });

    it.each([
      ['a missing token', {}],
      ['a wrong token', { authorization: 'Bearer not-the-token-at-all' }],
      ['another scheme', { authorization: `Basic ${TOKEN}` }],
    ])('answers 401 to %s and changes nothing', async (_, headers) => {
      await admin('POST', '', { ip: '198.51.100.6', reason: 'kept' });
      const before = await state();
      for (const [method, path, body] of [
        ['POST', '', { ip: '198.51.100.7', reason: 'no' }],
        ['DELETE', '/198.51.100.6', undefined],
        ['GET', '/198.51.100.6', undefined],
        ['GET', '', undefined],
      ] as const) {
        const res = await admin(method, path, body, headers);
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer');
        expect(await res.json()).toEqual({ error: 'unauthorized', message: 'the admin API needs Authorization: Bearer <ADMIN_TOKEN>' });
      }
      expect(await state()).toEqual(before);
      expect(await verdict('198.51.100.6')).toBe('ip_blacklist');
    });

    it.each([
      [{ ip: '1.1.1', reason: 'x' }, [{ path: 'ip', message: 'ip must be an IPv4 or IPv6 address, or a range such as 203.0.113.0/24' }]],
      [{ ip: '1.1.1.1' }, [{ path: 'reason', message: 'reason is required' }]],
      [{ ip: '1.1.1.1', reason: 'x', ttl: '5y' }, [{ path: 'ttl', message: 'ttl must be a duration from 1 second to 365 days, such as 3600, "90s", "15m", "1h" or "7d"' }]],
      [{ ip: '1.1.1.1', reason: 'x', ttl: 0 }, [{ path: 'ttl', message: 'ttl must be a duration from 1 second to 365 days, such as 3600, "90s", "15m", "1h" or "7d"' }]],
    ])('refuses %j with a 400 naming the field, and changes nothing', async (body, issues) => {
      const before = await state();
      const res = await admin('POST', '', body);
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: 'invalid_ban', message: 'the ban has invalid fields', issues });
      expect(await state()).toEqual(before);
    });

    it('refuses an invalid address in the path with a 400', async () => {
      for (const method of ['GET', 'DELETE']) {
        const res = await admin(method, '/not-an-ip');
        expect(res.status).toBe(400);
        expect(((await res.json()) as { error: string }).error).toBe('invalid_ip');
      }
    });

    it('imports a list with the CLI, counting added, already present and invalid lines', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'click-fraud-import-'));
      try {
        const file = join(dir, 'bad-ips.txt');
        writeFileSync(file, ['# from the abuse desk', '203.0.113.20', '203.0.113.21', '', '::ffff:203.0.113.20', 'not-an-ip', '203.0.113.21', '999.1.1.1', '2001:db8::20'].join('\n'));
        const { code, stdout } = await runCli(api, ['import', file]);
        expect(code).toBe(0);
        expect(stdout.trim().split('\n')).toEqual([
          'line 6: not an IP address or range: "not-an-ip"',
          'line 8: not an IP address or range: "999.1.1.1"',
          'added 3, already present 2, invalid 2',
        ]);
        for (const ip of ['203.0.113.20', '203.0.113.21', '2001:db8::20']) expect(await verdict(ip)).toBe('ip_blacklist');
        expect(await (await admin('GET', '/203.0.113.20')).json()).toMatchObject({ entry: { source: 'import:bad-ips.txt', reason: 'imported from bad-ips.txt' } });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('adds, shows and removes with the CLI, refusing a bad address in one clear line', async () => {
      expect((await runCli(api, ['add', '203.0.113.30', '--reason', 'bot farm', '--ttl', '1h'])).code).toBe(0);
      expect(await verdict('203.0.113.30')).toBe('ip_blacklist');
      expect((await runCli(api, ['get', '203.0.113.30'])).stdout).toMatch(/^blocked: 203\.0\.113\.30 {2}"bot farm" {2}by cli .* until /);
      expect((await runCli(api, ['remove', '203.0.113.30'])).stdout.trim()).toBe('unblocked 203.0.113.30');
      expect(await verdict('203.0.113.30')).toBe('clean');
      const bad = await runCli(api, ['add', '1.1.1', '--reason', 'x']);
      expect(bad.code).toBe(1);
      expect(bad.stderr.split('\n')[0]).toBe("error: command-argument value '1.1.1' is invalid for argument 'ip'. not an IPv4 or IPv6 address, or a range such as 203.0.113.0/24.");
    });
  });
});

describe('the admin API without ADMIN_TOKEN', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(() => api.close());

  it('is off and says so, whatever the request', async () => {
    // What start-up wrote (on Redis Stack: the cuckoo filter and the series) stays as it was.
    const before = await api.writtenKeys();
    for (const method of ['POST', 'GET', 'DELETE']) {
      const res = await fetch(`${api.base}/admin/blacklist/1.2.3.4`, { method, headers: auth });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ error: 'admin_disabled', message: 'the admin API is off: set ADMIN_TOKEN to turn it on' });
    }
    expect(await api.writtenKeys()).toEqual(before);
  });
});
