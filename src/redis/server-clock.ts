import calculateSlot from 'cluster-key-slot';
import { Cluster, type Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisClient } from './connection.js';

/**
 * The Redis servers' clocks as seen from here, so that a deadline can be given to a script in the
 * clock of the server that runs it: the script compares it with `TIME`, whatever the skew between
 * the machines. On a cluster each master has its own clock.
 */
export interface ServerClock {
  /** Now on the clock of the server holding `key` (this machine's clock plus that server's offset), in ms. */
  now(key: string): number;
  stop(): void;
}

/** Clocks drift, NTP steps them, and failovers put other machines behind the slots: measured again this often. */
const RESYNC_MS = 10_000;

/**
 * Measures each server's offset with `TIME` (midpoint of the round trip; the error is at most half
 * of it, well under a millisecond on a LAN) at start, after each reconnect or slot-map refresh, and
 * every RESYNC_MS.
 */
export async function createServerClock(client: RedisClient, logger: Logger): Promise<ServerClock> {
  /** Offsets by `host:port`; a single server's is under ''. */
  let offsets = new Map<string, number>();
  let fallback = 0;
  const measure = async (node: Redis) => {
    const sentAt = Date.now();
    const [seconds, micros] = (await node.time()) as [string | number, string | number];
    const receivedAt = Date.now();
    return Number(seconds) * 1000 + Number(micros) / 1000 - (sentAt + receivedAt) / 2;
  };
  const sync = async () => {
    if (!(client instanceof Cluster)) {
      fallback = await measure(client);
      return;
    }
    const masters = client.nodes('master');
    const measured = await Promise.all(masters.map(async (node) => [`${node.options.host}:${node.options.port}`, await measure(node)] as const));
    offsets = new Map(measured);
    // A slot whose master is not known yet is given the clock that is furthest behind, so that its
    // deadline comes no later than the caller's.
    fallback = Math.min(...measured.map(([, offset]) => offset));
  };
  let syncing = false;
  // At most one measurement waits at a time, so a hung Redis does not collect them.
  const syncQuietly = () => {
    if (syncing) return;
    syncing = true;
    sync()
      .catch((error: Error) => logger.debug({ err: error.message }, 'cannot read the Redis server clock; keeping the last offsets'))
      .finally(() => (syncing = false));
  };
  await sync();
  const timer = setInterval(syncQuietly, RESYNC_MS);
  timer.unref();
  client.on('ready', syncQuietly);
  client.on('refresh', syncQuietly);
  const masterOf = (key: string): string | undefined => (client instanceof Cluster ? client.slots[calculateSlot(key)]?.[0] : undefined);
  return {
    now(key) {
      const node = masterOf(key);
      return Date.now() + ((node === undefined ? undefined : offsets.get(node)) ?? fallback);
    },
    stop() {
      clearInterval(timer);
      client.off('ready', syncQuietly);
      client.off('refresh', syncQuietly);
    },
  };
}
