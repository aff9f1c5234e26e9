import { isDeepStrictEqual } from 'node:util';
import type { RulesAdmin } from '../admin/rules-admin.js';
import { RULES, type RuleName, type RuleSet } from '../domain/rules.js';
import type { FraudType } from '../domain/verdict.js';
import { RULES_POLL_MS } from '../redis/rule-store.js';
import { emptyScores, percentile, planTraffic, scoreSend, type PlannedClick, type Scores, type Send, type SendSizes, type TrafficOptions, type TrafficPlan } from './plan.js';

export interface SimulationOptions extends TrafficOptions {
  /** Base URL of the API, e.g. http://localhost:5000. */
  url: string;
  /** Most requests in flight at once; past it the sender waits and the achieved rate drops. */
  maxInFlight: number;
  /** Once aborted, nothing more is sent: the run ends when what is under way is answered, and the rules are put back. */
  signal?: AbortSignal;
}

/** What the simulator changes in the API's Redis, through the admin services the blacklist CLI uses (admin/open-admin.ts). */
export interface SimulatorAdmin {
  /** Blacklists the addresses the blacklisted clicks come from. */
  block(ips: string[]): Promise<void>;
  rules: Pick<RulesAdmin, 'current' | 'replace' | 'restore'>;
}

/** How the run changed the rule set: which rules it enforced, and the versions. */
export interface RuleChange {
  /** The version in force before the run. */
  before: number;
  enforced: RuleName[];
  /** The version the run set. */
  set: number;
  /** The version that put the rules of `before` back; undefined when someone changed the rules during the run, whose change stays. */
  restored: number | undefined;
}

export interface SimulationReport {
  scores: Scores;
  clicksSent: number;
  clicksPlanned: number;
  /** Requests sent again for a click that got no verdict (503, a timeout, a lost connection). */
  retries: number;
  seconds: number;
  achievedRate: number;
  latencyMs: { p50: number; p95: number; p99: number };
  cleanDevices: number;
  sizes: SendSizes;
  /** The rule set the clicks were judged by. */
  rules: RuleSet;
  /** Undefined when the rule set in force already enforced every rule the run injects for. */
  ruleChange: RuleChange | undefined;
}

const TICK_MS = 10;
const REQUEST_TIMEOUT_MS = 10_000;
/** A click that gets no verdict is sent again with the same transaction_id, as the API asks of clients, up to this many times in all. */
const ATTEMPTS = 3;
const RETRY_PAUSE_MS = 50;
/** Longest wait for the API to judge by the rule set the run set. */
const IN_FORCE_TIMEOUT_MS = 10_000;
/** Where the clicks that look for the new rule set come from (TEST-NET-1: in none of the plan's ranges). */
const PROBE_IP = '192.0.2.1';

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/**
 * Sends the planned traffic at the offered rate over keep-alive connections (Node's fetch pools
 * them), with at most `maxInFlight` requests outstanding, and scores every answer.
 *
 * First it blacklists the blacklisted clicks' addresses and, where the rule set in force does not
 * enforce every rule whose fraud the run injects, enforces those for the run (at their own
 * thresholds and windows) and waits until the API judges by them. When the run ends, also when it
 * fails or is aborted, it puts the rule set it found back, unless someone changed it meanwhile.
 */
export async function runSimulation(
  options: SimulationOptions,
  admin: SimulatorAdmin,
  onProgress: (clicksSent: number, clicksPlanned: number) => void = () => {},
): Promise<SimulationReport> {
  const before = await admin.rules.current();
  if (before === undefined) throw new Error('there is no rule set in this Redis: start the API against it first (it stores its rules there), or point the simulator at the Redis the API uses');
  const plan = planTraffic(options, before.rules);
  await admin.block(plan.blacklistedIps);

  let ruleChange: RuleChange | undefined;
  if (!isDeepStrictEqual(plan.rules, before.rules)) {
    const set = await admin.rules.replace(plan.rules);
    ruleChange = { before: before.version, enforced: RULES.filter((rule) => plan.rules[rule].mode !== before.rules[rule].mode), set: set.version, restored: undefined };
  }
  try {
    if (ruleChange) await untilInForce(options, ruleChange.set);
    const traffic = await sendTraffic(options, plan, onProgress);
    return { ...traffic, cleanDevices: plan.cleanDevices, sizes: plan.sizes, rules: plan.rules, ruleChange };
  } finally {
    if (ruleChange && (await admin.rules.current())?.version === ruleChange.set) ruleChange.restored = (await admin.rules.restore(before)).version;
  }
}

async function sendTraffic(options: SimulationOptions, plan: TrafficPlan, onProgress: (clicksSent: number, clicksPlanned: number) => void) {
  const planned = Math.round(options.rate * options.durationSeconds);
  // Exact percentiles over every click of the run: bounded by the planned count (plus one send).
  const latencies = new Float64Array(planned + plan.largestSend);
  const scores = emptyScores();
  let sent = 0;
  let answered = 0;
  let inFlight = 0;
  let retries = 0;
  const pending = new Set<Promise<void>>();

  const decide = async (click: PlannedClick): Promise<FraudType | null> => {
    inFlight += 1;
    const started = performance.now();
    try {
      for (let attempt = 1; ; attempt++) {
        const answer = await postClick(options.url, click);
        if (answer !== null || attempt === ATTEMPTS) return answer?.fraud_type ?? null;
        retries += 1;
        await sleep(RETRY_PAUSE_MS);
      }
    } finally {
      inFlight -= 1;
      latencies[answered++] = performance.now() - started;
    }
  };
  const inTurn = async (clicks: PlannedClick[]) => {
    const answers: Array<FraudType | null> = [];
    for (const click of clicks) answers.push(await decide(click));
    return answers;
  };

  const dispatch = (send: Send) => {
    sent += send.clicks.length;
    // A burst is sent at once; the clicks of any other send one after another, so that each gets
    // the verdict its place in the order calls for.
    const done = (send.atOnce ? Promise.all(send.clicks.map(decide)) : inTurn(send.clicks)).then((answers) => scoreSend(scores, send, answers));
    pending.add(done);
    void done.then(() => pending.delete(done));
  };

  const started = performance.now();
  while (sent < planned && !options.signal?.aborted) {
    const due = Math.min(planned, Math.floor(((performance.now() - started) / 1000) * options.rate));
    while (sent < due && inFlight < options.maxInFlight) dispatch(plan.next());
    onProgress(sent, planned);
    await sleep(TICK_MS);
  }
  await Promise.all(pending);
  const seconds = (performance.now() - started) / 1000;
  onProgress(sent, planned);

  const sorted = latencies.subarray(0, answered).sort();
  return {
    scores,
    clicksSent: sent,
    clicksPlanned: planned,
    retries,
    seconds,
    achievedRate: sent / seconds,
    latencyMs: { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), p99: percentile(sorted, 0.99) },
  };
}

/** The API's answer to one click; null when there is none (not 200, a timeout, no connection). */
async function postClick(url: string, click: PlannedClick): Promise<{ fraud_type: FraudType; rules_version: number } | null> {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(click),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const body = (await res.json()) as { fraud_type?: FraudType; rules_version?: number };
    return res.status === 200 && body.fraud_type !== undefined ? { fraud_type: body.fraud_type, rules_version: body.rules_version ?? 0 } : null;
  } catch {
    return null;
  }
}

/**
 * Waits until the API judges by rule set `version` or a later one: every answer names the version
 * that judged it, so clicks of its own (from PROBE_IP) tell. The API's other processes look for a
 * new version on timers of their own, each within RULES_POLL_MS of the change: so that long again.
 */
async function untilInForce(options: SimulationOptions, version: number): Promise<void> {
  const deadline = Date.now() + IN_FORCE_TIMEOUT_MS;
  for (let i = 0; ; i++) {
    const id = `${options.runId}-probe${i}`;
    const answer = await postClick(options.url, { device_id: id, ip: PROBE_IP, transaction_id: id });
    if (answer !== null && answer.rules_version >= version) break;
    if (Date.now() > deadline) {
      throw new Error(`the API at ${options.url} does not judge by rule set v${version} after ${IN_FORCE_TIMEOUT_MS / 1000} s: does it use the Redis the simulator set it in?`);
    }
    await sleep(RULES_POLL_MS / 5);
  }
  await sleep(RULES_POLL_MS);
}
