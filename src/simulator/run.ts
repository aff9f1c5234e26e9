import type { FraudType } from '../domain/verdict.js';
import { emptyScores, percentile, planTraffic, scoreSend, type PlannedClick, type Scores, type Send, type TrafficOptions } from './plan.js';

export interface SimulationOptions extends TrafficOptions {
  /** Base URL of the API, e.g. http://localhost:5000. */
  url: string;
  /** Most requests in flight at once; past it the sender waits and the achieved rate drops. */
  maxInFlight: number;
}

export interface SimulationReport {
  scores: Scores;
  clicksSent: number;
  seconds: number;
  achievedRate: number;
  latencyMs: { p50: number; p95: number; p99: number };
  cleanDevices: number;
}

const TICK_MS = 10;
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * Sends the planned traffic at the offered rate over keep-alive connections (Node's fetch pools
 * them), with at most `maxInFlight` requests outstanding, and scores every answer. The addresses of
 * `blacklistedIps` must be blacklisted before: `blockIps` does it.
 */
export async function runSimulation(
  options: SimulationOptions,
  blockIps: (ips: string[]) => Promise<void>,
  onProgress: (clicksSent: number, clicksPlanned: number) => void = () => {},
): Promise<SimulationReport> {
  const plan = planTraffic(options);
  await blockIps(plan.blacklistedIps);

  const planned = Math.round(options.rate * options.durationSeconds);
  // Exact percentiles over every click of the run: bounded by the planned count (plus one burst).
  const latencies = new Float64Array(planned + options.burst);
  const scores = emptyScores();
  let sent = 0;
  let answered = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();

  const sendClick = async (click: PlannedClick): Promise<FraudType | null> => {
    const started = performance.now();
    try {
      const res = await fetch(options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(click),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const body = (await res.json()) as { fraud_type?: FraudType };
      return res.status === 200 && body.fraud_type !== undefined ? body.fraud_type : null;
    } catch {
      return null;
    } finally {
      latencies[answered++] = performance.now() - started;
    }
  };

  const dispatch = (send: Send) => {
    const clicks = send.kind === 'burst' ? send.clicks : [send.click];
    inFlight += clicks.length;
    sent += clicks.length;
    const done = Promise.all(clicks.map(sendClick)).then((answers) => {
      inFlight -= clicks.length;
      scoreSend(scores, send, answers, options.threshold);
    });
    pending.add(done);
    void done.then(() => pending.delete(done));
  };

  const started = performance.now();
  while (sent < planned) {
    const due = Math.min(planned, Math.floor(((performance.now() - started) / 1000) * options.rate));
    while (sent < due && inFlight < options.maxInFlight) dispatch(plan.next());
    onProgress(sent, planned);
    await new Promise((tick) => setTimeout(tick, TICK_MS));
  }
  await Promise.all(pending);
  const seconds = (performance.now() - started) / 1000;
  onProgress(sent, planned);

  const sorted = latencies.subarray(0, answered).sort();
  return {
    scores,
    clicksSent: sent,
    seconds,
    achievedRate: sent / seconds,
    latencyMs: { p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), p99: percentile(sorted, 0.99) },
    cleanDevices: plan.cleanDevices,
  };
}
