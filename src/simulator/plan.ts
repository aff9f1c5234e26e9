import { RULES, type RuleName, type RuleSet } from '../domain/rules.js';
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
  /** Share of clicks that belong to address floods. */
  floodShare: number;
  /** Share of clicks that belong to device farms. */
  farmShare: number;
  /** Clicks in one spam burst, sent at once (default: click_spam's threshold + 3). */
  burst?: number;
  /** Clicks in one address flood (default: ip_flood's threshold + 10). */
  floodClicks?: number;
  /** Devices in one device farm (default: device_farm's threshold + 5). */
  farmDevices?: number;
  /** Blacklisted addresses the clicks of `blacklistShare` come from. */
  blacklistedIps: number;
  /** Smallest pool of clean devices; grown when the rate needs more to stay under the thresholds. */
  minCleanDevices: number;
  /** Makes ids and addresses unique to one run, so that no earlier run's windows count. */
  runId: string;
}

export interface PlannedClick {
  device_id: string;
  ip: string;
  transaction_id: string;
}

/**
 * One unit of traffic and the verdicts its clicks should get. A burst's clicks are sent at once and
 * may arrive in any order, so its verdicts are a count (`expected` in no particular order); every
 * other send's clicks go one after another, each verdict in its place.
 */
export interface Send {
  kind: 'clean' | 'blacklisted' | 'burst' | 'flood' | 'farm';
  clicks: PlannedClick[];
  expected: FraudType[];
  atOnce: boolean;
}

/** The sizes of the fraud the plan sends, for the report. */
export interface SendSizes {
  burst: number;
  floodClicks: number;
  floodDevices: number;
  farmDevices: number;
  farmClicks: number;
}

export interface TrafficPlan {
  /** The rule set the run needs: the one in force, with every rule whose fraud it injects enforced. */
  rules: RuleSet;
  blacklistedIps: string[];
  cleanDevices: number;
  sizes: SendSizes;
  /** The most clicks one send holds. */
  largestSend: number;
  /** The next send; it counts as all its clicks against the rate. */
  next(): Send;
}

/** The rules whose fraud the options inject. */
function injectedRules(options: Pick<TrafficOptions, 'spamShare' | 'blacklistShare' | 'floodShare' | 'farmShare'>): RuleName[] {
  const shares: Record<RuleName, number> = {
    ip_blacklist: options.blacklistShare,
    ip_range: 0,
    click_spam: options.spamShare,
    ip_flood: options.floodShare,
    device_farm: options.farmShare,
  };
  return RULES.filter((rule) => shares[rule] > 0);
}

/**
 * `inForce` with each rule whose fraud the options inject enforced, at its own threshold and
 * window: a rule that is off or in shadow mode gives no verdict, and the report would say nothing
 * of how well it catches what it is meant to.
 */
function rulesForRun(inForce: RuleSet, options: TrafficOptions): RuleSet {
  const run = structuredClone(inForce);
  for (const rule of injectedRules(options)) run[rule].mode = 'enforce';
  return run;
}

/**
 * Seconds between two clicks of one clean device. Each clean device has an address of its own, so
 * neither the device nor its address may reach a threshold inside a window, whatever the network's
 * delays: clicks are spaced at least 1.5 × window ÷ threshold apart, for click_spam and ip_flood
 * unless they are off. (device_farm never fires on one device.)
 */
export function cleanSpacingSeconds(rules: RuleSet): number {
  const spacings = (['click_spam', 'ip_flood'] as const)
    .filter((rule) => rules[rule].mode !== 'off')
    .map((rule) => (1.5 * rules[rule].window_sec) / rules[rule].threshold);
  return Math.max(0, ...spacings);
}

/** The clean devices the rate needs at that spacing, and at least `minCleanDevices`. */
export function cleanDevicesNeeded(options: TrafficOptions, rules: RuleSet): number {
  const cleanRate = options.rate * (1 - options.spamShare - options.blacklistShare - options.floodShare - options.farmShare);
  return Math.max(options.minCleanDevices, Math.ceil(cleanRate * cleanSpacingSeconds(rules)) + 1);
}

/**
 * What the rules should answer to clicks sent one after another from one address no click came
 * from before, by devices that never clicked before, all within every window: click i's device is
 * `devices[i]`. The first enforced rule in RULES order that the click is over gives the verdict, as
 * the API decides (includes/decideClick.lua): click_spam counts the device's clicks, ip_flood the
 * address's, device_farm the address's devices, each with this click.
 */
export function expectedVerdicts(devices: string[], rules: RuleSet): FraudType[] {
  const clicksOf = new Map<string, number>();
  const seen = new Set<string>();
  return devices.map((device, i) => {
    clicksOf.set(device, (clicksOf.get(device) ?? 0) + 1);
    seen.add(device);
    const observed = { click_spam: clicksOf.get(device)!, ip_flood: i + 1, device_farm: seen.size };
    const hit = (['click_spam', 'ip_flood', 'device_farm'] as const).find((rule) => rules[rule].mode === 'enforce' && observed[rule] > rules[rule].threshold);
    return hit ?? 'clean';
  });
}

/** The sizes of each kind of fraud, from the options or the rules' thresholds; throws on sizes that inject nothing or cannot be scored. */
export function sendSizes(options: TrafficOptions, rules: RuleSet): SendSizes {
  const { click_spam: spam, ip_flood: flood, device_farm: farm } = rules;
  const floodEnforced = flood.mode === 'enforce';
  const burst = options.burst ?? (floodEnforced ? Math.min(spam.threshold + 3, flood.threshold) : spam.threshold + 3);
  const floodClicks = options.floodClicks ?? flood.threshold + 10;
  const farmDevices = options.farmDevices ?? farm.threshold + 5;
  const problems: string[] = [];
  if (options.spamShare > 0 && burst <= spam.threshold) problems.push(`a burst (${burst} clicks) must be more than click_spam's threshold (${spam.threshold})`);
  // A burst's clicks arrive in any order: over ip_flood's threshold too, which of them each rule
  // flags would depend on that order.
  if (options.spamShare > 0 && floodEnforced && burst > flood.threshold) {
    problems.push(`a burst (${burst} clicks) must be at most ip_flood's threshold (${flood.threshold}), or it is a flood too`);
  }
  if (options.floodShare > 0 && floodClicks <= flood.threshold) problems.push(`a flood (${floodClicks} clicks) must be more than ip_flood's threshold (${flood.threshold})`);
  if (options.farmShare > 0 && farmDevices <= farm.threshold) problems.push(`a farm (${farmDevices} devices) must be more than device_farm's threshold (${farm.threshold})`);
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return {
    burst,
    floodClicks,
    floodDevices: new Set(floodDevicesOf(floodClicks, spam.threshold)).size,
    farmDevices,
    farmClicks: farmDevicesOf(farmDevices, spam.threshold).length,
  };
}

/**
 * The traffic, deterministic for a run, against the rule set `inForce` as rulesForRun changes it
 * for the run (`plan.rules`):
 *
 * - clean clicks go round-robin over the clean devices, each device on an address of its own;
 * - a spam burst is one device clicking `burst` times at once;
 * - a blacklisted click is a device of its own on one of the blacklisted addresses;
 * - an address flood is `floodClicks` clicks from one address, by devices that each click as often
 *   as click_spam allows (its threshold), one device after another;
 * - a device farm is `farmDevices` devices behind one address, clicking once or twice each.
 *
 * Every burst, flood and farm has devices and an address no other send uses, so that none changes
 * what another click should be answered.
 */
export function planTraffic(options: TrafficOptions, inForce: RuleSet): TrafficPlan {
  const { runId } = options;
  const rules = rulesForRun(inForce, options);
  const sizes = sendSizes(options, rules);
  const cleanDevices = cleanDevicesNeeded(options, rules);
  const blacklistedIps = Array.from({ length: options.blacklistedIps }, (_, i) => `198.18.${(i >> 8) & 255}.${i & 255}`);
  const address = addressPools(runId);
  const fraud = [
    { kind: 'burst', share: options.spamShare, size: sizes.burst },
    { kind: 'blacklisted', share: options.blacklistShare, size: 1 },
    { kind: 'flood', share: options.floodShare, size: sizes.floodClicks },
    { kind: 'farm', share: options.farmShare, size: sizes.farmClicks },
  ] as const;
  const sentOf: Record<Send['kind'], number> = { clean: 0, blacklisted: 0, burst: 0, flood: 0, farm: 0 };
  const madeOf: Record<Send['kind'], number> = { clean: 0, blacklisted: 0, burst: 0, flood: 0, farm: 0 };
  let sent = 0;

  // A kind with a share enforces its rule (rulesForRun): click_spam for bursts, ip_blacklist first
  // of all for blacklisted clicks.
  const make = (kind: Send['kind']): Omit<Send, 'kind'> => {
    const n = madeOf[kind]++;
    const tx = () => `${runId}-t${sent++}`;
    switch (kind) {
      case 'burst': {
        const device = `${runId}-s${n}`;
        const ip = address.burst(n);
        const expected: FraudType[] = Array.from({ length: sizes.burst }, (_, i) => (i < rules.click_spam.threshold ? 'clean' : 'click_spam'));
        return { clicks: expected.map(() => ({ device_id: device, ip, transaction_id: tx() })), expected, atOnce: true };
      }
      case 'blacklisted':
        return {
          clicks: [{ device_id: `${runId}-b${n}`, ip: blacklistedIps[n % blacklistedIps.length]!, transaction_id: tx() }],
          expected: ['ip_blacklist'],
          atOnce: false,
        };
      case 'flood':
      case 'farm': {
        const devices = (kind === 'flood' ? floodDevicesOf(sizes.floodClicks, rules.click_spam.threshold) : farmDevicesOf(sizes.farmDevices, rules.click_spam.threshold)).map(
          (device) => `${runId}-${kind === 'flood' ? 'f' : 'm'}${n}-${device}`,
        );
        const ip = kind === 'flood' ? address.flood(n) : address.farm(n);
        return { clicks: devices.map((device) => ({ device_id: device, ip, transaction_id: tx() })), expected: expectedVerdicts(devices, rules), atOnce: false };
      }
      case 'clean': {
        const device = n % cleanDevices;
        return { clicks: [{ device_id: `${runId}-c${device}`, ip: address.clean(device), transaction_id: tx() }], expected: ['clean'], atOnce: false };
      }
    }
  };

  return {
    rules,
    blacklistedIps,
    cleanDevices,
    sizes,
    largestSend: Math.max(1, ...fraud.filter((kind) => kind.share > 0).map((kind) => kind.size)),
    next() {
      // Whichever kind is furthest behind its share goes next: exact shares, no randomness needed.
      let kind: Send['kind'] = 'clean';
      let most = -Infinity;
      for (const { kind: candidate, share, size } of fraud) {
        const debt = (sent + size) * share - sentOf[candidate];
        if (share > 0 && debt >= size / 2 && debt > most) [kind, most] = [candidate, debt];
      }
      const send = { kind, ...make(kind) };
      sentOf[kind] += send.clicks.length;
      return send;
    },
  };
}

/** A flood's device for each of its clicks in order: each device clicks `perDevice` times, then the next. */
function floodDevicesOf(clicks: number, perDevice: number): string[] {
  return Array.from({ length: clicks }, (_, i) => `d${Math.floor(i / perDevice)}`);
}

/** A farm's device for each of its clicks in order: the devices click once or twice in turn (at most `perDevice`). */
function farmDevicesOf(devices: number, perDevice: number): string[] {
  return Array.from({ length: devices }, (_, i) => Array<string>(Math.min(perDevice, 1 + (i % 2))).fill(`d${i}`)).flat();
}

/**
 * An address for the n-th clean device, burst, flood and farm, each kind in a private range of its
 * own (clean 10.0.0.0/8, bursts 192.168.0.0/16, floods 100.64.0.0/10, farms 172.16.0.0/12; the
 * blacklisted ones are in 198.18.0.0/15), from an offset that depends on the run: a run started
 * while an earlier one's address windows are still open (up to a minute, for device_farm) uses
 * other addresses, unless their ranges happen to meet.
 */
function addressPools(runId: string) {
  const pool = (name: string, base: number, bits: number) => {
    const size = 2 ** bits;
    const offset = fnv1a(`${runId}/${name}`) % size;
    return (n: number) => ipv4(base + ((offset + n) % size));
  };
  return {
    clean: pool('clean', ipv4Number(10, 0, 0, 0), 24),
    burst: pool('burst', ipv4Number(192, 168, 0, 0), 16),
    flood: pool('flood', ipv4Number(100, 64, 0, 0), 22),
    farm: pool('farm', ipv4Number(172, 16, 0, 0), 20),
  };
}

function ipv4Number(a: number, b: number, c: number, d: number): number {
  return ((a * 256 + b) * 256 + c) * 256 + d;
}

function ipv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** 32-bit FNV-1a: a spread-out number from a string. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

/** Detection quality per rule, from what each send should and did get. */
export interface Scores {
  /** Clicks the rules should flag as each rule (its fraud, injected). */
  injected: Record<RuleName, number>;
  caught: Record<RuleName, number>;
  /** Answers of each fraud type, right or wrong. */
  flaggedAs: Record<RuleName, number>;
  /** Clicks of the clean traffic (the clean devices). */
  cleanSent: number;
  /** Clean traffic answered as fraud: false positives. */
  cleanFlagged: number;
  /** Clicks that got no verdict (not 200), even retried. */
  failed: number;
}

export function emptyScores(): Scores {
  const zero = () => Object.fromEntries(RULES.map((rule) => [rule, 0])) as Record<RuleName, number>;
  return { injected: zero(), caught: zero(), flaggedAs: zero(), cleanSent: 0, cleanFlagged: 0, failed: 0 };
}

/**
 * Scores one send from its answers (null: no verdict), in the order of its clicks. A burst's clicks
 * travel concurrently and may arrive in any order, so it is scored by counts: whatever the order,
 * the first `threshold` to arrive are clean and the rest spam.
 */
export function scoreSend(scores: Scores, send: Send, answers: Array<FraudType | null>): void {
  scores.failed += answers.filter((answer) => answer === null).length;
  for (const answer of answers) if (answer !== null && answer !== 'clean') scores.flaggedAs[answer] += 1;
  if (send.kind === 'clean') {
    scores.cleanSent += 1;
    if (answers[0] !== null && answers[0] !== 'clean') scores.cleanFlagged += 1;
  }
  if (send.atOnce) {
    for (const rule of RULES) {
      const expected = send.expected.filter((verdict) => verdict === rule).length;
      scores.injected[rule] += expected;
      scores.caught[rule] += Math.min(expected, answers.filter((answer) => answer === rule).length);
    }
    return;
  }
  send.expected.forEach((verdict, i) => {
    if (verdict === 'clean') return;
    scores.injected[verdict] += 1;
    if (answers[i] === verdict) scores.caught[verdict] += 1;
  });
}

export function precision(scores: Scores, rule: RuleName): number {
  return scores.flaggedAs[rule] === 0 ? 1 : scores.caught[rule] / scores.flaggedAs[rule];
}

export function recall(scores: Scores, rule: RuleName): number {
  return scores.injected[rule] === 0 ? 1 : scores.caught[rule] / scores.injected[rule];
}

/** The rules the report has a line for: every rule that was injected or flagged. */
export function reportedRules(scores: Scores): RuleName[] {
  return RULES.filter((rule) => scores.injected[rule] > 0 || scores.flaggedAs[rule] > 0);
}

/** The value at quantile `q` of ascending `sorted` values (nearest rank). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
