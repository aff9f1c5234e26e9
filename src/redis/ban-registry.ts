import { createClient } from 'redis';
import { Repository, Schema, type Entity } from 'redis-om';
import { settledBy } from '../deadline.js';
import type { Ban } from '../domain/ban.js';
import type { RedisCapabilities } from './capabilities.js';

/** Key names of the registry, shared with the expiry sweep (expireBans-3.lua). */
export function banKeys(keyPrefix: string) {
  const schemaName = `${keyPrefix}ban`;
  return {
    schemaName,
    /** redis-om keeps the entry of an ip at `<schemaName>:<ip>`. */
    entryPrefix: `${schemaName}:`,
    /** ip scored by expiry (unix ms): drives the sweep, on every server. */
    byExpiry: `${keyPrefix}bans:by_expiry`,
    /** ip scored by time added: the listing where there is no RediSearch. */
    byAdded: `${keyPrefix}bans:by_added`,
  };
}

/** How long a close waits for QUIT's answer: longer means Redis is hung, and only delays the exit. */
const CLOSE_WAIT_MS = 1000;

export interface BanPage {
  bans: Ban[];
  total: number;
}

export interface BanRegistry {
  /** How `list` works on this server. */
  listing: 'redisearch' | 'sorted-set';
  /** Saves or replaces the entry of `ban.ip`; true when there was one before. */
  save(ban: Ban): Promise<boolean>;
  get(ip: string): Promise<Ban | undefined>;
  /** True when there was an entry. */
  remove(ip: string): Promise<boolean>;
  /** Newest first. */
  list(offset: number, limit: number): Promise<BanPage>;
  /** Closes the connection by `deadlineMs` (unix ms), whatever state Redis is in. */
  close(deadlineMs?: number): Promise<void>;
}

interface BanEntity extends Entity {
  ip?: string;
  reason?: string;
  source?: string;
  added_at?: number;
  expires_at?: number;
}

/**
 * The registry of bans: one redis-om entity (a hash) per address, keyed by the canonical ip, so
 * saving and fetching work on any Redis. Listing uses a RediSearch index where the server has it,
 * and a sorted set by time added where it does not. Every ban with an end is also in a sorted set
 * by expiry, which the worker's sweep reads.
 */
export async function openBanRegistry(url: string, capabilities: RedisCapabilities, keyPrefix: string, timeoutMs: number): Promise<BanRegistry> {
  const keys = banKeys(keyPrefix);
  const client = createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: Math.max(timeoutMs, 2000), reconnectStrategy: (attempt) => Math.min(attempt * 100, 2000) },
  });
  // Connection loss is reported by the ioredis clients; commands here fail and answer 503.
  client.on('error', () => {});
  await client.connect();

  const schema = new Schema<BanEntity>(
    keys.schemaName,
    {
      ip: { type: 'string' },
      reason: { type: 'text' },
      source: { type: 'string' },
      added_at: { type: 'number', sortable: true },
      expires_at: { type: 'number', sortable: true },
    },
    { dataStructure: 'HASH' },
  );
  const repository = new Repository(schema, client);
  const listing = capabilities.search ? 'redisearch' : 'sorted-set';
  if (listing === 'redisearch') await repository.createIndex();

  const get = async (ip: string): Promise<Ban | undefined> => toBan(await repository.fetch(ip));

  return {
    listing,
    async save(ban) {
      const existed = (await client.exists(`${keys.entryPrefix}${ban.ip}`)) === 1;
      // The sweep's index first: a ban with an end must never be left without a way to end it.
      if (ban.expiresAt === null) await client.zRem(keys.byExpiry, ban.ip);
      else await client.zAdd(keys.byExpiry, { score: ban.expiresAt, value: ban.ip });
      await repository.save(ban.ip, {
        ip: ban.ip,
        reason: ban.reason,
        source: ban.source,
        added_at: ban.addedAt,
        ...(ban.expiresAt === null ? {} : { expires_at: ban.expiresAt }),
      });
      if (listing === 'sorted-set') await client.zAdd(keys.byAdded, { score: ban.addedAt, value: ban.ip });
      return existed;
    },
    get,
    async remove(ip) {
      const existed = (await client.exists(`${keys.entryPrefix}${ip}`)) === 1;
      await repository.remove(ip);
      await client.zRem(keys.byExpiry, ip);
      await client.zRem(keys.byAdded, ip);
      return existed;
    },
    async list(offset, limit) {
      if (listing === 'redisearch') {
        const search = repository.search().sortDescending('added_at');
        const [entities, total] = await Promise.all([search.return.page(offset, limit), repository.search().return.count()]);
        return { bans: entities.map(toBan).filter((ban): ban is Ban => ban !== undefined), total };
      }
      const [ips, total] = await Promise.all([
        client.zRange(keys.byAdded, '+inf', '-inf', { BY: 'SCORE', REV: true, LIMIT: { offset, count: limit } }),
        client.zCard(keys.byAdded),
      ]);
      const bans = await Promise.all(ips.map(get));
      return { bans: bans.filter((ban): ban is Ban => ban !== undefined), total };
    },
    async close(deadlineMs = Date.now() + CLOSE_WAIT_MS) {
      // QUIT waits for a connection that is away (it would reconnect first): cut it instead.
      if (client.isReady) await settledBy(client.quit(), Math.min(deadlineMs, Date.now() + CLOSE_WAIT_MS));
      if (client.isOpen) await client.disconnect().catch(() => {});
    },
  };
}

/** An entity fetched for an id with no entry comes back with no fields. */
function toBan(entity: BanEntity): Ban | undefined {
  if (entity.ip === undefined) return undefined;
  return {
    ip: entity.ip,
    reason: entity.reason ?? '',
    source: entity.source ?? '',
    addedAt: entity.added_at ?? 0,
    expiresAt: entity.expires_at ?? null,
  };
}
