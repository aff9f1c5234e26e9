import { describe, expect, it } from 'vitest';
import { openBlacklistAdmin } from '../src/admin/open-admin.js';
import { ruleSetSchema, type RuleSet } from '../src/domain/rules.js';
import {
  cleanDevicesNeeded,
  cleanSpacingSeconds,
  emptyScores,
  expectedVerdicts,
  percentile,
  planTraffic,
  precision,
  recall,
  reportedRules,
  scoreSend,
  sendSizes,
  type Send,
  type TrafficOptions,
} from '../src/simulator/plan.js';
import { runSimulation, type SimulatorAdmin } from '../src/simulator/run.js';
import { startTestApi, type TestApi } from './support/api.js';

const traffic: TrafficOptions = {
  rate: 200,
  durationSeconds: 10,
  spamShare: 0.1,
  blacklistShare: 0.05,
  floodShare: 0.1,
  farmShare: 0.1,
  blacklistedIps: 20,
  minCleanDevices: 10,
  runId: 'run',
};

/** The default rule set (click_spam 2 in 10 s enforced, ip_flood 20 in 10 s and device_farm 5 in 60 s off), changed by `rules`. */
const ruleSet = (rules: object = {}): RuleSet => ruleSetSchema.parse(rules);

/** Each stretch of equal values, and its length: `a a b` is `[['a', 2], ['b', 1]]`. */
function runs(values: string[]): Array<[string, number]> {
  const stretches: Array<[string, number]> = [];
  for (const value of values) {
    const last = stretches.at(-1);
    if (last?.[0] === value) last[1] += 1;
    else stretches.push([value, 1]);
  }
  return stretches;
}

/** The first `clicks` clicks of a plan, as sends. */
function sendsOf(plan: ReturnType<typeof planTraffic>, clicks: number): Send[] {
  const sends: Send[] = [];
  for (let n = 0; n < clicks; n += sends.at(-1)!.clicks.length) sends.push(plan.next());
  return sends;
}

describe('the traffic plan', () => {
  it('enforces, for the run, each rule whose fraud it injects, at its own threshold and window', () => {
    const inForce = ruleSet({ ip_flood: { mode: 'shadow', threshold: 7, window_sec: 3 }, device_farm: { mode: 'off' } });
    expect(planTraffic(traffic, inForce).rules).toEqual({
      ...inForce,
      ip_flood: { mode: 'enforce', threshold: 7, window_sec: 3 },
      device_farm: { ...inForce.device_farm, mode: 'enforce' },
    });
    // Without floods and farms, nothing changes.
    expect(planTraffic({ ...traffic, floodShare: 0, farmShare: 0 }, inForce).rules).toEqual(inForce);
  });

  it('spaces each clean device, on an address of its own, so that neither reaches a threshold inside a window', () => {
    const rules = ruleSet({ ip_flood: { mode: 'enforce', threshold: 3, window_sec: 30 } });
    // click_spam: 1.5 × 10 s / 2; ip_flood, the address's clicks, which are its one device's: 1.5 × 30 s / 3.
    expect(cleanSpacingSeconds(ruleSet())).toBe(7.5);
    expect(cleanSpacingSeconds(rules)).toBe(15);
    const devices = cleanDevicesNeeded(traffic, rules);
    const cleanRate = traffic.rate * (1 - traffic.spamShare - traffic.blacklistShare - traffic.floodShare - traffic.farmShare);
    // Seconds between two clicks of one clean device: the devices go round-robin.
    expect(devices / cleanRate).toBeGreaterThanOrEqual(15);
    expect(cleanDevicesNeeded({ ...traffic, minCleanDevices: 50_000 }, rules)).toBe(50_000);

    const plan = planTraffic(traffic, rules);
    const addressOf = new Map<string, string>();
    for (const send of sendsOf(plan, 5_000).filter((s) => s.kind === 'clean')) {
      const [click] = send.clicks;
      expect(addressOf.get(click!.device_id) ?? click!.ip).toBe(click!.ip);
      addressOf.set(click!.device_id, click!.ip);
    }
    expect(new Set(addressOf.values()).size).toBe(addressOf.size);
  });

  it('sends each kind in its share, every burst, flood and farm on devices and an address no other send has', () => {
    const plan = planTraffic(traffic, ruleSet());
    const sends = sendsOf(plan, 20_000);
    const clicks = sends.reduce((n, s) => n + s.clicks.length, 0);
    const share = (kind: Send['kind']) => sends.filter((s) => s.kind === kind).reduce((n, s) => n + s.clicks.length, 0) / clicks;
    expect(share('burst')).toBeCloseTo(0.1, 2);
    expect(share('blacklisted')).toBeCloseTo(0.05, 2);
    expect(share('flood')).toBeCloseTo(0.1, 2);
    expect(share('farm')).toBeCloseTo(0.1, 2);

    // Who uses each address and each device: one send each for bursts, floods and farms; clean
    // devices and blacklisted addresses are shared only within their kind.
    const usersOf = (key: 'ip' | 'device_id') => {
      const users = new Map<string, Set<string>>();
      sends.forEach((send, i) => {
        const user = send.kind === 'clean' || send.kind === 'blacklisted' ? send.kind : `${send.kind} ${i}`;
        for (const click of send.clicks) users.set(click[key], (users.get(click[key]) ?? new Set()).add(user));
      });
      return users;
    };
    for (const key of ['ip', 'device_id'] as const) for (const [value, users] of usersOf(key)) expect(users.size, `${key} ${value}`).toBe(1);

    const listed = new Set(plan.blacklistedIps);
    for (const s of sends) for (const click of s.clicks) expect(listed.has(click.ip)).toBe(s.kind === 'blacklisted');
    const transactions = sends.flatMap((s) => s.clicks.map((c) => c.transaction_id));
    expect(new Set(transactions).size).toBe(transactions.length);
    expect(plan.largestSend).toBe(Math.max(...sends.map((s) => s.clicks.length)));
  });

  it('sends floods by devices under click_spam and farms of devices clicking once or twice, and expects what the rules say, in order', () => {
    const rules = planTraffic(traffic, ruleSet()).rules;
    const sends = sendsOf(planTraffic(traffic, ruleSet()), 2_000);
    const flood = sends.find((s) => s.kind === 'flood')!;
    const farm = sends.find((s) => s.kind === 'farm')!;
    const clicksPerDevice = (send: Send) => runs(send.clicks.map((c) => c.device_id)).map(([, n]) => n);
    expect(new Set(flood.clicks.map((c) => c.ip)).size).toBe(1);
    expect(clicksPerDevice(flood)).toEqual(Array(15).fill(2));
    expect(new Set(farm.clicks.map((c) => c.ip)).size).toBe(1);
    expect(clicksPerDevice(farm)).toEqual([1, 2, 1, 2, 1, 2, 1, 2, 1, 2]);

    // The flood's devices 6 to 10 are over device_farm's 5 before its clicks are over ip_flood's 20,
    // and ip_flood comes first in the rules' order from then on.
    expect(flood.atOnce).toBe(false);
    expect(runs(flood.expected)).toEqual([['clean', 10], ['device_farm', 10], ['ip_flood', 10]]);
    expect(flood.expected).toEqual(expectedVerdicts(flood.clicks.map((c) => c.device_id), rules));
    expect(runs(expectedVerdicts(flood.clicks.map((c) => c.device_id), ruleSet({ ip_flood: { mode: 'enforce' } })))).toEqual([['clean', 20], ['ip_flood', 10]]);
    // The farm's devices 6 to 10 (8 clicks), with 15 clicks, under ip_flood's 20.
    expect(runs(farm.expected)).toEqual([['clean', 7], ['device_farm', 8]]);
    // A repeat click of a device already counted is still over the farm's threshold.
    expect(expectedVerdicts(['a', 'b', 'a'], ruleSet({ device_farm: { mode: 'enforce', threshold: 1 } }))).toEqual(['clean', 'device_farm', 'device_farm']);

    const burst = sends.find((s) => s.kind === 'burst')!;
    expect(burst.atOnce).toBe(true);
    expect(new Set(burst.clicks.map((c) => c.device_id)).size).toBe(1);
    expect(runs(burst.expected)).toEqual([['clean', 2], ['click_spam', 3]]);
  });

  it('sizes each fraud from the rules, and refuses sizes that inject nothing or whose verdicts would depend on arrival order', () => {
    const enforced = ruleSet({ ip_flood: { mode: 'enforce', threshold: 4 }, device_farm: { mode: 'enforce', threshold: 3 } });
    // A default burst stays within ip_flood's threshold.
    expect(sendSizes(traffic, enforced)).toEqual({ burst: 4, floodClicks: 14, floodDevices: 7, farmDevices: 8, farmClicks: 12 });
    expect(() => sendSizes({ ...traffic, burst: 2 }, enforced)).toThrow("a burst (2 clicks) must be more than click_spam's threshold (2)");
    expect(() => sendSizes({ ...traffic, burst: 5 }, enforced)).toThrow("a burst (5 clicks) must be at most ip_flood's threshold (4), or it is a flood too");
    expect(() => sendSizes({ ...traffic, floodClicks: 4 }, enforced)).toThrow("a flood (4 clicks) must be more than ip_flood's threshold (4)");
    expect(() => sendSizes({ ...traffic, farmDevices: 3 }, enforced)).toThrow("a farm (3 devices) must be more than device_farm's threshold (3)");
    // Sizes of fraud the run does not send do not matter.
    expect(() => sendSizes({ ...traffic, farmShare: 0, farmDevices: 3 }, enforced)).not.toThrow();
  });

  it('scores a burst by counts, whatever order its answers arrived in, and any other send click by click', () => {
    const clicks = (n: number) => Array.from({ length: n }, (_, i) => ({ device_id: 'd', ip: '192.168.0.1', transaction_id: `t${i}` }));
    const burst: Send = { kind: 'burst', clicks: clicks(5), expected: ['clean', 'clean', 'click_spam', 'click_spam', 'click_spam'], atOnce: true };
    const scores = emptyScores();
    scoreSend(scores, burst, ['click_spam', 'clean', 'click_spam', 'clean', 'click_spam']);
    expect(scores).toMatchObject({ injected: { click_spam: 3 }, caught: { click_spam: 3 }, cleanSent: 0, cleanFlagged: 0 });
    scoreSend(scores, burst, ['clean', 'clean', 'clean', 'click_spam', null]);
    expect(scores).toMatchObject({ injected: { click_spam: 6 }, caught: { click_spam: 4 }, failed: 1 });
    expect(recall(scores, 'click_spam')).toBeCloseTo(4 / 6);
    expect(precision(scores, 'click_spam')).toBe(1);

    // In order: the same verdicts one place late are a miss and a wrong flag each.
    const flood: Send = { kind: 'flood', clicks: clicks(3), expected: ['clean', 'ip_flood', 'ip_flood'], atOnce: false };
    scoreSend(scores, flood, ['ip_flood', 'clean', 'ip_flood']);
    expect(scores).toMatchObject({ injected: { ip_flood: 2 }, caught: { ip_flood: 1 }, flaggedAs: { ip_flood: 2 } });
    expect([recall(scores, 'ip_flood'), precision(scores, 'ip_flood')]).toEqual([0.5, 0.5]);

    const clean: Send = { kind: 'clean', clicks: clicks(1), expected: ['clean'], atOnce: false };
    scoreSend(scores, clean, ['click_spam']);
    expect(scores).toMatchObject({ cleanSent: 1, cleanFlagged: 1 });
    expect(precision(scores, 'click_spam')).toBeCloseTo(4 / 5);
    expect(reportedRules(scores)).toEqual(['click_spam', 'ip_flood']);
  });

  it('takes nearest-rank percentiles', () => {
    const values = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)]).toEqual([50, 95, 99]);
    expect(percentile(new Float64Array(0), 0.5)).toBe(0);
  });
});

describe('a simulation against a real API', () => {
  const TOKEN = 'simulator-admin-token-0123456789';
  /** The rules an operator left before the run: ip_flood tried in shadow mode, device_farm off, each at a threshold of its own. */
  const operatorRules = {
    ip_flood: { mode: 'shadow', threshold: 15, window_sec: 10 },
    device_farm: { mode: 'off', threshold: 4, window_sec: 60 },
  };

  /** A test API with the operator's rules, and the simulator's way into its Redis (as main.ts opens it). */
  async function setUp() {
    const api = await startTestApi({ ADMIN_TOKEN: TOKEN });
    const res = await fetch(`${api.base}/admin/rules`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(operatorRules),
    });
    expect(res.status).toBe(200);
    const opened = await openBlacklistAdmin(api.config, api.redisUrl);
    const admin: SimulatorAdmin = {
      async block(ips) {
        for (const ip of ips) await opened.admin.add({ ip, reason: 'simulator test' }, 'simulator');
      },
      rules: opened.rules,
    };
    const before = (await opened.rules.current())!;
    return { api, opened, admin, before };
  }
  const run = (api: TestApi, options: Partial<Parameters<typeof runSimulation>[0]> = {}) => ({
    ...traffic,
    rate: 300,
    durationSeconds: 2,
    url: api.base,
    maxInFlight: 64,
    runId: `sim-${api.config.namespace}`,
    ...options,
  });

  it('catches every injected fraud of every rule and flags no clean click, the rules it needs enforced for the run and put back after', async () => {
    const { api, opened, admin, before } = await setUp();
    try {
      const progress: number[] = [];
      const report = await runSimulation(run(api), admin, (sent) => progress.push(sent));
      const { scores } = report;
      expect(report.ruleChange).toEqual({ before: before.version, enforced: ['ip_flood', 'device_farm'], set: before.version + 1, restored: before.version + 2 });
      expect(report.rules).toMatchObject({ ip_flood: { mode: 'enforce', threshold: 15, window_sec: 10 }, device_farm: { mode: 'enforce', threshold: 4, window_sec: 60 } });
      expect(await opened.rules.current()).toMatchObject({ version: before.version + 2, source: 'admin', rules: before.rules });

      expect(report.clicksSent).toBeGreaterThanOrEqual(600);
      expect(scores.failed).toBe(0);
      expect(reportedRules(scores)).toEqual(['ip_blacklist', 'click_spam', 'ip_flood', 'device_farm']);
      for (const rule of reportedRules(scores)) {
        expect(scores.injected[rule], rule).toBeGreaterThan(0);
        expect([rule, recall(scores, rule), precision(scores, rule)]).toEqual([rule, 1, 1]);
      }
      expect(scores.cleanSent).toBeGreaterThan(300);
      expect(scores.cleanFlagged).toBe(0);
      expect(report.latencyMs.p99).toBeGreaterThan(0);
      expect(progress.at(-1)).toBe(report.clicksSent);
    } finally {
      await opened.close();
      await api.close();
    }
  });

  it('stops when aborted, with what it sent scored, and still puts the rules back', async () => {
    const { api, opened, admin, before } = await setUp();
    try {
      const stop = new AbortController();
      const report = await runSimulation(run(api, { durationSeconds: 60, signal: stop.signal }), admin, (sent) => sent >= 100 && stop.abort());
      expect(report.clicksSent).toBeGreaterThanOrEqual(100);
      expect(report.clicksSent).toBeLessThan(report.clicksPlanned);
      expect(report.scores.cleanSent).toBeGreaterThan(0);
      expect(report.ruleChange?.restored).toBe(before.version + 2);
      expect(await opened.rules.current()).toMatchObject({ version: before.version + 2, rules: before.rules });
    } finally {
      await opened.close();
      await api.close();
    }
  });

  it('leaves the rules alone after the run when someone changed them during it', async () => {
    const { api, opened, admin, before } = await setUp();
    try {
      const stop = new AbortController();
      const theirs = ruleSet({ device_farm: { mode: 'shadow' } });
      let changed: Promise<unknown> | undefined;
      const report = await runSimulation(run(api, { durationSeconds: 60, signal: stop.signal }), admin, (sent) => {
        if (sent > 0) changed ??= opened.rules.replace(theirs).then(() => stop.abort());
      });
      expect(report.ruleChange).toMatchObject({ set: before.version + 1, restored: undefined });
      expect(await opened.rules.current()).toMatchObject({ version: before.version + 2, rules: theirs });
    } finally {
      await opened.close();
      await api.close();
    }
  });
});
