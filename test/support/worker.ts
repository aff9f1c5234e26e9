import { pino } from 'pino';
import { Redis } from 'ioredis';
import type { Config } from '../../src/config.js';
import { streamGroupState } from '../../src/redis/decision-stream.js';
import { startWorker, type WorkerService } from '../../src/worker/start-worker.js';
import { sleep } from './api.js';

export interface TestWorker {
  service: WorkerService;
  /** Resolves once every decision in the stream has been counted and acknowledged. */
  drained(): Promise<void>;
  stop(): Promise<void>;
}

/** A real stream worker on the same settings as a test API; short blocked reads so that it stops quickly. */
export async function startTestWorker(config: Config, url: string, overrides: Partial<Config['worker']> = {}): Promise<TestWorker> {
  const service = await startWorker({ ...config, worker: { ...config.worker, blockMs: 100, ...overrides } }, url, pino({ level: 'silent' }));
  const admin = new Redis(url);
  return {
    service,
    async drained() {
      await untilDrained(admin, config);
    },
    async stop() {
      await service.close();
      admin.disconnect();
    },
  };
}

export async function untilDrained(redis: Redis, config: Config, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await streamGroupState(redis, config.stream.key, config.worker.group);
    if (state.drained) return;
    if (Date.now() > deadline) throw new Error(`the stream was not drained in ${timeoutMs} ms: ${JSON.stringify(state)}`);
    await sleep(20);
  }
}
