import { pino } from 'pino';
import type { Config } from '../../src/config.js';
import { isCluster, type RedisClient } from '../../src/redis/connection.js';
import { streamGroupState } from '../../src/redis/decision-stream.js';
import { keyspaceFor } from '../../src/redis/keyspace.js';
import { startWorker, type WorkerService } from '../../src/worker/start-worker.js';
import { adminClient, sleep } from './api.js';

export interface TestWorker {
  service: WorkerService;
  /** Resolves once every decision in every partition's stream has been counted and acknowledged. */
  drained(): Promise<void>;
  stop(): Promise<void>;
}

/** A real stream worker on the same settings as a test API; short blocked reads so that it stops quickly. */
export async function startTestWorker(config: Config, url: string, overrides: Partial<Config['worker']> = {}): Promise<TestWorker> {
  const service = await startWorker({ ...config, worker: { ...config.worker, blockMs: 100, ...overrides } }, url, pino({ level: 'silent' }));
  const admin = adminClient(url);
  return {
    service,
    async drained() {
      await untilDrained(admin, config, isCluster(url));
    },
    async stop() {
      await service.close();
      admin.disconnect();
    },
  };
}

export async function untilDrained(redis: RedisClient, config: Config, cluster = false, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const { partitions } = keyspaceFor(config, cluster);
  for (;;) {
    const states = await Promise.all(partitions.map((partition) => streamGroupState(redis, partition.stream, config.worker.group)));
    if (states.every((state) => state.drained)) return;
    if (Date.now() > deadline) throw new Error(`the streams were not drained in ${timeoutMs} ms: ${JSON.stringify(states)}`);
    await sleep(20);
  }
}
