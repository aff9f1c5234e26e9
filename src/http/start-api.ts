import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { createApp, type Readiness } from './app.js';
import { listen } from './server.js';
import { ADMIN_PATH } from './admin-routes.js';
import { createBlacklistAdmin } from '../admin/blacklist-admin.js';
import { createBlacklistAudit } from '../admin/blacklist-audit.js';
import { openBanRegistry, type BanRegistry } from '../redis/ban-registry.js';
import { prepareBlacklist, type Blacklist } from '../redis/blacklist.js';
import type { RedisCapabilities } from '../redis/capabilities.js';
import { createClickStore } from '../redis/click-store.js';
import { connectRedis, createRedisClient, redactedUrl } from '../redis/connection.js';
import { prepareCounters } from '../redis/counters.js';
import { createDecisionFeed } from '../live/decision-feed.js';
import { createLiveEvents, formatDecisionEvent } from './events-route.js';

/** How the live feed reads the stream and serves its event streams; the limit on streams is a setting. */
const LIVE_FEED = {
  /** One XREAD waits this long for new decisions, so the follower notices within it that its last page left. */
  blockMs: 2000,
  pageSize: 500,
  /** A page that reconnects after missing more than this is told what it missed instead of sent it all. */
  maxReplay: 10_000,
  maxQueued: 10_000,
  heartbeatMs: 15_000,
  retryMs: 2000,
  maxUnsentBytes: 1024 * 1024,
};

export interface ApiService {
  port: number;
  redis: Redis;
  capabilities: RedisCapabilities;
  blacklist: Blacklist;
  /** Event streams open now (the live page). */
  readonly eventStreams: number;
  /** Ends the event streams and stops accepting, finishes in-flight requests, then closes Redis. */
  close(): Promise<void>;
}

/** Connects to Redis, finds what it can do, prepares the blacklist, and serves the API. */
export async function startApi(config: Config, redisUrl: string, logger: Logger): Promise<ApiService> {
  const { redis, capabilities } = await connectRedis({
    url: redisUrl,
    timeoutMs: config.redis.timeoutMs,
    connectionName: 'click-fraud-api',
    logger,
  });
  let registry: BanRegistry | undefined;
  // The live feed's follower blocks in XREAD, so it has a connection of its own.
  const follower = createRedisClient({
    url: redisUrl,
    timeoutMs: LIVE_FEED.blockMs + config.redis.timeoutMs,
    connectionName: 'click-fraud-api-live-feed',
    logger,
  });
  try {
    await follower.connect();
    const blacklist = await prepareBlacklist(redis, capabilities, config.blacklist);
    const counters = await prepareCounters(redis, capabilities, { ...config.stats, keyPrefix: config.keyPrefix });
    logBackends(logger, capabilities, blacklist);
    const audit = createBlacklistAudit(redis, blacklist, logger);
    await audit.check();
    const token = config.admin.token;
    registry = token === undefined ? undefined : await openBanRegistry(redisUrl, capabilities, config.keyPrefix, config.redis.timeoutMs);
    if (registry) logger.info({ path: ADMIN_PATH, listing: registry.listing }, `admin API on ${ADMIN_PATH} (bearer ADMIN_TOKEN)`);
    else logger.info('admin API off: set ADMIN_TOKEN to manage the blacklist over HTTP');

    const readiness = async (): Promise<Readiness> => {
      const details = {
        redis: { url: redactedUrl(redisUrl), version: capabilities.version },
        blacklist: { backend: blacklist.backend, key: blacklist.key, add_command: blacklist.addCommand, ...audit.readiness() },
        stats: { backend: counters.backend },
      };
      try {
        await redis.ping();
        return { ready: true, status: 'ready', ...details };
      } catch (error) {
        return { ready: false, status: 'redis_unavailable', error: (error as Error).message, ...details };
      }
    };
    const clicks = createClickStore(redis, {
      blacklist,
      keyPrefix: config.keyPrefix,
      clickSpam: config.clickSpam,
      stream: config.stream,
    });
    const feed = createDecisionFeed(follower, redis, { streamKey: config.stream.key, format: formatDecisionEvent, ...LIVE_FEED }, logger);
    const events = createLiveEvents(feed, { maxStreams: config.live.maxEventStreams, ...LIVE_FEED }, logger);
    const app = createApp({
      clicks,
      stats: { redis, counters, stream: { key: config.stream.key, group: config.worker.group, deadLetterKey: config.worker.deadLetterKey } },
      admin: registry && token !== undefined ? { blacklist: createBlacklistAdmin(redis, blacklist, registry, audit), token } : undefined,
      readiness,
      events: events.route,
      failMode: config.failMode,
      batchMaxClicks: config.http.batchMaxClicks,
      viewerPassword: config.viewer.password,
      logger,
    });
    const http = await listen(app, config.http);
    logger.info({ port: http.port, host: config.http.host }, 'click fraud API listening');

    return {
      port: http.port,
      redis,
      capabilities,
      blacklist,
      get eventStreams() {
        return events.open;
      },
      async close() {
        // Event streams never finish by themselves: end them as the server stops accepting.
        await Promise.all([http.close(config.shutdownTimeoutMs), events.close()]);
        await registry?.close();
        await redis.quit().catch(() => redis.disconnect());
      },
    };
  } catch (error) {
    await registry?.close();
    follower.disconnect();
    redis.disconnect();
    throw error;
  }
}

function logBackends(logger: Logger, capabilities: RedisCapabilities, blacklist: Blacklist): void {
  if (blacklist.backend === 'cuckoo') {
    logger.info(
      { redisVersion: capabilities.version, blacklist: blacklist.key },
      `IP blacklist: cuckoo filter "${blacklist.key}" (RedisBloom); block an address with: redis-cli ${blacklist.addCommand}`,
    );
  } else if (capabilities.bloom) {
    logger.info(
      { redisVersion: capabilities.version, blacklist: blacklist.key },
      `IP blacklist: the exact set "${blacklist.key}" (BLACKLIST_BACKEND=set); block an address with: redis-cli ${blacklist.addCommand}`,
    );
  } else {
    logger.warn(
      { redisVersion: capabilities.version, blacklist: blacklist.key },
      `IP blacklist: RedisBloom is not available on this Redis, so the blacklist is the exact set "${blacklist.key}"; block an address with: redis-cli ${blacklist.addCommand}`,
    );
  }
}
