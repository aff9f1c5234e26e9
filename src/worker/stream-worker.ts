import { ReplyError } from 'ioredis';
import type { Logger } from 'pino';
import { readDecisionEntry } from '../domain/decision-entry.js';
import type { RedisClient } from '../redis/connection.js';
import type { WorkerMetrics } from '../metrics.js';
import { countDecisions, type Counters, type DecisionCount } from '../redis/counters.js';
import { ensureConsumerGroup, streamGroupState } from '../redis/decision-stream.js';
import type { Partition } from '../redis/keyspace.js';
import type { Offenders } from '../redis/offenders.js';

export interface StreamWorkerSettings {
  /** The partition whose stream this worker counts (its stream, dead letters and counters). */
  partition: Partition;
  /** Approximate cap of the dead-letter stream. */
  maxLen: number;
  group: string;
  consumer: string;
  batchSize: number;
  /**
   * How long an idle read waits for new decisions. With `blocking`, one XREADGROUP BLOCK; without
   * (several partitions sharing a connection, which a blocked read would hold), reads do not block
   * and an idle worker waits between them, up to this long.
   */
  blockMs: number;
  blocking: boolean;
  claimIdleMs: number;
  maxDeliveries: number;
  metrics?: WorkerMetrics;
}

export interface StreamWorker {
  /** Counts decisions until stopped. */
  run(): Promise<void>;
  /** Finishes the batch in hand (at most one blocked read away) and returns. */
  stop(): Promise<void>;
}

/** Fields are null for an entry of this consumer's history that was trimmed from the stream since. */
type Entry = [id: string, fields: string[] | null];
type Failure = { id: string; fields: string[]; reason: string };

const LAG_SAMPLE_MS = 1000;
const MAX_BACKOFF_MS = 2000;
/** Fields copied to a dead letter: enough to see what it was, bounded whatever was XADDed. */
const MAX_DEAD_LETTER_FIELDS = 64;

/** Non-blocking reads of an idle partition start again after this, doubling up to blockMs. */
const FIRST_IDLE_WAIT_MS = 10;

/**
 * Reads a partition's decision stream through a consumer group and counts every decision exactly once.
 *
 * Each batch of entries is counted (in the counters and, a fraud decision, in the top offenders)
 * and acknowledged in one atomic script (see countDecisions.lua), so a worker killed at any moment
 * leaves every entry either counted and acknowledged or pending, and a pending entry is counted by
 * whoever gets to it first: this worker when it restarts under the same name (it reads its own
 * pending entries first), or another worker once the entry has been idle for `claimIdleMs`
 * (XAUTOCLAIM).
 */
export function createStreamWorker(redis: RedisClient, counters: Counters, offenders: Offenders, settings: StreamWorkerSettings, logger: Logger): StreamWorker {
  const { partition, maxLen, group, consumer, batchSize, blockMs, blocking, claimIdleMs, maxDeliveries, metrics } = settings;
  const stream = { key: partition.stream, maxLen };
  const deadLetterKey = partition.deadLetters;
  let idleWaitMs = FIRST_IDLE_WAIT_MS;
  const claimEveryMs = Math.max(50, Math.min(claimIdleMs / 2, 10_000));
  let running = false;
  let finished: Promise<void> = Promise.resolve();

  async function count(entries: Entry[]): Promise<void> {
    if (entries.length === 0) return;
    const queued: Array<{ id: string; fields: string[]; count: DecisionCount }> = [];
    for (const [id, fields] of entries) {
      if (fields === null) {
        await deadLetter({ id, fields: [], reason: 'trimmed from the stream before it was counted' }, 1);
        continue;
      }
      const read = readDecisionEntry(fields);
      // A malformed entry can never be counted: it goes to the dead letters on its first delivery.
      if (!read.ok) {
        await deadLetter({ id, fields, reason: `malformed: ${read.problem}` }, 1);
        continue;
      }
      queued.push({ id, fields, count: counters.countOf(partition, id, read.decision, offenders.tally(partition, read.decision)) });
    }
    if (queued.length === 0) return;
    try {
      // The whole batch in one step, its counts summed per bucket.
      const counted = Number(await countDecisions(redis, stream.key, group, queued.map((entry) => entry.count)));
      metrics?.counted.inc(counted);
      return;
    } catch (error) {
      // Something in the batch cannot be counted, and nothing was: each entry again on its own,
      // so that only the ones at fault stay pending.
      logger.debug({ err: (error as Error).message, entries: queued.length }, 'a batch could not be counted in one step; counting its entries one by one');
    }
    const pipeline = redis.pipeline();
    for (const entry of queued) countDecisions(pipeline, stream.key, group, [entry.count]);
    const results = (await pipeline.exec()) ?? [];
    const failures: Failure[] = [];
    results.forEach(([error], i) => {
      if (error) failures.push({ id: queued[i]!.id, fields: queued[i]!.fields, reason: error.message });
    });
    metrics?.counted.inc(results.filter(([error, counted]) => !error && Number(counted) === 1).length);
    if (failures.length > 0) metrics?.failed.inc(failures.length);
    for (const failure of failures) await retryOrDeadLetter(failure);
  }

  /** A failed entry stays pending, to be claimed again after `claimIdleMs`, until it has used up its deliveries. */
  async function retryOrDeadLetter(failure: Failure): Promise<void> {
    const [pending] = (await redis.xpending(stream.key, group, failure.id, failure.id, 1)) as Array<[string, string, number, number]>;
    if (!pending) return;
    const deliveries = pending[3];
    if (deliveries >= maxDeliveries) await deadLetter(failure, deliveries);
    else logger.warn({ entry: failure.id, deliveries, reason: failure.reason }, 'decision could not be counted; it will be retried');
  }

  async function deadLetter({ id, fields, reason }: Failure, deliveries: number): Promise<void> {
    const moved = await redis.deadLetter(
      stream.key,
      deadLetterKey,
      group,
      id,
      reason,
      deliveries,
      stream.maxLen,
      ...fields.slice(0, MAX_DEAD_LETTER_FIELDS),
    );
    if (moved === 1) metrics?.deadLettered.inc();
    if (moved === 1) logger.error({ entry: id, deliveries, reason, deadLetterStream: deadLetterKey }, 'decision moved to the dead-letter stream');
  }

  async function readGroup(id: string, block: boolean): Promise<Entry[]> {
    const reply = block
      ? await redis.xreadgroup('GROUP', group, consumer, 'COUNT', batchSize, 'BLOCK', blockMs, 'STREAMS', stream.key, id)
      : await redis.xreadgroup('GROUP', group, consumer, 'COUNT', batchSize, 'STREAMS', stream.key, id);
    return ((reply as Array<[string, Entry[]]> | null)?.[0]?.[1] ?? []) as Entry[];
  }

  /** What this consumer read before a restart but never counted, walked once from the start. */
  async function countOwnPending(): Promise<void> {
    for (let after = '0'; ; ) {
      const entries = await readGroup(after, false);
      if (entries.length === 0) return;
      await count(entries);
      after = entries[entries.length - 1]![0];
    }
  }

  /** Entries another consumer (a dead one) left pending too long. Returns the next cursor. */
  async function claimStale(cursor: string): Promise<string> {
    const [next, entries, trimmed] = (await redis.xautoclaim(stream.key, group, consumer, claimIdleMs, cursor, 'COUNT', batchSize)) as [
      string,
      Entry[],
      string[],
    ];
    if (entries.length > 0) logger.info({ claimed: entries.length }, 'claimed decisions left pending by another worker');
    // XAUTOCLAIM drops pending entries that are no longer in the stream; they cannot be counted.
    if (trimmed.length > 0) {
      logger.error({ lost: trimmed.length }, 'decisions were trimmed from the stream before they were counted: raise DECISION_STREAM_MAXLEN or add workers');
    }
    await count(entries);
    return next;
  }

  /** Decisions not yet counted, for the dashboard (RedisTimeSeries) and /metrics. */
  async function recordLag(): Promise<void> {
    const state = await streamGroupState(redis, stream.key, group);
    if (state.lag === null) return;
    metrics?.lag.set({ partition: partition.index }, state.lag + state.pending);
    if (counters.recordsLag) await counters.recordLag(redis, partition, state.lag + state.pending, Date.now());
  }

  /**
   * The group (or the whole stream) is gone: Redis restarted without its data, or someone deleted
   * it. Recreated from the start of what is left, so that no decision still in the stream goes
   * uncounted, with the counter series recreated first if they went too. False when Redis could
   * not be reached meanwhile (the loop then backs off as for any lost connection).
   */
  async function recreateGroup(): Promise<boolean> {
    try {
      await counters.ensure(redis);
      await ensureConsumerGroup(redis, stream.key, group);
    } catch {
      return false;
    }
    logger.warn(
      { stream: stream.key, group },
      'the consumer group was gone (Redis restarted empty, or the stream or group was deleted): recreated it from the start of the stream; counting goes on',
    );
    return true;
  }

  async function loop(): Promise<void> {
    let claimCursor = '0-0';
    let nextClaimAt = 0;
    let nextLagAt = 0;
    let failures = 0;
    let ownPendingDone = false;
    while (running) {
      try {
        if (!ownPendingDone) {
          await ensureConsumerGroup(redis, stream.key, group);
          await countOwnPending();
          ownPendingDone = true;
        }
        if (Date.now() >= nextClaimAt) {
          claimCursor = await claimStale(claimCursor);
          // A cursor other than 0-0 means more stale entries wait: go on at once.
          nextClaimAt = claimCursor === '0-0' ? Date.now() + claimEveryMs : 0;
        }
        const fresh = await readGroup('>', blocking);
        await count(fresh);
        if (!blocking) {
          // Idle: wait before the next read, longer each time, up to blockMs; busy: read on at once.
          if (fresh.length === 0) await new Promise((done) => setTimeout(done, idleWaitMs));
          idleWaitMs = fresh.length === 0 ? Math.min(idleWaitMs * 2, blockMs) : FIRST_IDLE_WAIT_MS;
        }
        if ((counters.recordsLag || metrics) && Date.now() >= nextLagAt) {
          await recordLag();
          nextLagAt = Date.now() + LAG_SAMPLE_MS;
        }
        if (failures > 0) logger.info('stream worker recovered');
        failures = 0;
      } catch (error) {
        if (isGroupGone(error) && (await recreateGroup())) {
          ownPendingDone = false;
          claimCursor = '0-0';
          continue;
        }
        if (failures === 0) {
          if (error instanceof ReplyError) logger.error({ err: (error as Error).message }, 'stream worker: Redis refused a command; retrying');
          else logger.warn({ err: (error as Error).message }, 'stream worker cannot reach Redis; retrying');
        }
        failures += 1;
        await new Promise((done) => setTimeout(done, Math.min(100 * 2 ** failures, MAX_BACKOFF_MS)));
      }
    }
  }

  return {
    run() {
      running = true;
      finished = loop();
      return finished;
    },
    async stop() {
      running = false;
      await finished;
    },
  };
}

/** NOGROUP: the consumer group, or the stream itself, no longer exists. */
function isGroupGone(error: unknown): boolean {
  return error instanceof ReplyError && (error as Error).message.startsWith('NOGROUP');
}
