import { readdirSync, readFileSync } from 'node:fs';
import type { Result } from 'ioredis';
import type { RedisClient } from './connection.js';
import type { RuleArgs } from './rule-store.js';

/**
 * Every Lua script lives in `commands/<name>-<number of keys>.lua`. Code two scripts share lives in
 * `commands/includes/<name>.lua` and is pulled in with a `--- @include "<name>"` line (as BullMQ
 * does), since Redis itself has no includes. They are read once, and each client gets them as
 * ioredis custom commands, which run by EVALSHA (falling back to EVAL once after a server restart
 * flushed the script cache) and work inside pipelines, on a single Redis and on a cluster.
 */
const commandsDir = new URL('./commands/', import.meta.url);
const includesDir = new URL('./includes/', commandsDir);

function withIncludes(lua: string): string {
  return lua.replace(/^--- @include "(\w+)"$/gm, (_, name: string) => readFileSync(new URL(`${name}.lua`, includesDir), 'utf8'));
}

/** `<name>-<N>.lua` takes N keys; `<name>.lua` a number of keys its caller passes first. */
const scripts = readdirSync(commandsDir).flatMap((file) => {
  const match = /^(\w+?)(?:-(\d+))?\.lua$/.exec(file);
  if (!match) return [];
  const numberOfKeys = match[2] === undefined ? undefined : Number(match[2]);
  return [{ name: match[1]!, numberOfKeys, lua: withIncludes(readFileSync(new URL(file, commandsDir), 'utf8')) }];
});

/**
 * Scripts whose callers pass the number of keys first. A cluster client must not auto-pipeline
 * them: it picks a command's node by its first argument, here that number, not a key.
 */
export const SCRIPTS_WITH_KEY_COUNT = scripts.filter((script) => script.numberOfKeys === undefined).map((script) => script.name);

export function defineScripts(redis: RedisClient): void {
  for (const { name, numberOfKeys, lua } of scripts) redis.defineCommand(name, numberOfKeys === undefined ? { lua } : { numberOfKeys, lua });
}

/** The blacklist, its ranges and the allowlist, in lookupAddresses-7.lua's (and checkClicks.lua's) order. */
export type ListKeysArgs = [
  blacklist: string,
  blacklistRanges: string,
  blacklistRangeLengths: string,
  allowAddresses: string,
  allowRanges: string,
  allowRangeLengths: string,
  allowDevices: string,
];

/** decide_click's reply (includes/decideClick.lua), or checkClicks' for a click Redis refused. */
export type CheckClickReply =
  | [fraudType: string, ts: string, streamId: string, duplicate: 0 | 1, allowlisted: 0 | 1, reason: string, shadow: string, rulesVersion: string]
  | [expired: 'expired', ts: string]
  | [error: 'error', message: string];

/** Raw replies, exactly as the scripts return them; the data-access modules give them types. */
declare module 'ioredis' {
  interface RedisCommander<Context> {
    /**
     * A single Redis: see checkClicks.lua. The number of keys (7 + 5 per click), the list keys,
     * each click's 5 keys, the shared arguments, then each click's 4 arguments.
     */
    checkClicks(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Result<CheckClickReply[], Context>;
    /** A cluster, the blacklist's slot: see lookupAddresses-7.lua. Per click: listed, range, allowlisted. */
    lookupAddresses(...keysThenArgs: [...keys: ListKeysArgs, backend: string, ...rules: RuleArgs, ...perClick: string[]]): Result<Array<string | number>, Context>;
    /** A cluster, the address's slot: see recordAddress-2.lua. */
    recordAddress(...keysThenArgs: [clicksKey: string, devicesKey: string, deviceId: string, transactionId: string, ...rules: RuleArgs, deadlineMs: number]): Result<[number, number] | ['expired'], Context>;
    /** A cluster, the device's partition: see decideClick-3.lua. */
    decideClick(
      ...keysThenArgs: [
        windowKey: string,
        verdictsKey: string,
        streamKey: string,
        ip: string,
        deviceId: string,
        transactionId: string,
        ...rules: RuleArgs,
        streamMaxLen: number,
        deadlineMs: number,
        listed: 0 | 1,
        range: string,
        allowlisted: 0 | 1,
        addressClicks: number,
        addressDevices: number,
      ]
    ): Result<CheckClickReply, Context>;
    /** See countDecisions.lua: the number of keys, the keys, then the arguments. Answers how many it counted. */
    countDecisions(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Result<number, Context>;
    /** See readOffenders.lua: the number of keys, the keys, then the arguments. */
    readOffenders(numberOfKeys: number, ...keysThenArgs: Array<string | number>): Result<unknown, Context>;
    unblockIp(blacklistKey: string, backend: string, ip: string): Result<0 | 1, Context>;
    respellBlacklistMember(blacklistKey: string, member: Buffer, canonical: string): Result<0 | 1, Context>;
    expireBans(
      blacklistKey: string,
      byExpiryKey: string,
      byAddedKey: string,
      rangesKey: string,
      rangeLengthsKey: string,
      backend: string,
      entryKeyPrefix: string,
      limit: number,
    ): Result<string[], Context>;
    addRange(rangesKey: string, rangeLengthsKey: string, member: string, cidr: string, length: string): Result<0 | 1, Context>;
    removeRange(rangesKey: string, rangeLengthsKey: string, member: string, length: string): Result<0 | 1, Context>;
    deadLetter(
      streamKey: string,
      deadLetterKey: string,
      group: string,
      entryId: string,
      reason: string,
      deliveries: number,
      maxLen: number,
      ...fields: string[]
    ): Result<0 | 1, Context>;
  }
}
