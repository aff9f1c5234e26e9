import { describe, expect, it } from 'vitest';
import { openBlacklistAdmin } from '../src/admin/open-admin.js';
import { cleanDevicesNeeded, emptyScores, percentile, planTraffic, precision, recall, scoreSend, type Send, type TrafficOptions } from '../src/simulator/plan.js';
import { runSimulation } from '../src/simulator/run.js';
import { startTestApi } from './support/api.js';

const traffic: TrafficOptions = {
  rate: 200,
  durationSeconds: 10,
  spamShare: 0.1,
  blacklistShare: 0.05,
  burst: 5,
  blacklistedIps: 20,
  threshold: 2,
  windowSeconds: 10,
  minCleanDevices: 10,
  runId: 'run',
};

describe('the traffic plan', () => {
  it('spaces each clean device so that it never reaches the threshold inside a window', () => {
    const devices = cleanDevicesNeeded(traffic);
    const cleanRate = traffic.rate * (1 - traffic.spamShare - traffic.blacklistShare);
    // Seconds between two clicks of one clean device, against window / threshold.
    expect(devices / cleanRate).toBeGreaterThanOrEqual((1.5 * traffic.windowSeconds) / traffic.threshold);
    expect(cleanDevicesNeeded({ ...traffic, minCleanDevices: 50_000 })).toBe(50_000);
  });

  it('sends each kind in its share, bursts on devices of their own, blacklisted addresses only where meant', () => {
    const plan = planTraffic(traffic);
    const sends: Send[] = [];
    let clicks = 0;
    while (clicks < 10_000) {
      const send = plan.next();
      sends.push(send);
      clicks += send.kind === 'burst' ? send.clicks.length : 1;
    }
    const count = (kind: Send['kind']) => sends.filter((s) => s.kind === kind).reduce((n, s) => n + (s.kind === 'burst' ? s.clicks.length : 1), 0);
    expect(count('burst') / clicks).toBeCloseTo(0.1, 2);
    expect(count('blacklisted') / clicks).toBeCloseTo(0.05, 2);

    const burstDevices = sends.flatMap((s) => (s.kind === 'burst' ? [s.clicks[0]!.device_id] : []));
    expect(new Set(burstDevices).size).toBe(burstDevices.length);
    for (const s of sends) if (s.kind === 'burst') expect(new Set(s.clicks.map((c) => c.device_id)).size).toBe(1);

    const listed = new Set(plan.blacklistedIps);
    for (const s of sends) {
      const ips = s.kind === 'burst' ? s.clicks.map((c) => c.ip) : [s.click.ip];
      for (const ip of ips) expect(listed.has(ip)).toBe(s.kind === 'blacklisted');
    }
    const transactions = sends.flatMap((s) => (s.kind === 'burst' ? s.clicks : [s.click]).map((c) => c.transaction_id));
    expect(new Set(transactions).size).toBe(transactions.length);
  });

  it('scores a burst by counts, whatever order its answers arrived in', () => {
    const burst: Send = { kind: 'burst', clicks: Array.from({ length: 5 }, (_, i) => ({ device_id: 'd', ip: '10.0.0.1', transaction_id: `t${i}` })) };
    const scores = emptyScores();
    scoreSend(scores, burst, ['click_spam', 'clean', 'click_spam', 'clean', 'click_spam'], 2);
    expect(scores).toMatchObject({ injected: { click_spam: 3 }, caught: { click_spam: 3 }, cleanSent: 2, cleanFlagged: 0 });
    scoreSend(scores, burst, ['clean', 'clean', 'clean', 'click_spam', null], 2);
    expect(scores).toMatchObject({ injected: { click_spam: 6 }, caught: { click_spam: 4 }, failed: 1 });
    expect(recall(scores, 'click_spam')).toBeCloseTo(4 / 6);
    expect(precision(scores, 'click_spam')).toBe(1);

    const clean: Send = { kind: 'clean', click: { device_id: 'c', ip: '10.0.0.2', transaction_id: 'x' } };
    scoreSend(scores, clean, ['click_spam'], 2);
    expect(scores.cleanFlagged).toBe(1);
    expect(precision(scores, 'click_spam')).toBeCloseTo(4 / 5);
  });

  it('takes nearest-rank percentiles', () => {
    const values = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    expect([percentile(values, 0.5), percentile(values, 0.95), percentile(values, 0.99)]).toEqual([50, 95, 99]);
    expect(percentile(new Float64Array(0), 0.5)).toBe(0);
  });
});

describe('a simulation against a real API', () => {
  it('catches every injected fraud and flags no clean click', async () => {
    const api = await startTestApi();
    const opened = await openBlacklistAdmin(api.config, api.redisUrl);
    try {
      const progress: number[] = [];
      const report = await runSimulation(
        { ...traffic, rate: 300, durationSeconds: 2, url: api.base, maxInFlight: 64, runId: `sim-${api.config.namespace}` },
        async (ips) => {
          for (const ip of ips) await opened.admin.add({ ip, reason: 'simulator test' }, 'simulator');
        },
        (sent) => progress.push(sent),
      );
      const { scores } = report;
      expect(report.clicksSent).toBeGreaterThanOrEqual(600);
      expect(scores.failed).toBe(0);
      expect(scores.injected.ip_blacklist).toBeGreaterThan(0);
      expect(scores.injected.click_spam).toBeGreaterThan(0);
      expect(recall(scores, 'ip_blacklist')).toBe(1);
      expect(recall(scores, 'click_spam')).toBe(1);
      expect(scores.cleanFlagged).toBe(0);
      expect(precision(scores, 'click_spam')).toBe(1);
      expect(report.latencyMs.p99).toBeGreaterThan(0);
      expect(progress.at(-1)).toBe(report.clicksSent);
    } finally {
      await opened.close();
      await api.close();
    }
  });
});
