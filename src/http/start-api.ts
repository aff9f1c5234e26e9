import type { Logger } from 'pino';
import { createApiMetrics, measuredClickStore, type ApiMetrics } from '../metrics.js';
import type { Config } from '../config.js';
import { createApp, type Readiness } from './app.js';
import { listen } from './server.js';
import { ADMIN_PATH } from './admin-routes.js';
import { createAllowlistAdmin } from '../admin/allowlist-admin.js';
import { createBlacklistAdmin } from '../admin/blacklist-admin.js';
import { createRulesAdmin } from '../admin/rules-admin.js';
import { createBlacklistAudit } from '../admin/blacklist-audit.js';
import { openBanRegistry, type BanRegistry } from '../redis/ban-registry.js';
import { keepCuckooFilterReserved, prepareBlacklist, type Blacklist } from '../redis/blacklist.js';
import type { RedisCapabilities } from '../redis/capabilities.js';
import { createClickStore } from '../redis/click-store.js';
import { settledBy } from '../deadline.js';
import { createCommandGate, reconnectWhenHung } from '../redis/command-gate.js';
import { closeRedis, connectRedis, createRedisClient, isCluster, redactedUrl } from '../redis/connection.js';
import { keyspaceFor } from '../redis/keyspace.js';
import { openRuleBook, type RuleBook } from '../redis/rule-store.js';
import { createServerClock, type ServerClock } from '../redis/server-clock.js';
import { prepareCounters } from '../redis/counters.js';
import { prepareOffenders } from '../redis/offenders.js';
import { createDecisionFeed } from '../live/decision-feed.js';
import { createLiveEvents, formatDecisionEvent } from './events-route.js';
import { createStatsReads } from './statistics-reads.js';

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

/** Start-up, readiness, /stats and admin commands wait at least this long for Redis. */
const CONTROL_TIMEOUT_MS = 2000;
/** A click connection on which Redis has answered nothing for this long is dropped and made again. */
const HUNG_RECONNECT_MS = 5000;
/** Of the shutdown time, what is kept for closing the Redis connections after the HTTP drain. */
const REDIS_CLOSE_RESERVE_MS = 500;

export interface ApiService {
  port: number;
  capabilities: RedisCapabilities;
  blacklist: Blacklist;
  /** Event streams open now (the live page). */
  readonly eventStreams: number;
  /**
   * Ends the event streams and stops accepting, finishes in-flight requests, then closes Redis, all
   * by `deadlineMs` (unix ms; default SHUTDOWN_TIMEOUT_MS from now) whatever state Redis is in.
   */
  close(deadlineMs?: number): Promise<void>;
}

/** Connects to Redis, finds what it can do, prepares the blacklist, and serves the API. */
export interface ApiOptions {
  metrics?: ApiMetrics;
  /** What GET /metrics answers (main.ts adds the worker's, or other API processes'). Default: `metrics`. */
  metricsText?: () => Promise<string>;
}

export async function startApi(config: Config, redisUrl: string, logger: Logger, options: ApiOptions = {}): Promise<ApiService> {
  const metrics = options.metrics ?? createApiMetrics();
  const metricsText = options.metricsText ?? (() => metrics.registry.metrics());
  // Start-up, readiness, /stats and the admin API: every command bounded by ioredis' own timeout,
  // longer than a click's, since none of these is on a click's path.
  const { redis, capabilities } = await connectRedis({
    url: redisUrl,
    timeoutMs: Math.max(config.redis.timeoutMs, CONTROL_TIMEOUT_MS),
    connectionName: 'click-fraud-api-control',
    logger,
  });
  // Clicks have a connection of their own, so that no read of statistics queues ahead of them, and
  // no ioredis timeout: the command gate bounds every wait and how many commands are queued.
  const clicksRedis = createRedisClient({ url: redisUrl, timeoutMs: null, connectionName: 'click-fraud-api', logger });
  let registry: BanRegistry | undefined;
  let clock: ServerClock | undefined;
  let stopWatchdog: (() => void) | undefined;
  let ruleBook: RuleBook | undefined;
  // The live feed's follower blocks in XREAD, so it has a connection of its own.
  const follower = createRedisClient({
    url: redisUrl,
    timeoutMs: LIVE_FEED.blockMs + config.redis.timeoutMs,
    connectionName: 'click-fraud-api-live-feed',
    logger,
  });
  try {
    await Promise.all([clicksRedis.connect(), follower.connect()]);
    clock = await createServerClock(clicksRedis, logger);
    const gate = createCommandGate(config.redis.maxInFlight);
    /** Decisions fewer replicas than REDIS_WAIT_REPLICAS acknowledged in time, since start. */
    let unreplicated = 0;
    stopWatchdog = reconnectWhenHung(clicksRedis, gate, HUNG_RECONNECT_MS, logger);
    const cluster = isCluster(redisUrl);
    const keyspace = keyspaceFor(config, cluster);
    const blacklist = await prepareBlacklist(redis, capabilities, config.blacklist);
    keepCuckooFilterReserved(redis, blacklist, config.blacklist, logger);
    const counters = await prepareCounters(redis, capabilities, { ...config.stats, keyspace });
    const offenders = prepareOffenders(capabilities, { ...config.offenders, keyspace });
    ruleBook = await openRuleBook(redis, keyspace.rules, config.rules, logger);
    logBackends(logger, capabilities, blacklist);
    const audit = createBlacklistAudit(redis, blacklist, logger);
    await audit.check();
    const token = config.admin.token;
    registry = token === undefined ? undefined : await openBanRegistry(redisUrl, capabilities, keyspace.bans, config.redis.timeoutMs);
    if (registry) logger.info({ path: ADMIN_PATH, listing: registry.listing }, `admin API on ${ADMIN_PATH} (bearer ADMIN_TOKEN)`);
    else logger.info('admin API off: set ADMIN_TOKEN to manage the blacklist over HTTP');

    const readiness = async (): Promise<Readiness> => {
      const details = {
        redis: { url: redactedUrl(redisUrl), version: capabilities.version, cluster, partitions: keyspace.partitions.length },
        blacklist: { backend: blacklist.backend, key: blacklist.key, add_command: blacklist.addCommand, ...audit.readiness() },
        stats: { backend: counters.backend },
        offenders: { backend: offenders.backend },
        clicks: {
          in_flight: gate.inFlight,
          max_in_flight: config.redis.maxInFlight,
          redis_hung: gate.hung,
          ...(config.redis.waitReplicas ? { wait_replicas: config.redis.waitReplicas.count, unreplicated } : {}),
        },
      };
      try {
        await redis.ping();
        return { ready: !gate.hung, status: gate.hung ? 'redis_not_answering' : 'ready', ...details };
      } catch (error) {
        return { ready: false, status: 'redis_unavailable', error: (error as Error).message, ...details };
      }
    };
    const clicks = measuredClickStore(createClickStore(clicksRedis, clock, gate, {
      keyspace,
      blacklist,
      rules: ruleBook,
      streamMaxLen: config.stream.maxLen,
      timeoutMs: config.redis.timeoutMs,
      lookupFirst: cluster,
      replicas: config.redis.waitReplicas,
      onUnreplicated: () => (unreplicated += 1),
    }), metrics);
    const feed = createDecisionFeed(
      follower,
      redis,
      { streamKeys: keyspace.partitions.map((partition) => partition.stream), format: formatDecisionEvent, ...LIVE_FEED },
      logger,
    );
    const events = createLiveEvents(feed, { maxStreams: config.live.maxEventStreams, ...LIVE_FEED }, logger);
    metrics.countEventStreams(() => events.open);
    const reads = createStatsReads();
    const app = createApp({
      clicks,
      stats: { redis, counters, keyspace, group: config.worker.group, reads },
      offenders: { redis, offenders, reads },
      admin:
        registry && token !== undefined
          ? {
              services: {
                blacklist: createBlacklistAdmin(redis, blacklist, keyspace.lists, registry, audit),
                allowlist: createAllowlistAdmin(redis, keyspace.lists),
                rules: createRulesAdmin(redis, keyspace.rules, config.rules),
              },
              token,
            }
          : undefined,
      readiness,
      events: events.route,
      failMode: config.failMode,
      batchMaxClicks: config.http.batchMaxClicks,
      viewerPassword: config.viewer.password,
      metrics,
      metricsText,
      logger,
    });
    const http = await listen(app, config.http);
    logger.info({ port: http.port, host: config.http.host }, 'click fraud API listening');

    return {
      port: http.port,
      capabilities,
      blacklist,
      get eventStreams() {
        return events.open;
      },
      async close(deadlineMs = Date.now() + config.shutdownTimeoutMs) {
        // Event streams never finish by themselves: end them as the server stops accepting. The
        // feed's follower may be in a blocked read of a hung Redis: it is cut at the deadline.
        const drainedBy = deadlineMs - REDIS_CLOSE_RESERVE_MS;
        await Promise.all([http.close(Math.max(0, drainedBy - Date.now())), settledBy(events.close(), drainedBy)]);
        follower.disconnect();
        clock?.stop();
        stopWatchdog?.();
        ruleBook?.stop();
        await Promise.all([registry?.close(deadlineMs), closeRedis(clicksRedis, deadlineMs), closeRedis(redis, deadlineMs)]);
      },
    };
  } catch (error) {
    clock?.stop();
    stopWatchdog?.();
    ruleBook?.stop();
    await registry?.close(Date.now());
    follower.disconnect();
    clicksRedis.disconnect();
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
