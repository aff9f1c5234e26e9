import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ruleSetSchema, RECENT_TRANSACTIONS } from '../src/domain/rules.js';
import { RULES_POLL_MS } from '../src/redis/rule-store.js';
import { redisClusterUrl, redisStackUrl, redisUrl, sleep, startTestApi, type ClickAnswer, type TestApi } from './support/api.js';
import { runCli } from './support/cli.js';
import { startTestWorker } from './support/worker.js';

const TOKEN = 'rules-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

/** `hammer`: clicks one device sends in one window to show its window stays bounded (100,000 once; the same script elsewhere). */
const servers = [
  { name: 'plain Redis', url: redisUrl, hammer: 100_000 },
  { name: 'Redis Stack (cuckoo filter)', url: redisStackUrl, hammer: 10_000 },
  { name: 'a Redis Cluster', url: redisClusterUrl, hammer: 10_000 },
];

describe.each(servers)('detection rules on $name', ({ url, hammer }) => {
  describe.skipIf(!url)('', () => {
    let api: TestApi;
    beforeAll(async () => {
      // Three round trips a click on a cluster, on a machine shared with the rest of the suite.
      api = await startTestApi({ ADMIN_TOKEN: TOKEN, REDIS_TIMEOUT_MS: '1000' }, url);
    });
    afterAll(() => api?.close());

    const admin = (method: string, path: string, body?: unknown) =>
      fetch(`${api.base}/admin/${path}`, { method, headers: auth, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    /** Puts a rule set and waits until this API judges by it (it polls every RULES_POLL_MS). */
    const useRules = async (rules: unknown) => {
      const res = await admin('PUT', 'rules', rules);
      expect(res.status).toBe(200);
      const { version } = (await res.json()) as { version: number };
      for (let i = 0; i < 40; i += 1) {
        if ((await api.click(`probe-${Math.random()}`, 'p', '192.0.2.200')).rules_version === version) return version;
        await sleep(50);
      }
      throw new Error(`rule set v${version} never came into force`);
    };
    const click = (device: string, tx: string, ip: string) => api.click(device, tx, ip);

    it('blocks every address of a blacklisted range, IPv4 and IPv6, up to its edges and not past them', async () => {
      await useRules({});
      for (const range of ['198.18.4.0/22', '10.64.0.0/10', '2001:db8:40::/42', '2001:db8:abcd:12::/64']) {
        const added = await admin('POST', 'blacklist', { ip: range, reason: 'hosting range' });
        expect(added.status).toBe(201);
      }
      const cases: Array<[string, string]> = [
        ['198.18.3.255', 'clean'],
        ['198.18.4.0', 'ip_range'],
        ['198.18.7.255', 'ip_range'],
        ['198.18.8.0', 'clean'],
        // A prefix length that ends inside a hex digit (10 bits: 0000 1010 01).
        ['10.63.255.255', 'clean'],
        ['10.64.0.0', 'ip_range'],
        ['10.127.255.255', 'ip_range'],
        ['10.128.0.0', 'clean'],
        ['2001:db8:3f:ffff:ffff:ffff:ffff:ffff', 'clean'],
        ['2001:db8:40::', 'ip_range'],
        ['2001:db8:7f:ffff:ffff:ffff:ffff:ffff', 'ip_range'],
        ['2001:db8:80::', 'clean'],
        ['2001:DB8:ABCD:12:FFFF:FFFF:FFFF:FFFF', 'ip_range'],
        ['2001:db8:abcd:13::', 'clean'],
      ];
      const answers = [];
      for (const [i, [ip]] of cases.entries()) answers.push(await click(`range-${i}`, 't', ip));
      expect(answers.map((answer, i) => [cases[i]![0], answer.fraud_type])).toEqual(cases);
      expect(answers[1]!.reason).toEqual({ rule: 'ip_range', observed: '198.18.4.0/22' });
      expect(answers[12]!.reason).toEqual({ rule: 'ip_range', observed: '2001:db8:abcd:12::/64' });
      // Removed, it blocks nothing.
      expect((await admin('DELETE', `blacklist/${encodeURIComponent('198.18.4.0/22')}`)).status).toBe(200);
      expect((await click('range-after', 't', '198.18.5.1')).fraud_type).toBe('clean');
    });

    it('ends a temporary range ban on time, as an address ban', async () => {
      await useRules({});
      const worker = await startTestWorker(api.config, url!);
      try {
        expect((await admin('POST', 'blacklist', { ip: '100.64.8.0/21', reason: 'for a moment', ttl: 1 })).status).toBe(201);
        expect((await click('ttl-range-1', 't', '100.64.9.9')).fraud_type).toBe('ip_range');
        let verdict = 'ip_range';
        for (const deadline = Date.now() + 5000; verdict !== 'clean' && Date.now() < deadline; await sleep(100)) {
          verdict = (await click(`ttl-range-${Math.random()}`, 't', '100.64.9.9')).fraud_type;
        }
        expect(verdict).toBe('clean');
        expect((await admin('GET', `blacklist/${encodeURIComponent('100.64.8.0/21')}`)).status).toBe(404);
      } finally {
        await worker.stop();
      }
    });

    it('fires ip_flood at more than its threshold of clicks from one address, and not below', async () => {
      await useRules({ ip_flood: { mode: 'enforce', threshold: 3, window_sec: 10 } });
      const answers = [];
      // Four devices, so that click_spam (two per device) stays out of it.
      for (let i = 0; i < 5; i += 1) answers.push(await click(`flood-${i}`, 't', '192.0.2.10'));
      expect(answers.map((answer) => answer.fraud_type)).toEqual(['clean', 'clean', 'clean', 'ip_flood', 'ip_flood']);
      expect(answers[3]!.reason).toEqual({ rule: 'ip_flood', observed: 4, limit: 3, window_sec: 10 });
      // A retry is not a new click of the address.
      expect((await click('flood-0', 't', '192.0.2.10')).duplicate).toBe(true);
      expect((await click('flood-other', 't', '192.0.2.11')).fraud_type).toBe('clean');
    });

    it('fires device_farm at more than its threshold of devices behind one address, and not below', async () => {
      await useRules({ device_farm: { mode: 'enforce', threshold: 3, window_sec: 60 } });
      const answers = [];
      for (const device of ['farm-a', 'farm-b', 'farm-c', 'farm-a', 'farm-d', 'farm-e']) answers.push(await click(device, `t-${Math.random()}`, '192.0.2.20'));
      // farm-a again is no new device; farm-d is the fourth.
      expect(answers.map((answer) => answer.fraud_type)).toEqual(['clean', 'clean', 'clean', 'clean', 'device_farm', 'device_farm']);
      expect(answers[4]!.reason).toEqual({ rule: 'device_farm', observed: 4, limit: 3, window_sec: 60 });
    });

    it('lets the allowlist win over a blacklisted range and over click spam, and still records the clicks', async () => {
      await useRules({});
      await admin('POST', 'blacklist', { ip: '198.51.100.0/24', reason: 'range' });
      expect((await admin('POST', 'allowlist', { ip: '198.51.100.77', reason: 'QA rig' })).status).toBe(201);
      expect((await admin('POST', 'allowlist', { ip: '2001:db8:beef::/48', reason: 'office' })).status).toBe(201);
      expect((await admin('POST', 'allowlist', { device_id: 'qa-phone', reason: 'QA device' })).status).toBe(201);
      const rig = await click('rig', 't', '198.51.100.77');
      expect(rig).toMatchObject({ fraud_type: 'clean', allowlisted: true });
      expect((await click('rig-neighbour', 't', '198.51.100.78')).fraud_type).toBe('ip_range');
      const office = [];
      for (let i = 0; i < 4; i += 1) office.push(await click('office-laptop', `t${i}`, '2001:db8:beef:1::5'));
      expect(office.map((answer) => [answer.fraud_type, answer.allowlisted])).toEqual(Array(4).fill(['clean', true]));
      const phone = [];
      for (let i = 0; i < 4; i += 1) phone.push(await click('qa-phone', `t${i}`, '198.51.100.9'));
      expect(phone.every((answer) => answer.fraud_type === 'clean' && answer.allowlisted)).toBe(true);
      // Recorded and streamed as any click.
      const entry = await api.admin.xrange(api.keyspace.partitionOf('rig').stream, rig.stream_id!, rig.stream_id!);
      expect(entry[0]![1]).toEqual(expect.arrayContaining(['allowlisted', '1']));
      const listed = (await (await admin('GET', 'allowlist/addresses')).json()) as { items: Array<{ kind: string; value: string }> };
      expect(listed.items.map(({ kind, value }) => [kind, value]).sort()).toEqual(expect.arrayContaining([['address', '198.51.100.77'], ['range', '2001:db8:beef::/48']]));
      expect((await admin('DELETE', 'allowlist/addresses/198.51.100.77')).status).toBe(200);
      expect((await click('rig-again', 't', '198.51.100.77')).fraud_type).toBe('ip_range');
    });

    it('records a shadow rule beside the verdict, which it does not change', async () => {
      await useRules({ ip_flood: { mode: 'shadow', threshold: 1, window_sec: 10 } });
      const first = await click('shadow-1', 't', '192.0.2.30');
      const second = await click('shadow-2', 't', '192.0.2.30');
      expect(first).toMatchObject({ fraud_type: 'clean' });
      expect(first.shadow).toBeUndefined();
      expect(second).toMatchObject({ fraud_type: 'clean', shadow: [{ rule: 'ip_flood', observed: 2, limit: 1, window_sec: 10 }] });
      const [, fields] = (await api.admin.xrange(api.keyspace.partitionOf('shadow-2').stream, second.stream_id!, second.stream_id!))[0]!;
      const entry = Object.fromEntries(Array.from({ length: fields.length / 2 }, (_, i) => [fields[2 * i], fields[2 * i + 1]]));
      expect(entry).toMatchObject({ fraud_type: 'clean', status: 'clean' });
      expect(JSON.parse(entry.shadow!)).toEqual([{ rule: 'ip_flood', observed: 2, limit: 1, window_sec: 10 }]);
    });

    it('takes a new rule set in force in every API process within about a second, and refuses an invalid one whole', async () => {
      const other = await startTestApi({ ...api.config.env }, url);
      try {
        const res = await admin('PUT', 'rules', { click_spam: { mode: 'off' } });
        const { version } = (await res.json()) as { version: number };
        const started = Date.now();
        let seen = 0;
        while (Date.now() - started < 3000) {
          const answer = await other.click(`live-${Math.random()}`, 't', '192.0.2.40');
          if (answer.rules_version === version) {
            seen = Date.now() - started;
            break;
          }
          await sleep(20);
        }
        expect(seen).toBeGreaterThan(0);
        expect(seen).toBeLessThan(RULES_POLL_MS + 500);
        // Spam is off: a fourth click of a device is clean.
        for (let i = 0; i < 4; i += 1) expect((await other.click('no-spam', `t${i}`, '192.0.2.41')).fraud_type).toBe('clean');

        const invalid = await admin('PUT', 'rules', { click_spam: { mode: 'sometimes', threshold: 0 }, ip_flood: { window_sec: -1 }, extra: {} });
        expect(invalid.status).toBe(400);
        const problems = ((await invalid.json()) as { issues: Array<{ path: string }> }).issues.map((issue) => issue.path).sort();
        expect(problems).toEqual(['(body)', 'click_spam.mode', 'click_spam.threshold', 'ip_flood.window_sec']);
        expect(((await (await admin('GET', 'rules')).json()) as { version: number }).version).toBe(version);

        // Back to the environment's rules.
        const reset = (await (await admin('DELETE', 'rules')).json()) as { version: number; source: string; rules: unknown };
        expect(reset).toMatchObject({ source: 'environment', rules: ruleSetSchema.parse({}) });
      } finally {
        await other.close();
      }
    });

    it(`keeps a device's and an address's windows bounded, whatever they send (${hammer} clicks of one device)`, async () => {
      await useRules({ ip_flood: { mode: 'enforce', threshold: 5, window_sec: 60 }, device_farm: { mode: 'shadow', threshold: 4, window_sec: 60 } });
      const batch = (round: number, device: (i: number) => string) =>
        fetch(`${api.base}/batch`, {
          method: 'POST',
          body: JSON.stringify({ clicks: Array.from({ length: 1000 }, (_, i) => ({ device_id: device(i), ip: '192.0.2.50', transaction_id: `b-${round}-${i}` })) }),
        });
      // Four batches at a time: their order does not matter to the bound.
      for (let round = 0; round < hammer / 1000; round += 4) {
        const statuses = await Promise.all([0, 1, 2, 3].map(async (k) => (await batch(round + k, () => 'hammer')).status));
        expect(statuses).toEqual([200, 200, 200, 200]);
      }
      for (let round = 0; round < 5; round += 1) expect((await batch(hammer + round, (i) => `many-${i}`)).status).toBe(200);
      const device = api.deviceKeys('hammer');
      expect(await api.admin.zcard(device.window)).toBeLessThanOrEqual(RECENT_TRANSACTIONS);
      expect(await api.admin.hlen(device.verdicts)).toBeLessThanOrEqual(RECENT_TRANSACTIONS);
      const address = api.keyspace.address('192.0.2.50');
      expect(await api.admin.zcard(address.clicks)).toBe(6);
      expect(await api.admin.zcard(address.devices)).toBe(5);
    }, 60_000);
  });
});

describe('the default rule set', () => {
  it("is the reference article's two rules, the new ones off", () => {
    expect(ruleSetSchema.parse({})).toEqual({
      ip_blacklist: { mode: 'enforce' },
      ip_range: { mode: 'enforce' },
      click_spam: { mode: 'enforce', threshold: 2, window_sec: 10 },
      ip_flood: { mode: 'off', threshold: 20, window_sec: 10 },
      device_farm: { mode: 'off', threshold: 5, window_sec: 60 },
    });
  });

  it('gives the verdicts of before, with a reason for fraud', async () => {
    const api = await startTestApi();
    try {
      await api.block('203.0.113.99');
      const answers: ClickAnswer[] = [];
      for (const tx of ['a', 'b', 'c']) answers.push(await api.click('article', tx, '10.0.0.1'));
      answers.push(await api.click('other', 'a', '203.0.113.99'));
      expect(answers.map((answer) => answer.fraud_type)).toEqual(['clean', 'clean', 'click_spam', 'ip_blacklist']);
      expect(answers[2]!.reason).toEqual({ rule: 'click_spam', observed: 3, limit: 2, window_sec: 10 });
      expect(answers[3]!.reason).toEqual({ rule: 'ip_blacklist', observed: '203.0.113.99' });
      expect(answers.every((answer) => answer.shadow === undefined && answer.allowlisted === undefined)).toBe(true);
    } finally {
      await api.close();
    }
  });
});

describe('the CLI for rules, ranges and the allowlist', () => {
  it('blocks a range, allowlists an address in it, and replaces, refuses and resets the rule set', async () => {
    const api = await startTestApi();
    const dir = mkdtempSync(join(tmpdir(), 'click-fraud-rules-'));
    try {
      expect((await runCli(api, ['add', '203.0.113.0/24', '--reason', 'hosting'])).stdout).toContain('blocked: 203.0.113.0/24');
      expect((await runCli(api, ['allow', 'add', '203.0.113.50', '--reason', 'partner'])).stdout).toContain('allowlisted: address 203.0.113.50');
      expect((await runCli(api, ['allow', 'add', 'qa-1', '--device', '--reason', 'QA'])).stdout).toContain('allowlisted: device qa-1');
      expect((await api.click('cli-a', 't', '203.0.113.9')).fraud_type).toBe('ip_range');
      expect(await api.click('cli-b', 't', '203.0.113.50')).toMatchObject({ fraud_type: 'clean', allowlisted: true });
      const listed = await runCli(api, ['allow', 'list']);
      expect(listed.stdout.trim().split('\n').sort()).toEqual(['address\t203.0.113.50\t"partner"', 'device\tqa-1\t"QA"']);

      const file = join(dir, 'rules.json');
      writeFileSync(file, JSON.stringify({ click_spam: { mode: 'shadow' } }));
      const set = await runCli(api, ['rules', 'set', file]);
      expect(set.code).toBe(0);
      const version = Number(/rule set v(\d+) stored/.exec(set.stdout)![1]);
      expect(JSON.parse((await runCli(api, ['rules', 'get'])).stdout)).toMatchObject({ version, source: 'admin', rules: { click_spam: { mode: 'shadow' } } });
      writeFileSync(file, JSON.stringify({ ip_flood: { threshold: 'many' } }));
      const refused = await runCli(api, ['rules', 'set', file]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('ip_flood.threshold: threshold must be a whole number');
      expect(JSON.parse((await runCli(api, ['rules', 'get'])).stdout).version).toBe(version);
      expect((await runCli(api, ['rules', 'reset'])).stdout).toContain('from the environment stored');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await api.close();
    }
  }, 60_000);
});
