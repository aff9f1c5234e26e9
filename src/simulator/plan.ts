import { RULES, type RuleName } from '../domain/rules.js';
import type { FraudType } from '../domain/verdict.js';

/** What the simulator sends, and how it knows what each click should be answered. */
export interface TrafficOptions {
  /** Clicks per second offered. */
  rate: number;
  durationSeconds: number;
  /** Share of clicks that belong to spam bursts. */
  spamShare: number;
  /** Share of clicks that come from blacklisted addresses. */
  blacklistShare: number;
  /** Clicks in one spam burst, sent at once: more than the threshold allows. */
  burst: number;
  /** Blacklisted addresses the clicks of `blacklistShare` come from. */
  blacklistedIps: number;
  /** The API's CLICK_SPAM_THRESHOLD and CLICK_SPAM_WINDOW_IN_SEC. */
  threshold: number;
  windowSeconds: number;
  /** Smallest pool of clean devices; grown when the rate needs more to stay under the threshold. */
  minCleanDevices: number;
  /** Makes ids unique to one run, so that no earlier run's windows count. */
  runId: string;
}

export interface PlannedClick {
  device_id: string;
  ip: string;
  transaction_id: string;
}

/** One unit of traffic: a clean click, a click from a blacklisted address, or a whole spam burst. */
export type Send =
  | { kind: 'clean'; click: PlannedClick }
  | { kind: 'blacklisted'; click: PlannedClick }
  | { kind: 'burst'; clicks: PlannedClick[] };

export interface TrafficPlan {
  blacklistedIps: string[];
  cleanDevices: number;
  /** The next send; a burst counts as `burst` clicks against the rate. */
  next(): Send;
}

/**
 * A clean device must never have `threshold` clicks inside one window, whatever the network's
 * delays: its clicks are spaced at least 1.5 × window / threshold apart, which sets the pool size.
 */
export function cleanDevicesNeeded(options: TrafficOptions): number {
  const cleanRate = options.rate * (1 - options.spamShare - options.blacklistShare);
  const spacingSeconds = (1.5 * options.windowSeconds) / options.threshold;
  return Math.max(options.minCleanDevices, Math.ceil(cleanRate * spacingSeconds) + 1);
}

/**
 * The traffic, deterministic for a run: clean clicks go round-robin over the clean devices; each
 * spam burst and each blacklisted click gets a device of its own, so that none of them changes
 * what another click should be answered.
 */
export function planTraffic(options: TrafficOptions): TrafficPlan {
  const { runId, spamShare, blacklistShare, burst } = options;
  const cleanDevices = cleanDevicesNeeded(options);
  const blacklistedIps = Array.from({ length: options.blacklistedIps }, (_, i) => `198.18.${(i >> 8) & 255}.${i & 255}`);
  let sent = 0;
  let spamSent = 0;
  let blacklistedSent = 0;
  let cleanSent = 0;
  let bursts = 0;
  return {
    blacklistedIps,
    cleanDevices,
    next() {
      // Whichever kind is furthest behind its share goes next: exact shares, no randomness needed.
      const spamDebt = (sent + burst) * spamShare - spamSent;
      const blacklistDebt = (sent + 1) * blacklistShare - blacklistedSent;
      if (spamShare > 0 && spamDebt >= burst / 2 && spamDebt >= blacklistDebt) {
        const device = `${runId}-s${bursts++}`;
        const clicks = Array.from({ length: burst }, () => ({ device_id: device, ip: cleanIp(bursts), transaction_id: `${runId}-t${sent++}` }));
        spamSent += burst;
        return { kind: 'burst', clicks };
      }
      if (blacklistShare > 0 && blacklistDebt >= 0.5) {
        const ip = blacklistedIps[blacklistedSent % blacklistedIps.length]!;
        const click = { device_id: `${runId}-b${blacklistedSent}`, ip, transaction_id: `${runId}-t${sent}` };
        blacklistedSent += 1;
        sent += 1;
        return { kind: 'blacklisted', click };
      }
      const device = cleanSent % cleanDevices;
      const click = { device_id: `${runId}-c${device}`, ip: cleanIp(device), transaction_id: `${runId}-t${sent}` };
      cleanSent += 1;
      sent += 1;
      return { kind: 'clean', click };
    },
  };
}

/** A stable, never-blacklisted address per device (10.0.0.0/8; the blacklisted ones are in 198.18.0.0/15). */
function cleanIp(n: number): string {
  return `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
}

/** Detection quality per fraud type, from what each send should and did get. */
export interface Scores {
  injected: Record<Exclude<FraudType, 'clean'>, number>;
  caught: Record<Exclude<FraudType, 'clean'>, number>;
  /** Answers of each fraud type, right or wrong. */
  flaggedAs: Record<Exclude<FraudType, 'clean'>, number>;
  cleanSent: number;
  /** Clean clicks answered as fraud. */
  cleanFlagged: number;
  /** Clicks that got no verdict (not 200). */
  failed: number;
}

export function emptyScores(): Scores {
  const zero = () => Object.fromEntries(RULES.map((rule) => [rule, 0])) as Record<RuleName, number>;
  return {
    injected: zero(),
    caught: zero(),
    flaggedAs: zero(),
    cleanSent: 0,
    cleanFlagged: 0,
    failed: 0,
  };
}

/**
 * Scores one send from its answers (null: no verdict). A burst is scored by counts, since its
 * clicks travel concurrently and may arrive in any order: whatever the order, the first
 * `threshold` to arrive are clean and the rest spam.
 */
export function scoreSend(scores: Scores, send: Send, answers: Array<FraudType | null>, threshold: number): void {
  scores.failed += answers.filter((answer) => answer === null).length;
  const verdicts = answers.filter((answer): answer is FraudType => answer !== null);
  for (const verdict of verdicts) if (verdict !== 'clean') scores.flaggedAs[verdict] += 1;
  if (send.kind === 'blacklisted') {
    scores.injected.ip_blacklist += 1;
    if (verdicts[0] === 'ip_blacklist') scores.caught.ip_blacklist += 1;
  } else if (send.kind === 'clean') {
    scores.cleanSent += 1;
    if (verdicts[0] !== undefined && verdicts[0] !== 'clean') scores.cleanFlagged += 1;
  } else {
    const spam = Math.max(0, send.clicks.length - threshold);
    const answeredSpam = verdicts.filter((verdict) => verdict === 'click_spam').length;
    scores.injected.click_spam += spam;
    scores.caught.click_spam += Math.min(answeredSpam, spam);
    scores.cleanSent += send.clicks.length - spam;
    scores.cleanFlagged += Math.max(0, answeredSpam - spam) + verdicts.filter((verdict) => verdict === 'ip_blacklist').length;
  }
}

export function precision(scores: Scores, type: Exclude<FraudType, 'clean'>): number {
  return scores.flaggedAs[type] === 0 ? 1 : scores.caught[type] / scores.flaggedAs[type];
}

export function recall(scores: Scores, type: Exclude<FraudType, 'clean'>): number {
  return scores.injected[type] === 0 ? 1 : scores.caught[type] / scores.injected[type];
}

/** The value at quantile `q` of ascending `sorted` values (nearest rank). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
