import { createClient, createCluster } from 'redis';
import { Repository, Schema, type Entity } from 'redis-om';
import { settledBy } from '../deadline.js';
import type { Ban } from '../domain/ban.js';
import { parseRange } from '../domain/ip.js';
import type { RedisCapabilities } from './capabilities.js';
import { parseRedisAddress } from './connection.js';
import type { BanKeys } from './keyspace.js';

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
  /** A range's member and prefix length in the ranges hash, which the expiry sweep removes it by (expireBans-5.lua). */
  range_member?: string;
  range_length?: string;
}

/**
 * The registry of bans: one redis-om entity (a hash) per address, keyed by the canonical ip, so
 * saving and fetching work on any Redis. Listing uses a RediSearch index where a single server has
 * it, and a sorted set by time added elsewhere (on an OSS cluster a RediSearch index answers only
 * for its own shard). Every ban with an end is also in a sorted set by expiry, which the worker's
 * sweep reads. On a cluster all of it shares the blacklist's slot (see keyspace.ts).
 */
export async function openBanRegistry(url: string, capabilities: RedisCapabilities, keys: BanKeys, timeoutMs: number): Promise<BanRegistry> {
  const address = parseRedisAddress(url);
  const socket = { connectTimeout: Math.max(timeoutMs, 2000), reconnectStrategy: (attempt: number) => Math.min(attempt * 100, 2000) };
  const client =
    address.kind === 'single'
      ? createClient({ url: address.url, disableOfflineQueue: true, socket })
      : createCluster({
          rootNodes: address.nodes.map(({ host, port }) => ({ url: `${address.tls ? 'rediss' : 'redis'}://${host}:${port}` })),
          defaults: {
            disableOfflineQueue: true,
            socket: { ...socket, ...(address.tls ? { tls: true } : {}) },
            ...(address.username ? { username: address.username } : {}),
            ...(address.password ? { password: address.password } : {}),
          },
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
      range_member: { type: 'string' },
      range_length: { type: 'string' },
    },
    { dataStructure: 'HASH' },
  );
  const repository = new Repository(schema, client);
  const listing = capabilities.search && address.kind === 'single' ? 'redisearch' : 'sorted-set';
  if (listing === 'redisearch') await repository.createIndex();

  const get = async (ip: string): Promise<Ban | undefined> => toBan(await repository.fetch(ip));

  return {
    listing,
    async save(ban) {
      const range = parseRange(ban.ip);
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
        ...(range ? { range_member: range.member, range_length: range.length } : {}),
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
      // (A cluster client has no such flag: QUIT, bounded the same way.)
      const ready = 'isReady' in client ? client.isReady : true;
      if (ready) await settledBy(client.quit(), Math.min(deadlineMs, Date.now() + CLOSE_WAIT_MS));
      await client.disconnect().catch(() => {});
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
