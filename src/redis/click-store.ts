import { ReplyError, type ChainableCommander } from 'ioredis';
import type { Click } from '../domain/click.js';
import { addressHex } from '../domain/ip.js';
import { orderedHit, type RuleHit } from '../domain/rules.js';
import { isFraudType, type RecordedVerdict } from '../domain/verdict.js';
import type { Blacklist } from './blacklist.js';
import type { CommandGate } from './command-gate.js';
import type { RedisClient } from './connection.js';
import type { Keyspace, Partition } from './keyspace.js';
import type { RuleArgs, RuleBook } from './rule-store.js';
import type { CheckClickReply, ListKeysArgs } from './scripts.js';
import type { ServerClock } from './server-clock.js';

export interface ClickStoreSettings {
  keyspace: Keyspace;
  blacklist: Blacklist;
  /** The rule set in force (see rule-store.ts); each check is judged by the version current when it is sent. */
  rules: RuleBook;
  streamMaxLen: number;
  /** Longest a click waits for Redis (REDIS_TIMEOUT_MS); a batch gets more, by its size. */
  timeoutMs: number;
  /**
   * Redis Cluster: the blacklist (with its ranges and the allowlist) and an address's windows live in
   * other slots than a device's keys, so each is its own command before the device's step, which is
   * given what they found.
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
  /**
   * Decides a click and records it in its device's window and its partition's stream, in one step.
   * On a single Redis the clicks decided in one turn of the event loop share a script call.
   */
  decide(click: Click): Promise<RecordedVerdict>;
  /**
   * Decides clicks in order, in one round trip (per partition, on a cluster): each is the same
   * atomic step as `decide`, so later clicks of a device see the earlier ones. An entry is an
   * Error where Redis failed that click.
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
 * waiting for Redis in this process, ahead of it: 1,000 checks take Redis 25 to 50 ms on their own,
 * and several times more behind other batches on a Redis that shares its cores.
 */
export const BATCH_MS_PER_CLICK = 1;

export function batchTimeoutMs(timeoutMs: number, clicks: number, waitingAhead: number): number {
  return timeoutMs + (clicks + waitingAhead) * BATCH_MS_PER_CLICK;
}

/**
 * Single clicks sent to Redis in one call, at most. Waiting for the end of the event loop's turn
 * alone, every click read in a turn would wait for the last one, and Redis would wait for them all,
 * idle, then the process for Redis: the clicks of 64 connections went to and fro in one wave, at
 * 0.9 times the rate of the bare Express route. Sending them 16 at a time keeps both busy (1.2 to
 * 1.3 times, in `npm run bench`), while the script's start and the arguments every click shares
 * are still paid once for 16.
 */
export const CLICKS_PER_CALL = 16;

/**
 * Most clicks in one checkClicks call. Redis runs nothing else while a script runs: at about 30 µs
 * a click, a call of 100 keeps other clients' commands waiting 3 ms at most.
 */
export const MAX_CLICKS_PER_CALL = 100;

/**
 * The script gives up this much before its caller does, so that a check that starts just in time
 * still has its answer back before the caller answers 503: what the caller gives up on is never
 * decided. A fifth of the timeout, and never under 5 ms.
 */
function deadlineMargin(timeoutMs: number): number {
  return Math.max(5, Math.round(timeoutMs / 5));
}

/** What a cluster's lookup in the blacklist's slot found for a click (lookupAddresses-7.lua). */
interface Lookup {
  listed: 0 | 1;
  range: string;
  allowlisted: 0 | 1;
}

/**
 * Every check goes through `gate` (a bounded number in flight, none while Redis is hung) and
 * carries a deadline on the clock of the server that runs it, after which the script changes
 * nothing.
 */
export function createClickStore(redis: RedisClient, clock: ServerClock, gate: CommandGate, settings: ClickStoreSettings): ClickStore {
  const { keyspace, blacklist, rules, streamMaxLen, timeoutMs, lookupFirst, replicas, onUnreplicated } = settings;
  const waitMs = replicas?.timeoutMs ?? 0;
  const { lists } = keyspace;
  const listKeys: ListKeysArgs = [
    blacklist.key,
    lists.blacklistRanges,
    lists.blacklistRangeLengths,
    lists.allowAddresses,
    lists.allowRanges,
    lists.allowRangeLengths,
    lists.allowDevices,
  ];
  const deadline = (key: string, budgetMs: number) => Math.floor(clock.now(key) + budgetMs - deadlineMargin(budgetMs));

  /**
   * A single Redis: the clicks' whole steps, every lookup and window inside them, in one call
   * (checkClicks.lua): the list keys, each click's keys, the shared arguments, each click's own.
   */
  const checkClicks = (target: CheckTarget, clicks: Click[], rulesArgs: RuleArgs, deadlineMs: number): unknown => {
    const keys: string[] = [...listKeys];
    const args: Array<string | number> = [blacklist.backend, ...rulesArgs, streamMaxLen, deadlineMs];
    for (const click of clicks) {
      const partition = keyspace.partitionOf(click.device_id);
      const address = keyspace.address(click.ip);
      keys.push(partition.window(click.device_id), partition.verdicts(click.device_id), partition.stream, address.clicks, address.devices);
      args.push(click.ip, addressHex(click.ip), click.device_id, click.transaction_id);
    }
    return target.checkClicks(keys.length, ...keys, ...args);
  };

  /**
   * A single Redis: the clicks in calls of at most MAX_CLICKS_PER_CALL, sent together (with WAIT
   * after them when asked), each given `budgetMs`. An entry is the reply for its click, or the
   * error of the call it was in.
   */
  const checkOnSingleRedis = async (clicks: Click[], budgetMs: number): Promise<Array<CheckClickReply | Error>> => {
    const calls: Click[][] = [];
    for (let i = 0; i < clicks.length; i += MAX_CLICKS_PER_CALL) calls.push(clicks.slice(i, i + MAX_CLICKS_PER_CALL));
    const replied = await gate.run(clicks.length + (replicas ? 1 : 0), budgetMs + waitMs, async (): Promise<Array<[Error | null, unknown]>> => {
      const rulesArgs = rules.args();
      const deadlineMs = deadline(blacklist.key, budgetMs);
      if (replicas) {
        const pipeline = redis.pipeline();
        for (const call of calls) checkClicks(pipeline, call, rulesArgs, deadlineMs);
        return replicated(pipeline, calls.length);
      }
      return Promise.all(
        calls.map((call) =>
          Promise.resolve(checkClicks(redis, call, rulesArgs, deadlineMs)).then(
            (reply): [null, unknown] => [null, reply],
            (error: Error): [Error, null] => [error, null],
          ),
        ),
      );
    });
    return calls.flatMap((call, i): Array<CheckClickReply | Error> => {
      const [error, replies] = replied[i] ?? [new Error('no reply'), null];
      return error ? call.map(() => error) : (replies as CheckClickReply[]);
    });
  };

  /**
   * Single clicks waiting to go to Redis together, in one call: where each would be a command of its
   * own, CLICKS_PER_CALL clicks share one. They leave as soon as there are that many, or at the end
   * of this turn of the event loop, whichever comes first.
   */
  let waiting: Array<{ click: Click; decided(verdict: RecordedVerdict): void; failed(error: Error): void }> = [];
  const sendWaiting = () => {
    if (waiting.length === 0) return;
    const sent = waiting;
    waiting = [];
    checkOnSingleRedis(sent.map((entry) => entry.click), timeoutMs).then(
      (replies) =>
        sent.forEach((entry, i) => {
          const verdict = verdictOf(replies[i]!);
          if (verdict instanceof Error) entry.failed(verdict);
          else entry.decided(verdict);
        }),
      (error: Error) => sent.forEach((entry) => entry.failed(error)),
    );
  };

  /** A cluster: the device's step, given what the lookup and the address's windows found. */
  const decideOne = (target: CheckTarget, click: Click, partition: Partition, rulesArgs: RuleArgs, deadlineMs: number, found: Lookup, counts: [number, number]): unknown =>
    target.decideClick(
      partition.window(click.device_id),
      partition.verdicts(click.device_id),
      partition.stream,
      click.ip,
      click.device_id,
      click.transaction_id,
      ...rulesArgs,
      streamMaxLen,
      deadlineMs,
      found.listed,
      found.range,
      found.allowlisted,
      counts[0],
      counts[1],
    );

  /** A cluster: the lookups of many clicks in the blacklist's slot, in one command. */
  const lookUp = async (clicks: Click[], rulesArgs: RuleArgs): Promise<Lookup[]> => {
    const flat = await redis.lookupAddresses(...listKeys, blacklist.backend, ...rulesArgs, ...clicks.flatMap((click) => [click.ip, addressHex(click.ip), click.device_id]));
    return clicks.map((_, i) => ({ listed: Number(flat[3 * i]) as 0 | 1, range: String(flat[3 * i + 1]), allowlisted: Number(flat[3 * i + 2]) as 0 | 1 }));
  };

  /**
   * A cluster: each click in its address's windows, on the address's master (sent in order, so an
   * address's clicks of a batch count in order); [0, 0] without per-address rules, or an error for
   * a click whose step came after its deadline.
   */
  const recordAddresses = (clicks: Click[], rulesArgs: RuleArgs, budgetMs: number): Promise<Array<[number, number] | Error>> => {
    const { ip_flood, device_farm } = rules.current().rules;
    if (ip_flood.mode === 'off' && device_farm.mode === 'off') return Promise.resolve(clicks.map(() => [0, 0]));
    return Promise.all(
      clicks.map(async (click) => {
        const address = keyspace.address(click.ip);
        try {
          const reply = await redis.recordAddress(address.clicks, address.devices, click.device_id, click.transaction_id, ...rulesArgs, deadline(address.clicks, budgetMs));
          return reply[0] === 'expired' ? new ClickExpiredError() : [Number(reply[0]), Number(reply[1])] as [number, number];
        } catch (error) {
          return error as Error;
        }
      }),
    );
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

  /** Sends each partition's steps as one pipeline (a device's clicks in order), with WAIT when asked. */
  const runPartitions = async (
    groups: Map<Partition, number[]>,
    send: (target: CheckTarget, index: number, partition: Partition) => unknown,
    results: Array<[Error | null, unknown]>,
  ) => {
    await Promise.all(
      [...groups].map(async ([partition, indexes]) => {
        // A lone check without WAIT goes on the client, where auto-pipelining sends the checks of
        // concurrent requests in one write; a pipeline of its own would be a write per click.
        if (indexes.length === 1 && !replicas) {
          const reply = Promise.resolve(send(redis, indexes[0]!, partition));
          results[indexes[0]!] = await reply.then((value): [null, unknown] => [null, value], (error: Error): [Error, null] => [error, null]);
          return;
        }
        const pipeline = redis.pipeline();
        for (const index of indexes) send(pipeline, index, partition);
        const replied = replicas ? await replicated(pipeline, indexes.length) : ((await pipeline.exec()) ?? []);
        indexes.forEach((index, i) => (results[index] = replied[i] ?? [new Error('no reply'), null]));
      }),
    );
  };

  const decideMany = async (clicks: Click[]): Promise<Array<RecordedVerdict | Error>> => {
    if (!lookupFirst) {
      const replies = await checkOnSingleRedis(clicks, clicks.length === 1 ? timeoutMs : batchTimeoutMs(timeoutMs, clicks.length, gate.inFlight));
      return replies.map(verdictOf);
    }
    const rulesArgs = rules.args();
    const budgetMs = clicks.length === 1 ? timeoutMs : batchTimeoutMs(timeoutMs, clicks.length, gate.inFlight);
    // A device's clicks are all in its partition, so a pipeline per partition keeps their order.
    const byPartition = new Map<Partition, number[]>();
    clicks.forEach((click, index) => {
      const partition = keyspace.partitionOf(click.device_id);
      const indexes = byPartition.get(partition) ?? [];
      indexes.push(index);
      byPartition.set(partition, indexes);
    });
    const deadlines = new Map([...byPartition.keys()].map((partition) => [partition, deadline(partition.stream, budgetMs)]));
    // The lookup, and each click's address step and device step.
    const cost = 1 + 2 * clicks.length;
    const replies = await gate.run(cost + (replicas ? byPartition.size : 0), budgetMs + waitMs, async () => {
      const results = new Array<[Error | null, unknown]>(clicks.length);
      const [found, counts] = await Promise.all([lookUp(clicks, rulesArgs), recordAddresses(clicks, rulesArgs, budgetMs)]);
      // A click whose address step failed is not decided: it answers that error.
      const ready = new Map<Partition, number[]>();
      for (const [partition, indexes] of byPartition) {
        const going = indexes.filter((index) => {
          const count = counts[index]!;
          if (count instanceof Error) results[index] = [count, null];
          return !(count instanceof Error);
        });
        if (going.length > 0) ready.set(partition, going);
      }
      await runPartitions(
        ready,
        (pipeline, index, partition) => decideOne(pipeline, clicks[index]!, partition, rulesArgs, deadlines.get(partition)!, found[index]!, counts[index] as [number, number]),
        results,
      );
      return results;
    });
    return replies.map(([error, reply]) => error ?? verdictOf(reply as CheckClickReply));
  };

  return {
    async decide(click) {
      if (lookupFirst) {
        const [verdict] = await decideMany([click]);
        if (verdict instanceof Error) throw verdict;
        return verdict!;
      }
      return new Promise((decided, failed) => {
        waiting.push({ click, decided, failed });
        if (waiting.length === CLICKS_PER_CALL) sendWaiting();
        else if (waiting.length === 1) setImmediate(sendWaiting);
      });
    },
    decideMany,
  };
}

/** What both a client and a pipeline offer: the check scripts, whatever they return. */
interface CheckTarget {
  checkClicks(...args: Parameters<RedisClient['checkClicks']>): unknown;
  decideClick(...args: Parameters<RedisClient['decideClick']>): unknown;
}

/** A click's reply as a verdict, or as the error it is (expired, refused by Redis, not understood). */
function verdictOf(reply: CheckClickReply | Error): RecordedVerdict | Error {
  if (reply instanceof Error) return reply;
  try {
    return toVerdict(reply);
  } catch (failure) {
    return failure as Error;
  }
}

function toVerdict(reply: CheckClickReply): RecordedVerdict {
  if (reply[0] === 'expired') throw new ClickExpiredError();
  if (reply[0] === 'error') throw new ReplyError(reply[1]) as Error;
  const [fraudType, ts, streamId, duplicate, allowlisted, reason, shadow, version] = reply as Exclude<CheckClickReply, ['expired' | 'error', string]>;
  if (!isFraudType(fraudType)) throw new Error(`the check answered an unknown fraud type: ${fraudType}`);
  return {
    fraudType,
    ts: Number(ts),
    streamId,
    duplicate: Number(duplicate) === 1,
    allowlisted: Number(allowlisted) === 1,
    reason: reason === '' ? undefined : orderedHit(JSON.parse(reason) as RuleHit),
    shadow: shadow === '' ? [] : (JSON.parse(shadow) as RuleHit[]).map(orderedHit),
    rulesVersion: Number(version),
  };
}
