import { ReplyError } from 'ioredis';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RecordedVerdict } from './domain/verdict.js';
import { ClickExpiredError, type ClickStore } from './redis/click-store.js';
import { RedisOverloadedError, RedisTimeoutError } from './redis/command-gate.js';

/**
 * What a process tells Prometheus (GET /metrics), with prom-client. Label sets are small and fixed:
 * routes as declared, status classes, verdicts and rules, kinds of failure, partitions; never a
 * device id or an address. The API's and the stream worker's are apart, so that with several API
 * processes the primary can add the API processes' up and put its worker's beside them.
 */
export interface ApiMetrics {
  registry: Registry;
  /** Requests by route (as declared), method and status class; their duration in seconds. */
  requests: Histogram<'route' | 'method' | 'status_class'>;
  /** Decisions made (retries answered again are not), by verdict. */
  decisions: Counter<'fraud_type'>;
  /** Hits of rules in shadow mode, by rule. */
  shadowHits: Counter<'rule'>;
  /** Clicks Redis did not decide, by why: timeout, overloaded, hung, expired, reply (an error Redis answered), connection. */
  redisFailures: Counter<'kind'>;
  /** Live-page event streams open now: read from `source` when scraped. */
  countEventStreams(source: () => number): void;
}

export interface WorkerMetrics {
  registry: Registry;
  /** Decisions counted by this process's stream workers. */
  counted: Counter;
  /** Deliveries that could not be counted (each is retried, up to WORKER_MAX_DELIVERIES). */
  failed: Counter;
  /** Decisions moved to the dead-letter stream. */
  deadLettered: Counter;
  /** Decisions not yet counted (undelivered and pending), as this process's workers last saw them, per partition. */
  lag: Gauge<'partition'>;
}

/** The API's metrics, with the process's own (CPU, memory, event-loop lag, handles, GC). */
export function createApiMetrics(): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  let eventStreams = () => 0;
  new Gauge({
    name: 'click_fraud_event_streams',
    help: 'Live-page event streams open',
    registers: [registry],
    collect() {
      this.set(eventStreams());
    },
  });
  return {
    registry,
    requests: new Histogram({
      name: 'click_fraud_http_request_duration_seconds',
      help: 'HTTP requests by route, method and status class, and how long they took',
      labelNames: ['route', 'method', 'status_class'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    decisions: new Counter({ name: 'click_fraud_decisions_total', help: 'Clicks decided, by verdict', labelNames: ['fraud_type'], registers: [registry] }),
    shadowHits: new Counter({ name: 'click_fraud_shadow_hits_total', help: 'Hits of rules in shadow mode, by rule', labelNames: ['rule'], registers: [registry] }),
    redisFailures: new Counter({
      name: 'click_fraud_redis_failures_total',
      help: 'Clicks Redis did not decide, by kind: timeout, overloaded, hung, expired, reply, connection',
      labelNames: ['kind'],
      registers: [registry],
    }),
    countEventStreams(source) {
      eventStreams = source;
    },
  };
}

/** The stream workers' metrics; `processMetrics` where no API reports the process's own. */
export function createWorkerMetrics({ processMetrics }: { processMetrics: boolean }): WorkerMetrics {
  const registry = new Registry();
  if (processMetrics) collectDefaultMetrics({ register: registry });
  return {
    registry,
    counted: new Counter({ name: 'click_fraud_worker_counted_total', help: 'Decisions counted by the stream workers', registers: [registry] }),
    failed: new Counter({ name: 'click_fraud_worker_failures_total', help: 'Deliveries of decisions that could not be counted (retried up to WORKER_MAX_DELIVERIES)', registers: [registry] }),
    deadLettered: new Counter({ name: 'click_fraud_worker_dead_lettered_total', help: 'Decisions moved to the dead-letter stream', registers: [registry] }),
    lag: new Gauge({
      name: 'click_fraud_worker_lag',
      help: 'Decisions not yet counted (undelivered and pending), by partition',
      labelNames: ['partition'],
      registers: [registry],
    }),
  };
}

/** Counts a decision or a failure of the click path. */
export function recordOutcome(metrics: ApiMetrics, outcome: RecordedVerdict | Error): void {
  if (!(outcome instanceof Error)) {
    if (outcome.duplicate) return;
    metrics.decisions.inc({ fraud_type: outcome.fraudType });
    for (const hit of outcome.shadow) metrics.shadowHits.inc({ rule: hit.rule });
    return;
  }
  metrics.redisFailures.inc({ kind: failureKind(outcome) });
}

function failureKind(error: Error): string {
  if (error instanceof RedisTimeoutError) return 'timeout';
  if (error instanceof RedisOverloadedError) return error.reason === 'hung' ? 'hung' : 'overloaded';
  if (error instanceof ClickExpiredError) return 'expired';
  if (error instanceof ReplyError) return 'reply';
  return 'connection';
}

/** The click path, counted: every decision by verdict (and shadow hit), every failure by kind. */
export function measuredClickStore(store: ClickStore, metrics: ApiMetrics): ClickStore {
  return {
    async decide(click) {
      try {
        const verdict = await store.decide(click);
        recordOutcome(metrics, verdict);
        return verdict;
      } catch (error) {
        recordOutcome(metrics, error as Error);
        throw error;
      }
    },
    async decideMany(clicks) {
      const results = await store.decideMany(clicks);
      for (const result of results) recordOutcome(metrics, result);
      return results;
    },
  };
}
