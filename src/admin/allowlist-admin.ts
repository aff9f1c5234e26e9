import { parseRange } from '../domain/ip.js';
import type { RedisClient } from '../redis/connection.js';
import type { ListKeys } from '../redis/keyspace.js';

/** One allowlisted address, range or device, and why. */
export interface AllowEntry {
  kind: 'address' | 'range' | 'device';
  /** A canonical address, a range in CIDR form, or a device id. */
  value: string;
  reason: string;
  /** Unix ms. */
  addedAt: number;
}

export interface AllowPage {
  entries: AllowEntry[];
  /** Where the next page starts; undefined after the last. */
  nextCursor: string | undefined;
}

/** Entries one listing page may hold (HSCAN COUNT is a hint: a page may hold a few more). */
export const ALLOW_PAGE = 200;

/**
 * The allowlist, which wins over every rule: a click from an allowlisted address or range, or of
 * an allowlisted device, is clean (marked `allowlisted`), and still recorded and counted. Kept in
 * the blacklist's slot (see keyspace.ts): addresses and the notes of ranges in one hash (value:
 * why, as JSON), ranges in the lookup structure of includes/ranges.lua, devices in a hash.
 */
export interface AllowlistAdmin {
  /** `value`: an address or range (canonical), or a device id with `kind: 'device'`. True when it replaced an entry. */
  add(kind: 'address' | 'device', value: string, reason: string): Promise<{ entry: AllowEntry; replaced: boolean }>;
  /** True when there was such an entry. */
  remove(kind: 'address' | 'device', value: string): Promise<boolean>;
  /** Addresses and ranges, or devices, a bounded page at a time. */
  list(kind: 'address' | 'device', cursor?: string): Promise<AllowPage>;
}

export function createAllowlistAdmin(redis: RedisClient, lists: ListKeys): AllowlistAdmin {
  const hashOf = (kind: 'address' | 'device') => (kind === 'device' ? lists.allowDevices : lists.allowAddresses);
  const toEntry = (kind: 'address' | 'device', value: string, note: string): AllowEntry => {
    let why: { reason?: string; added_at?: number };
    try {
      why = JSON.parse(note) as typeof why;
    } catch {
      // Added by hand (redis-cli HSET): the value is all there is to say.
      why = { reason: note };
    }
    return { kind: kind === 'device' ? 'device' : value.includes('/') ? 'range' : 'address', value, reason: String(why.reason ?? ''), addedAt: Number(why.added_at ?? 0) };
  };
  return {
    async add(kind, value, reason) {
      const addedAt = Date.now();
      const replaced = (await redis.hset(hashOf(kind), value, JSON.stringify({ reason, added_at: addedAt }))) === 0;
      const range = kind === 'address' ? parseRange(value) : undefined;
      if (range) await redis.addRange(lists.allowRanges, lists.allowRangeLengths, range.member, range.cidr, range.length);
      return { entry: toEntry(kind, value, JSON.stringify({ reason, added_at: addedAt })), replaced };
    },
    async remove(kind, value) {
      const range = kind === 'address' ? parseRange(value) : undefined;
      if (range) await redis.removeRange(lists.allowRanges, lists.allowRangeLengths, range.member, range.length);
      return (await redis.hdel(hashOf(kind), value)) === 1;
    },
    async list(kind, cursor = '0') {
      const [next, flat] = await redis.hscan(hashOf(kind), cursor, 'COUNT', ALLOW_PAGE);
      const entries: AllowEntry[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) entries.push(toEntry(kind, flat[i]!, flat[i + 1]!));
      return { entries, nextCursor: next === '0' ? undefined : next };
    },
  };
}
