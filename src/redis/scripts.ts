import { readdirSync, readFileSync } from 'node:fs';
import type { Result } from 'ioredis';
import type { RedisClient } from './connection.js';

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

const scripts = readdirSync(commandsDir).flatMap((file) => {
  const match = /^(\w+)-(\d+)\.lua$/.exec(file);
  if (!match) return [];
  return [{ name: match[1]!, numberOfKeys: Number(match[2]), lua: withIncludes(readFileSync(new URL(file, commandsDir), 'utf8')) }];
});

export function defineScripts(redis: RedisClient): void {
  for (const { name, numberOfKeys, lua } of scripts) redis.defineCommand(name, { numberOfKeys, lua });
}

export type CheckClickReply = [fraudType: string, ts: string, streamId: string, duplicate: 0 | 1] | [expired: 'expired', ts: string];

/** Raw replies, exactly as the scripts return them; the data-access modules give them types. */
declare module 'ioredis' {
  interface RedisCommander<Context> {
    checkClick(
      blacklistKey: string,
      windowKey: string,
      verdictsKey: string,
      streamKey: string,
      backend: string,
      ip: string,
      deviceId: string,
      transactionId: string,
      threshold: number,
      windowMs: number,
      streamMaxLen: number,
      deadlineMs: number,
    ): Result<CheckClickReply, Context>;
    checkClickListed(
      windowKey: string,
      verdictsKey: string,
      streamKey: string,
      listed: 0 | 1,
      ip: string,
      deviceId: string,
      transactionId: string,
      threshold: number,
      windowMs: number,
      streamMaxLen: number,
      deadlineMs: number,
    ): Result<CheckClickReply, Context>;
    countDecision(
      streamKey: string,
      totalCounterKey: string,
      typeCounterKey: string,
      totalMinutesKey: string,
      typeMinutesKey: string,
      group: string,
      entryId: string,
      backend: string,
      secondMs: number,
      expireAtMs: number,
      minuteMs: number,
      minutesExpireAtMs: number,
    ): Result<0 | 1, Context>;
    unblockIp(blacklistKey: string, backend: string, ip: string): Result<0 | 1, Context>;
    respellBlacklistMember(blacklistKey: string, member: Buffer, canonical: string): Result<0 | 1, Context>;
    expireBans(
      blacklistKey: string,
      byExpiryKey: string,
      byAddedKey: string,
      backend: string,
      entryKeyPrefix: string,
      limit: number,
    ): Result<string[], Context>;
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
