import { ReplyError } from 'ioredis';
import type { Logger } from 'pino';
import type { Blacklist } from '../redis/blacklist.js';
import type { RedisClient } from '../redis/connection.js';
import type { BanKeys, ListKeys } from '../redis/keyspace.js';

export interface BanSweeper {
  stop(): Promise<void>;
}

/** Bans ended per script call; a backlog is worked through in a few calls per sweep. */
const BANS_PER_CALL = 100;
const CALLS_PER_SWEEP = 10;

/**
 * Every `intervalMs`, ends the temporary bans that are due (expireBans-5.lua: out of the blacklist
 * and the registry in one step). Several workers may sweep at once; each ban ends once.
 */
export function startBanSweeper(redis: RedisClient, blacklist: Blacklist, keys: BanKeys, lists: ListKeys, intervalMs: number, logger: Logger): BanSweeper {
  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<void> = Promise.resolve();
  let failing = false;
  let stopped = false;

  async function sweep(): Promise<void> {
    try {
      for (let call = 0; call < CALLS_PER_SWEEP; call++) {
        const ended = await redis.expireBans(
          blacklist.key,
          keys.byExpiry,
          keys.byAdded,
          lists.blacklistRanges,
          lists.blacklistRangeLengths,
          blacklist.backend,
          keys.entryPrefix,
          BANS_PER_CALL,
        );
        if (ended.length > 0) logger.info({ ips: ended }, 'temporary bans ended');
        if (ended.length < BANS_PER_CALL) break;
      }
      failing = false;
    } catch (error) {
      if (!failing) {
        // Redis answering an error (a blacklist key of the wrong type, say) is not a lost connection.
        if (error instanceof ReplyError) logger.error({ err: (error as Error).message }, 'Redis refused to end temporary bans; retrying');
        else logger.warn({ err: (error as Error).message }, 'cannot reach Redis to end temporary bans; retrying');
      }
      failing = true;
    }
  }

  const schedule = () => {
    timer = setTimeout(() => {
      sweeping = sweep().then(() => {
        if (!stopped) schedule();
      });
    }, intervalMs);
  };
  schedule();

  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await sweeping;
    },
  };
}
