import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';

export interface ApiCluster {
  /** Asks every API process to drain (SIGTERM) and waits for all to exit. */
  close(): Promise<void>;
}

/** More unexpected exits than this within the window means something is wrong for good: give up. */
const RESTART_BUDGET = { exits: 5, windowMs: 30_000 };

/**
 * Runs `count` API processes (node:cluster) that share the listening port, each with its own
 * Redis connection. They re-run this program with ROLE=api and the primary's Redis; a process that
 * dies is replaced. Resolves once all are listening.
 */
export function startApiCluster(count: number, redisUrl: string, logger: Logger, onGiveUp: (reason: string) => void): Promise<ApiCluster> {
  const env = { REDIS_URL: redisUrl, ROLE: 'api', API_PROCESSES: '1' };
  const workers = new Set<Worker>();
  const recentExits: number[] = [];
  let closing = false;

  const fork = (): Worker => {
    const worker = cluster.fork(env);
    workers.add(worker);
    worker.once('exit', (code, signal) => {
      workers.delete(worker);
      if (closing) return;
      const now = Date.now();
      recentExits.push(now);
      while (recentExits.length > 0 && recentExits[0]! < now - RESTART_BUDGET.windowMs) recentExits.shift();
      if (recentExits.length > RESTART_BUDGET.exits) return onGiveUp(`API processes keep exiting (last: code ${code}, signal ${signal})`);
      // pino's own `pid` is this primary's; the process that exited is `apiPid`.
      logger.error({ apiPid: worker.process.pid, code, signal }, 'API process exited; starting another');
      fork();
    });
    return worker;
  };

  return new Promise((ready, fail) => {
    let listening = 0;
    for (let i = 0; i < count; i++) {
      const worker = fork();
      worker.once('listening', () => {
        listening += 1;
        if (listening === count) {
          logger.info({ processes: count }, `API running in ${count} processes`);
          ready({ close });
        }
      });
      // An API process that cannot start (Redis unreachable, say) has said why in its own log.
      worker.once('exit', (code) => {
        if (listening < count && !closing) {
          closing = true;
          void close().then(() => fail(new Error(`an API process exited with code ${code} while starting`)));
        }
      });
    }
  });

  async function close(): Promise<void> {
    closing = true;
    await Promise.all(
      [...workers].map(
        (worker) =>
          new Promise<void>((exited) => {
            if (worker.isDead()) return exited();
            worker.once('exit', () => exited());
            worker.process.kill('SIGTERM');
          }),
      ),
    );
  }
}
