import type { Logger } from 'pino';
import type { RedisClient } from './connection.js';
import { canonicalIp } from '../domain/ip.js';
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
  redis: RedisClient,
  capabilities: RedisCapabilities,
  { backend, key, capacity, bucketSize, expansion }: { backend: 'auto' | BlacklistBackend; key: string; capacity: number; bucketSize: number; expansion: number },
): Promise<Blacklist> {
  if (backend === 'cuckoo' && !capabilities.bloom) {
    throw new Error('BLACKLIST_BACKEND=cuckoo needs the RedisBloom module (Redis Stack or Redis 8), which this Redis does not have');
  }
  const type = await redis.type(key);
  if (backend === 'cuckoo' || (backend === 'auto' && capabilities.bloom)) {
    if (type === 'none') await reserveCuckooFilter(redis, key, capacity, bucketSize, expansion);
    else if (type !== CUCKOO_FILTER_TYPE) throw wrongType(key, type, 'a cuckoo filter');
    return { backend: 'cuckoo', key, addCommand: `CF.ADDNX ${key} <ip>` };
  }
  if (type !== 'none' && type !== 'set') throw wrongType(key, type, 'a set');
  return { backend: 'set', key, addCommand: `SADD ${key} <ip>` };
}

/**
 * A Redis that comes back empty (restarted without persistence, or a replica promoted before it had
 * the data) has lost the cuckoo filter, and the next `CF.ADDNX` would create one with RedisBloom's
 * defaults (1,024 addresses a sub-filter) instead of IP_CUCKOO_FILTER_*. So after every reconnect the
 * filter is reserved again where it is missing. Clicks need no filter meanwhile: CF.EXISTS on a
 * missing key answers 0. It watches as long as the client lives.
 */
export function keepCuckooFilterReserved(
  redis: RedisClient,
  blacklist: Blacklist,
  { capacity, bucketSize, expansion }: { capacity: number; bucketSize: number; expansion: number },
  logger: Logger,
): void {
  if (blacklist.backend !== 'cuckoo') return;
  redis.on('ready', () => {
    redis
      .exists(blacklist.key)
      .then(async (exists) => {
        if (exists === 1) return;
        await reserveCuckooFilter(redis, blacklist.key, capacity, bucketSize, expansion);
        logger.warn({ blacklist: blacklist.key, capacity }, `the blacklist filter "${blacklist.key}" was gone (Redis came back empty): reserved it again, empty`);
      })
      .catch((error: Error) => logger.warn({ err: error.message }, `could not check the blacklist filter "${blacklist.key}" after a reconnect`));
  });
}

async function reserveCuckooFilter(redis: RedisClient, key: string, capacity: number, bucketSize: number, expansion: number): Promise<void> {
  try {
    await redis.call('CF.RESERVE', key, capacity, 'BUCKETSIZE', bucketSize, 'EXPANSION', expansion);
  } catch (error) {
    // Another instance starting at the same moment created it first: that is the filter we want.
    if (!(error instanceof Error && /exists/i.test(error.message))) throw error;
  }
}

function wrongType(key: string, type: string, wanted: string): Error {
  return new Error(`Redis key "${key}" holds a ${type}, not ${wanted}: point IP_CUCKOO_FILTER_NAME at another key or delete it`);
}

/** The cuckoo filter refused an address: it is full (EXPANSION 0) or has grown as far as it can. */
export class BlacklistFullError extends Error {
  constructor(key: string, cause: string) {
    super(`the blacklist "${key}" is full (${cause}): remove addresses, or recreate the filter with a larger IP_CUCKOO_FILTER_CAPACITY`);
  }
}

/** Blocks an address; false when it was already blocked (CF.ADDNX / SADD semantics: never twice). */
export async function blockIp(redis: RedisClient, blacklist: Blacklist, ip: string): Promise<boolean> {
  if (blacklist.backend === 'set') return (await redis.sadd(blacklist.key, ip)) === 1;
  try {
    return (await redis.call('CF.ADDNX', blacklist.key, ip)) === 1;
  } catch (error) {
    const message = (error as Error).message;
    if (/filter is full|maximum expansions reached/i.test(message)) throw new BlacklistFullError(blacklist.key, message);
    throw error;
  }
}

/** Unblocks an address; false when it was not blocked. */
export async function unblockIp(redis: RedisClient, blacklist: Blacklist, ip: string): Promise<boolean> {
  return (await redis.unblockIp(blacklist.key, blacklist.backend, ip)) === 1;
}

export async function isBlocked(redis: RedisClient, blacklist: Blacklist, ip: string): Promise<boolean> {
  const reply = blacklist.backend === 'cuckoo' ? await redis.call('CF.EXISTS', blacklist.key, ip) : await redis.sismember(blacklist.key, ip);
  return reply === 1;
}

/**
 * Whether each address is blocked, in one command on the blacklist's node (CF.MEXISTS or
 * SMISMEMBER): the lookup a cluster makes before the device's step.
 */
export async function areBlocked(redis: RedisClient, blacklist: Blacklist, ips: string[]): Promise<boolean[]> {
  if (ips.length === 0) return [];
  const replies = (await redis.call(blacklist.backend === 'cuckoo' ? 'CF.MEXISTS' : 'SMISMEMBER', blacklist.key, ...ips)) as number[];
  return replies.map((reply) => Number(reply) === 1);
}

/** A set member that no lookup ever matches, since lookups use the canonical spelling of an address. */
export interface NonCanonicalEntry {
  /** The member as stored, byte for byte, to replace or remove it by. */
  member: Buffer;
  /** The member as text, for people. */
  raw: string;
  /** The canonical spelling of its address; null for a member that is no address at all. */
  canonical: string | null;
}

export interface NonCanonicalPage {
  entries: NonCanonicalEntry[];
  /** Members looked at. */
  scanned: number;
  /** Where a next look goes on (an SSCAN cursor); undefined once the whole set has been looked at. */
  nextCursor: string | undefined;
}

/** A cuckoo filter holds fingerprints, not addresses: what was added cannot be listed. */
export class NotEnumerableError extends Error {
  constructor(key: string) {
    super(`the blacklist "${key}" is a cuckoo filter, which cannot be listed: add addresses in canonical form (the admin API and the CLI always do)`);
  }
}

/** Members per SSCAN call: a hint, which Redis exceeds for small sets (it answers them whole). */
const SSCAN_COUNT = 1000;

/**
 * Looks through the set blacklist for members that are not the canonical spelling of an address:
 * `SADD ip_cf 2001:DB8::9` or `::ffff:5.6.7.8` blocks nothing, since clicks are looked up as
 * `2001:db8::9` and `5.6.7.8`. Bounded: it stops once it has looked at `maxScanned` members or
 * found `maxFound`, past each by at most one SSCAN reply, and says where to go on.
 */
export async function findNonCanonical(
  redis: RedisClient,
  blacklist: Blacklist,
  { cursor = '0', maxScanned, maxFound }: { cursor?: string; maxScanned: number; maxFound: number },
): Promise<NonCanonicalPage> {
  if (blacklist.backend !== 'set') throw new NotEnumerableError(blacklist.key);
  // SSCAN may answer a member twice; keyed by its bytes.
  const found = new Map<string, NonCanonicalEntry>();
  let scanned = 0;
  let next = cursor;
  do {
    const [after, members] = await redis.sscanBuffer(blacklist.key, next, 'COUNT', SSCAN_COUNT);
    next = after.toString();
    scanned += members.length;
    for (const member of members) {
      const raw = member.toString();
      if (canonicalIp(raw) === raw) continue;
      found.set(member.toString('latin1'), { member, raw, canonical: canonicalIp(raw.trim()) ?? null });
    }
  } while (next !== '0' && scanned < maxScanned && found.size < maxFound);
  return { entries: [...found.values()], scanned, nextCursor: next === '0' ? undefined : next };
}

/** Replaces a member by its canonical spelling (drops one that is no address); false when it was gone. */
export async function respellMember(redis: RedisClient, blacklist: Blacklist, entry: NonCanonicalEntry): Promise<boolean> {
  return (await redis.respellBlacklistMember(blacklist.key, entry.member, entry.canonical ?? '')) === 1;
}
