import { pino } from 'pino';
import type { Config } from '../config.js';
import { openBanRegistry } from '../redis/ban-registry.js';
import { prepareBlacklist } from '../redis/blacklist.js';
import { connectRedis, isCluster } from '../redis/connection.js';
import { keyspaceFor } from '../redis/keyspace.js';
import { createAllowlistAdmin, type AllowlistAdmin } from './allowlist-admin.js';
import { createBlacklistAdmin, type BlacklistAdmin } from './blacklist-admin.js';
import { createRulesAdmin, type RulesAdmin } from './rules-admin.js';

/**
 * The blacklist management service straight against a Redis, for tools outside the API (the CLI,
 * the simulator), with the service's own key names from `config`.
 */
export async function openBlacklistAdmin(
  config: Config,
  redisUrl: string,
): Promise<{ admin: BlacklistAdmin; allowlist: AllowlistAdmin; rules: RulesAdmin; close(): Promise<void> }> {
  const logger = pino({ level: 'silent' });
  const { redis, capabilities } = await connectRedis({ url: redisUrl, timeoutMs: Math.max(config.redis.timeoutMs, 5000), connectionName: 'click-fraud-tool', logger });
  try {
    const blacklist = await prepareBlacklist(redis, capabilities, config.blacklist);
    const keyspace = keyspaceFor(config, isCluster(redisUrl));
    const registry = await openBanRegistry(redisUrl, capabilities, keyspace.bans, config.redis.timeoutMs);
    return {
      admin: createBlacklistAdmin(redis, blacklist, keyspace.lists, registry),
      allowlist: createAllowlistAdmin(redis, keyspace.lists),
      rules: createRulesAdmin(redis, keyspace.rules, config.rules),
      async close() {
        await registry.close();
        redis.disconnect();
      },
    };
  } catch (error) {
    redis.disconnect();
    throw error;
  }
}
