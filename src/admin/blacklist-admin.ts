import type { RedisClient } from '../redis/connection.js';
import type { Ban, BanRequest } from '../domain/ban.js';
import { canonicalAddressOrRange, parseRange } from '../domain/ip.js';
import type { ListKeys } from '../redis/keyspace.js';
import type { BanPage, BanRegistry } from '../redis/ban-registry.js';
import { blockIp, findNonCanonical, isBlocked, respellMember, unblockIp, type Blacklist, type NonCanonicalPage } from '../redis/blacklist.js';
import { NON_CANONICAL_SCAN, type BlacklistAudit } from './blacklist-audit.js';

export interface BanStatus {
  ip: string;
  /** In the blacklist the click check reads (for a cuckoo filter: as the filter reports it). */
  blocked: boolean;
  /** Null for an address blocked without the registry, with redis-cli say. */
  entry: Ban | null;
}

export interface ImportReport {
  added: number;
  alreadyPresent: number;
  invalid: number;
  /** The first invalid lines, by line number. */
  invalidLines: Array<{ line: number; text: string }>;
}

/** Invalid lines an import reports one by one; past this it only counts them. */
const MAX_INVALID_LINES_LISTED = 100;

export interface BlacklistAdmin {
  /** Blocks `request.ip` (an address or a range) and records why; a second add replaces the record but blocks once. */
  add(request: BanRequest, source: string): Promise<{ ban: Ban; alreadyBlocked: boolean; replaced: boolean }>;
  /**
   * Unblocks and forgets an address, registry entry or not. On the set blacklist, `spelling`, the
   * address as the caller wrote it, is taken out too when it is not the canonical one: an entry
   * added with redis-cli as `2001:DB8::9` is removed by naming it so. `spellingRemoved` is only
   * given then.
   */
  remove(ip: string, spelling?: string): Promise<{ unblocked: boolean; entryRemoved: boolean; spellingRemoved?: boolean }>;
  status(ip: string): Promise<BanStatus>;
  list(offset: number, limit: number): Promise<BanPage>;
  /**
   * Set blacklist members that block nothing because they are not canonical, one bounded page from
   * `cursor` on (NON_CANONICAL_SCAN). Throws NotEnumerableError on a cuckoo filter.
   */
  nonCanonical(cursor?: string): Promise<NonCanonicalPage>;
  /** Replaces the members of such a page by their canonical spelling (drops those that are no address); answers those replaced. */
  fixNonCanonical(cursor?: string): Promise<NonCanonicalPage>;
  /** Blocks every address or range of a list, one per line (blank lines and `#` comments skipped). */
  importLines(lines: AsyncIterable<string>, ban: { reason: string; ttl?: number; source: string }): Promise<ImportReport>;
}

/**
 * Blacklist management, the same for the admin API and the CLI. The blacklist the click check
 * reads (cuckoo filter or set) decides; the registry says why. Writes go registry first, so that a
 * temporary ban is always known to the expiry sweep before it blocks anything.
 */
export function createBlacklistAdmin(redis: RedisClient, blacklist: Blacklist, lists: ListKeys, registry: BanRegistry, audit?: BlacklistAudit): BlacklistAdmin {
  /** Blocks an address or a range; false when it already was. */
  const block = async (ip: string) => {
    const range = parseRange(ip);
    if (range) return (await redis.addRange(lists.blacklistRanges, lists.blacklistRangeLengths, range.member, range.cidr, range.length)) === 1;
    return blockIp(redis, blacklist, ip);
  };
  const unblock = async (ip: string) => {
    const range = parseRange(ip);
    if (range) return (await redis.removeRange(lists.blacklistRanges, lists.blacklistRangeLengths, range.member, range.length)) === 1;
    return unblockIp(redis, blacklist, ip);
  };
  const blocked = async (ip: string) => {
    const range = parseRange(ip);
    if (range) return (await redis.hexists(lists.blacklistRanges, range.member)) === 1;
    return isBlocked(redis, blacklist, ip);
  };

  /** The Redis clock, as the sweep that ends bans uses it. */
  const now = async () => {
    const [seconds, micros] = await redis.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  };

  async function add(request: BanRequest, source: string) {
    const addedAt = await now();
    const ban: Ban = {
      ip: request.ip,
      reason: request.reason,
      source: request.source ?? source,
      addedAt,
      expiresAt: request.ttl === undefined ? null : addedAt + request.ttl * 1000,
    };
    const replaced = await registry.save(ban);
    const alreadyBlocked = !(await block(ban.ip));
    return { ban, alreadyBlocked, replaced };
  }

  return {
    add,
    async remove(ip, spelling) {
      const unblocked = await unblock(ip);
      const entryRemoved = await registry.remove(ip);
      // Only from the exact set: a cuckoo filter reports some spellings nobody added (false
      // positives), and deleting one of those would delete another address's fingerprint.
      if (spelling === undefined || spelling === ip || blacklist.backend !== 'set') return { unblocked, entryRemoved };
      const spellingRemoved = await unblockIp(redis, blacklist, spelling);
      // What /readyz says about such entries is kept true for this process.
      if (spellingRemoved) await audit?.check();
      return { unblocked, entryRemoved, spellingRemoved };
    },
    nonCanonical: (cursor) => findNonCanonical(redis, blacklist, { ...NON_CANONICAL_SCAN, cursor }),
    async fixNonCanonical(cursor) {
      const page = await findNonCanonical(redis, blacklist, { ...NON_CANONICAL_SCAN, cursor });
      const fixed = [];
      for (const entry of page.entries) if (await respellMember(redis, blacklist, entry)) fixed.push(entry);
      if (fixed.length > 0) await audit?.check();
      return { ...page, entries: fixed };
    },
    async status(ip) {
      const [isIn, entry] = await Promise.all([blocked(ip), registry.get(ip)]);
      return { ip, blocked: isIn, entry: entry ?? null };
    },
    list: (offset, limit) => registry.list(offset, limit),
    async importLines(lines, { reason, ttl, source }) {
      const report: ImportReport = { added: 0, alreadyPresent: 0, invalid: 0, invalidLines: [] };
      let number = 0;
      for await (const raw of lines) {
        number += 1;
        const text = raw.trim();
        if (text === '' || text.startsWith('#')) continue;
        const ip = canonicalAddressOrRange(text);
        if (ip === undefined) {
          report.invalid += 1;
          if (report.invalidLines.length < MAX_INVALID_LINES_LISTED) report.invalidLines.push({ line: number, text: text.slice(0, 100) });
        } else if (await blocked(ip)) {
          report.alreadyPresent += 1;
        } else {
          await add({ ip, reason, ...(ttl === undefined ? {} : { ttl }) }, source);
          report.added += 1;
        }
      }
      return report;
    },
  };
}
