import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { connectRedis } from '../redis/connection.js';
import { prepareCounters, type Counters } from '../redis/counters.js';
import { createStreamWorker } from './stream-worker.js';

export interface WorkerService {
  consumer: string;
  counters: Counters;
  /** Finishes the batch in hand, then closes Redis. */
  close(): Promise<void>;
}

/** Connects its own Redis client (its reads block), prepares the counters, and starts counting. */
export async function startWorker(config: Config, redisUrl: string, logger: Logger): Promise<WorkerService> {
  const consumer = config.worker.consumer ?? `${hostname()}-${process.pid}`;
  const { redis, capabilities } = await connectRedis({
    url: redisUrl,
    // A blocked read legitimately takes up to WORKER_BLOCK_MS.
    timeoutMs: config.worker.blockMs + config.redis.timeoutMs,
    connectionName: `click-fraud-worker:${consumer}`,
    logger,
  });
  try {
    const counters = await prepareCounters(redis, capabilities, { ...config.stats, keyPrefix: config.keyPrefix });
    const worker = createStreamWorker(redis, counters, { ...config.worker, consumer, stream: config.stream }, logger.child({ worker: consumer }));
    const running = worker.run();
    logger.info(
      { stream: config.stream.key, group: config.worker.group, consumer, counters: counters.backend },
      counters.backend === 'timeseries'
        ? `stream worker counting decisions into RedisTimeSeries series "${config.keyPrefix}ts:*"`
        : `stream worker counting decisions into plain Redis hashes "${config.keyPrefix}counts:*" (${capabilities.timeseries ? 'STATS_BACKEND=hash' : 'RedisTimeSeries is not available on this Redis'})`,
    );
    return {
      consumer,
      counters,
      async close() {
        await worker.stop();
        await running;
        await redis.quit().catch(() => redis.disconnect());
      },
    };
  } catch (error) {
    redis.disconnect();
    throw error;
  }
}
