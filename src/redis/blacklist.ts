import type { Redis } from 'ioredis';
import type { RedisCapabilities } from './capabilities.js';

export type BlacklistBackend = 'cuckoo' | 'set';

export interface Blacklist {
  backend: BlacklistBackend;
  key: string;
  /** The redis-cli command an operator types to block an address on this backend. */
  addCommand: string;
}

/** What `TYPE` answers for a RedisBloom cuckoo filter. */
const CUCKOO_FILTER_TYPE = 'MBbloomCF';

/**
 * Picks the blacklist for this server and makes sure its key is usable: a cuckoo filter where
 * RedisBloom is loaded (created with CF.RESERVE when missing), otherwise an exact set under the
 * same name; `backend` may force either. A key of another type is refused rather than silently
 * ignored, since every click would then fail or, worse, never be blocked.
 */
export async function prepareBlacklist(
  redis: Redis,
  capabilities: RedisCapabilities,
  { backend, key, capacity }: { backend: 'auto' | BlacklistBackend; key: string; capacity: number },
): Promise<Blacklist> {
  if (backend === 'cuckoo' && !capabilities.bloom) {
    throw new Error('BLACKLIST_BACKEND=cuckoo needs the RedisBloom module (Redis Stack or Redis 8), which this Redis does not have');
  }
  const type = await redis.type(key);
  if (backend === 'cuckoo' || (backend === 'auto' && capabilities.bloom)) {
    if (type === 'none') await reserveCuckooFilter(redis, key, capacity);
    else if (type !== CUCKOO_FILTER_TYPE) throw wrongType(key, type, 'a cuckoo filter');
    return { backend: 'cuckoo', key, addCommand: `CF.ADDNX ${key} <ip>` };
  }
  if (type !== 'none' && type !== 'set') throw wrongType(key, type, 'a set');
  return { backend: 'set', key, addCommand: `SADD ${key} <ip>` };
}

async function reserveCuckooFilter(redis: Redis, key: string, capacity: number): Promise<void> {
  try {
    await redis.call('CF.RESERVE', key, capacity);
  } catch (error) {
    // Another instance starting at the same moment created it first: that is the filter we want.
    if (!(error instanceof Error && /exists/i.test(error.message))) throw error;
  }
}

function wrongType(key: string, type: string, wanted: string): Error {
  return new Error(`Redis key "${key}" holds a ${type}, not ${wanted}: point IP_CUCKOO_FILTER_NAME at another key or delete it`);
}
