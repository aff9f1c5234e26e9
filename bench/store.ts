/**
 * The service's own check, opened as the API opens it (ClickStore, its keyspace and rule set), for
 * the ceilings measured without HTTP: they follow the scripts and their arguments as those change.
 */
import { pino } from 'pino';
import { parseConfig } from '../src/config.js';
import type { Blacklist } from '../src/redis/blacklist.js';
import { createClickStore, type ClickStore } from '../src/redis/click-store.js';
import { createCommandGate } from '../src/redis/command-gate.js';
import { createRedisClient, isCluster, type RedisClient } from '../src/redis/connection.js';
import { keyspaceFor, type Keyspace } from '../src/redis/keyspace.js';
import { openRuleBook, type RuleBook } from '../src/redis/rule-store.js';
import { createServerClock } from '../src/redis/server-clock.js';
import type { ListKeysArgs } from '../src/redis/scripts.js';
import { hasBloom } from './redis-figures.js';

export interface OpenStore {
  store: ClickStore;
  redis: RedisClient;
  keyspace: Keyspace;
  rules: RuleBook;
  blacklist: Blacklist;
  /** The blacklist and its lists, in the order the lookups take them (see click-store.ts). */
  listKeys: ListKeysArgs;
  close(): void;
}

/** `env`: the API's settings, REDIS_URL or REDIS_CLUSTER_NODES among them. */
export async function openStore(env: Record<string, string>): Promise<OpenStore> {
  const silent = pino({ level: 'silent' });
  const parsed = parseConfig(env);
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  const { config } = parsed;
  const { url } = config.redis;
  if (url === undefined) throw new Error('openStore needs REDIS_URL or REDIS_CLUSTER_NODES');
  const cluster = isCluster(url);
  const redis = createRedisClient({ url, timeoutMs: 60_000, connectionName: 'bench', logger: silent });
  await redis.connect();
  const keyspace = keyspaceFor(config, cluster);
  const clock = await createServerClock(redis, silent);
  const rules = await openRuleBook(redis, keyspace.rules, config.rules, silent);
  const blacklist: Blacklist = { backend: (await hasBloom(redis)) ? 'cuckoo' : 'set', key: keyspace.blacklist, addCommand: '' };
  const { lists } = keyspace;
  return {
    store: createClickStore(redis, clock, createCommandGate(1_000_000), {
      keyspace,
      blacklist,
      rules,
      streamMaxLen: config.stream.maxLen,
      timeoutMs: 60_000,
      lookupFirst: cluster,
      replicas: undefined,
      onUnreplicated: () => {},
    }),
    redis,
    keyspace,
    rules,
    blacklist,
    listKeys: [keyspace.blacklist, lists.blacklistRanges, lists.blacklistRangeLengths, lists.allowAddresses, lists.allowRanges, lists.allowRangeLengths, lists.allowDevices],
    close() {
      rules.stop();
      clock.stop();
      redis.disconnect();
    },
  };
}
