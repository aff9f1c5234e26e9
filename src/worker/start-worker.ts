import { hostname } from 'node:os';
import { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { settledBy } from '../deadline.js';
import type { WorkerMetrics } from '../metrics.js';
import { closeRedis, connectRedis, isCluster, type RedisClient } from '../redis/connection.js';
import { keepTimeSeriesClusterTold, prepareCounters, type Counters } from '../redis/counters.js';
import { prepareBlacklist } from '../redis/blacklist.js';
import { keyspaceFor } from '../redis/keyspace.js';
import { prepareOffenders, type Offenders } from '../redis/offenders.js';
import { startBanSweeper } from './ban-sweeper.js';
import { createStreamWorker } from './stream-worker.js';

export interface WorkerService {
  consumer: string;
  counters: Counters;
  offenders: Offenders;
  /** Finishes the batch in hand, then closes Redis, by `deadlineMs` (unix ms) whatever state Redis is in. */
  close(deadlineMs?: number): Promise<void>;
}

/**
 * Connects its own Redis client (its reads block), prepares the counters, and starts counting every
 * partition of the decisions; also ends temporary bans on time, on a second connection.
 */
export async function startWorker(config: Config, redisUrl: string, logger: Logger, metrics?: WorkerMetrics): Promise<WorkerService> {
  const consumer = config.worker.consumer ?? `${hostname()}-${process.pid}`;
  const { redis, capabilities } = await connectRedis({
    url: redisUrl,
    // A blocked read legitimately takes up to WORKER_BLOCK_MS.
    timeoutMs: config.worker.blockMs + config.redis.timeoutMs,
    connectionName: `click-fraud-worker:${consumer}`,
    logger,
  });
  let sweeperRedis: RedisClient | undefined;
  try {
    const keyspace = keyspaceFor(config, isCluster(redisUrl));
    const counters = await prepareCounters(redis, capabilities, { ...config.stats, keyspace });
    const offenders = prepareOffenders(capabilities, { ...config.offenders, keyspace });
    const blacklist = await prepareBlacklist(redis, capabilities, config.blacklist);
    // Its own connection: the worker's spends most of its time in a blocked read.
    sweeperRedis = (await connectRedis({ url: redisUrl, timeoutMs: config.redis.timeoutMs, connectionName: `click-fraud-sweeper:${consumer}`, logger })).redis;
    const sweeper = startBanSweeper(sweeperRedis, blacklist, keyspace.bans, keyspace.lists, config.admin.banSweepIntervalMs, logger.child({ worker: consumer }));
    // One loop per partition on the one connection: a blocked read would hold it, so only a single
    // partition blocks.
    const blocking = keyspace.partitions.length === 1;
    const workers = keyspace.partitions.map((partition) =>
      createStreamWorker(
        redis,
        counters,
        offenders,
        { ...config.worker, partition, maxLen: config.stream.maxLen, consumer, blocking, ...(metrics ? { metrics } : {}) },
        logger.child({ worker: consumer, ...(keyspace.partitions.length > 1 ? { partition: partition.index } : {}) }),
      ),
    );
    const running = Promise.all(workers.map((worker) => worker.run()));
    const stopTelling = counters.backend === 'timeseries' && redis instanceof Cluster ? keepTimeSeriesClusterTold(redis, logger) : () => {};
    logger.info(
      { streams: keyspace.partitions.map((partition) => partition.stream), group: config.worker.group, consumer, counters: counters.backend, offenders: offenders.backend },
      counters.backend === 'timeseries'
        ? `stream worker counting ${keyspace.partitions.length} partition(s) of decisions into RedisTimeSeries series "${config.keyPrefix}ts:*"`
        : `stream worker counting ${keyspace.partitions.length} partition(s) of decisions into plain Redis hashes "${config.keyPrefix}counts:*" (${capabilities.timeseries ? 'STATS_BACKEND=hash' : 'RedisTimeSeries is not available on this Redis'})`,
    );
    return {
      consumer,
      counters,
      offenders,
      async close(deadlineMs = Date.now() + config.shutdownTimeoutMs) {
        // A read or a back-off in progress ends within a blocked read's time; past the deadline,
        // the connections are cut and what was in hand stays pending for the next worker.
        stopTelling();
        await settledBy(Promise.all([sweeper.stop(), ...workers.map((worker) => worker.stop()), running]), deadlineMs);
        await Promise.all([closeRedis(sweeperRedis!, deadlineMs), closeRedis(redis, deadlineMs)]);
      },
    };
  } catch (error) {
    sweeperRedis?.disconnect();
    redis.disconnect();
    throw error;
  }
}
