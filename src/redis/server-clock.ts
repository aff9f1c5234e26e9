import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * The Redis server's clock as seen from here, so that a deadline can be given to a script in the
 * server's own time: the script compares it with `TIME`, whatever the skew between the machines.
 */
export interface ServerClock {
  /** Now on the server's clock, in ms (this machine's clock plus the last measured offset). */
  now(): number;
  /** Re-measures now (after a reconnect, the server may be another one). */
  sync(): Promise<void>;
  stop(): void;
}

/** Clocks drift, and NTP steps them: measured again this often. */
const RESYNC_MS = 10_000;

/**
 * Measures the offset with `TIME` (midpoint of the round trip; the error is at most half of it,
 * well under a millisecond on a LAN) at start, after each reconnect, and every RESYNC_MS.
 */
export async function createServerClock(redis: Redis, logger: Logger): Promise<ServerClock> {
  let offsetMs = 0;
  const sync = async () => {
    const sentAt = Date.now();
    const [seconds, micros] = (await redis.time()) as [string | number, string | number];
    const receivedAt = Date.now();
    offsetMs = Number(seconds) * 1000 + Number(micros) / 1000 - (sentAt + receivedAt) / 2;
  };
  let syncing = false;
  // At most one measurement waits at a time, so a hung Redis does not collect them.
  const syncQuietly = () => {
    if (syncing) return;
    syncing = true;
    sync()
      .catch((error: Error) => logger.debug({ err: error.message }, 'cannot read the Redis server clock; keeping the last offset'))
      .finally(() => (syncing = false));
  };
  await sync();
  const timer = setInterval(syncQuietly, RESYNC_MS);
  timer.unref();
  redis.on('ready', syncQuietly);
  return {
    now: () => Date.now() + offsetMs,
    sync,
    stop() {
      clearInterval(timer);
      redis.off('ready', syncQuietly);
    },
  };
}
