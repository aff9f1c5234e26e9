import type { ChainableCommander } from 'ioredis';
import type { Click } from '../domain/click.js';
import { isFraudType, type RecordedVerdict } from '../domain/verdict.js';
import { areBlocked, type Blacklist } from './blacklist.js';
import type { CommandGate } from './command-gate.js';
import type { RedisClient } from './connection.js';
import type { Keyspace, Partition } from './keyspace.js';
import type { CheckClickReply } from './scripts.js';
import type { ServerClock } from './server-clock.js';

export interface ClickStoreSettings {
  keyspace: Keyspace;
  blacklist: Blacklist;
  clickSpam: { threshold: number; windowMs: number };
  streamMaxLen: number;
  /** Longest a click waits for Redis (REDIS_TIMEOUT_MS); a batch gets more, by its size. */
  timeoutMs: number;
  /**
   * Redis Cluster: the blacklist lives in another slot than a device's keys, so it is looked up as
   * a command of its own before the device's step, which is given the answer.
   */
  lookupFirst: boolean;
  /**
   * Opt-in durability: after each check, WAIT until this many replicas have the write, or this
   * long, on the check's own connection to its master. Replication is asynchronous otherwise: a
   * decision acknowledged just before its master dies can be lost with it.
   */
  replicas: { count: number; timeoutMs: number } | undefined;
  /** Called for a decision that fewer replicas than asked acknowledged in time (it stands, answered 200). */
  onUnreplicated(): void;
}

export interface ClickStore {
  /** Decides a click and records it in its device's window and its partition's stream, in one step. */
  decide(click: Click): Promise<RecordedVerdict>;
  /**
   * Decides clicks in order, in one round trip per partition: each is the same atomic step as
   * `decide`, so later clicks of a device see the earlier ones. An entry is an Error where Redis
   * failed that click.
   */
  decideMany(clicks: Click[]): Promise<Array<RecordedVerdict | Error>>;
}

/** The check ran after its deadline (its caller had given up) and recorded nothing. */
export class ClickExpiredError extends Error {
  constructor() {
    super('Redis reached the click after its deadline and recorded nothing');
  }
}

/**
 * A batch waits REDIS_TIMEOUT_MS plus this much for each of its clicks and for each click already
 * waiting for Redis in this process, ahead of it: a pipeline of 1,000 checks takes Redis 25 to 50 ms
 * on its own, and several times more behind other batches on a Redis that shares its cores.
 */
export const BATCH_MS_PER_CLICK = 1;

export function batchTimeoutMs(timeoutMs: number, clicks: number, waitingAhead: number): number {
  return timeoutMs + (clicks + waitingAhead) * BATCH_MS_PER_CLICK;
}

/**
 * The script gives up this much before its caller does, so that a check that starts just in time
 * still has its answer back before the caller answers 503: what the caller gives up on is never
 * decided. A fifth of the timeout, and never under 5 ms.
 */
function deadlineMargin(timeoutMs: number): number {
  return Math.max(5, Math.round(timeoutMs / 5));
}

/**
 * Every check goes through `gate` (a bounded number in flight, none while Redis is hung) and
 * carries a deadline on the clock of the server that runs it, after which the script changes
 * nothing.
 */
export function createClickStore(redis: RedisClient, clock: ServerClock, gate: CommandGate, settings: ClickStoreSettings): ClickStore {
  const { keyspace, blacklist, clickSpam, streamMaxLen, timeoutMs, lookupFirst, replicas, onUnreplicated } = settings;
  const waitMs = replicas?.timeoutMs ?? 0;
  const deadline = (partition: Partition, waitMs: number) => Math.floor(clock.now(partition.stream) + waitMs - deadlineMargin(waitMs));
  const rest = (click: Click, deadlineMs: number) =>
    [click.ip, click.device_id, click.transaction_id, clickSpam.threshold, clickSpam.windowMs, streamMaxLen, deadlineMs] as const;

  /** One click's step, on a pipeline or the client: the lookup inside it, or its answer given. */
  const check = (target: CheckTarget, click: Click, partition: Partition, deadlineMs: number, listed?: boolean): unknown => {
    const [window, verdicts] = [partition.window(click.device_id), partition.verdicts(click.device_id)];
    if (listed === undefined) return target.checkClick(blacklist.key, window, verdicts, partition.stream, blacklist.backend, ...rest(click, deadlineMs));
    return target.checkClickListed(window, verdicts, partition.stream, listed ? 1 : 0, ...rest(click, deadlineMs));
  };

  /**
   * Runs a pipeline of `writes` checks followed by WAIT: on a cluster the pipeline goes to the
   * checks' master, so WAIT covers them. Answers the checks' replies.
   */
  const replicated = async (pipeline: ChainableCommander, writes: number) => {
    pipeline.call('WAIT', replicas!.count, replicas!.timeoutMs);
    const replies = (await pipeline.exec()) ?? [];
    const [waitError, acknowledged] = replies[writes] ?? [new Error('no reply to WAIT'), 0];
    if (waitError || Number(acknowledged) < replicas!.count) onUnreplicated();
    return replies.slice(0, writes);
  };

  return {
    async decide(click) {
      const partition = keyspace.partitionOf(click.device_id);
      const deadlineMs = deadline(partition, timeoutMs);
      const reply = await gate.run((lookupFirst ? 2 : 1) + (replicas ? 1 : 0), timeoutMs + waitMs, async () => {
        const listed = lookupFirst ? (await areBlocked(redis, blacklist, [click.ip]))[0] : undefined;
        if (!replicas) return (await check(redis, click, partition, deadlineMs, listed)) as CheckClickReply;
        const pipeline = redis.pipeline();
        check(pipeline, click, partition, deadlineMs, listed);
        const [checked] = await replicated(pipeline, 1);
        if (checked![0]) throw checked![0];
        return checked![1] as CheckClickReply;
      });
      return toVerdict(reply);
    },
    async decideMany(clicks) {
      const batchWaitMs = batchTimeoutMs(timeoutMs, clicks.length, gate.inFlight);
      // A device's clicks are all in its partition, so a pipeline per partition keeps their order.
      const byPartition = new Map<Partition, number[]>();
      clicks.forEach((click, index) => {
        const partition = keyspace.partitionOf(click.device_id);
        const indexes = byPartition.get(partition) ?? [];
        indexes.push(index);
        byPartition.set(partition, indexes);
      });
      const deadlines = new Map([...byPartition.keys()].map((partition) => [partition, deadline(partition, batchWaitMs)]));
      const replies = await gate.run(clicks.length + (lookupFirst ? 1 : 0) + (replicas ? byPartition.size : 0), batchWaitMs + waitMs, async () => {
        const ips = lookupFirst ? [...new Set(clicks.map((click) => click.ip))] : [];
        const listed = new Map(lookupFirst ? (await areBlocked(redis, blacklist, ips)).map((blocked, i) => [ips[i]!, blocked]) : []);
        const results = new Array<[Error | null, unknown]>(clicks.length);
        await Promise.all(
          [...byPartition].map(async ([partition, indexes]) => {
            const pipeline = redis.pipeline();
            for (const index of indexes) {
              const click = clicks[index]!;
              void check(pipeline, click, partition, deadlines.get(partition)!, lookupFirst ? listed.get(click.ip) : undefined);
            }
            const replied = replicas ? await replicated(pipeline, indexes.length) : ((await pipeline.exec()) ?? []);
            indexes.forEach((index, i) => (results[index] = replied[i] ?? [new Error('no reply'), null]));
          }),
        );
        return results;
      });
      return replies.map(([error, reply]) => {
        if (error) return error;
        try {
          return toVerdict(reply as CheckClickReply);
        } catch (failure) {
          return failure as Error;
        }
      });
    },
  };
}

/** What both a client and a pipeline offer: the two check scripts, whatever they return. */
interface CheckTarget {
  checkClick(...args: Parameters<RedisClient['checkClick']>): unknown;
  checkClickListed(...args: Parameters<RedisClient['checkClickListed']>): unknown;
}

function toVerdict(reply: CheckClickReply): RecordedVerdict {
  if (reply[0] === 'expired') throw new ClickExpiredError();
  const [fraudType, ts, streamId, duplicate] = reply as [string, string, string, 0 | 1];
  if (!isFraudType(fraudType)) throw new Error(`checkClick answered an unknown fraud type: ${fraudType}`);
  return { fraudType, ts: Number(ts), streamId, duplicate: duplicate === 1 };
}
