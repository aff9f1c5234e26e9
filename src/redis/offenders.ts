import { bucketStart, type CountableDecision } from '../domain/decision-entry.js';
import { isFraudType, type FraudType } from '../domain/verdict.js';
import { MINUTE_MS } from '../stats/series.js';
import type { RedisCapabilities } from './capabilities.js';
import type { RedisClient } from './connection.js';
import type { Keyspace, Partition } from './keyspace.js';

export type OffenderKind = 'device' | 'address';
export type OffendersBackend = 'topk' | 'zset';

export interface OffendersSettings {
  backend: 'auto' | OffendersBackend;
  keyspace: Keyspace;
  retentionMs: number;
}

/** A device or an address, by its fraud clicks over a range: in all, and per verdict. */
export interface Offender {
  id: string;
  fraud: number;
  verdicts: Partial<Record<FraudType, number>>;
}

export interface TopOffenders {
  devices: Offender[];
  addresses: Offender[];
}

/** The top offenders' share of a decision's count (see countDecisions.lua): its first 2 keys, and its arguments 2 to 9. */
export interface OffendersTally {
  keys: [devices: string, addresses: string];
  args: Array<string | number>;
}

/**
 * The heaviest fraud sources, per partition and minute: devices and addresses by fraud clicks,
 * each with its clicks per verdict. A worker adds a fraud decision to them in the same script that
 * counts and acknowledges it (countDecisions.lua), so they are counted exactly once, as the counters
 * are; reads add minutes and partitions up (readOffenders.lua).
 */
export interface Offenders {
  backend: OffendersBackend;
  /** The keys and arguments a decision's count adds for the offenders (nothing is added for a clean one). */
  tally(partition: Partition, decision: CountableDecision): OffendersTally;
  /** The `limit` heaviest devices and addresses over every minute that overlaps [from, to]. */
  top(redis: RedisClient, from: number, to: number, limit: number): Promise<TopOffenders>;
}

/** Most offenders of each kind one read answers, and what each partition adds to it. */
export const MAX_OFFENDERS = 100;

/**
 * Kept per partition, minute and kind, as "<verdict>:<id>" members, with about the same memory:
 * - a Top-K listing its 100 heaviest: about 19 KB full of 25-byte members, 14.5 KB of it from the
 *   minute's first fraud click on. Width and depth: about k·ln k / 2 and ln k;
 * - a sorted set of at most 200: about 23 KB full of 25-byte members (3 KB at 100, a listpack).
 * Measured on Redis Stack 7.4 (RedisBloom 2.8):
 * - in 3,000 shuffled minutes of 46 members (five of 4 to 10 clicks, 41 of one), every Top-K count
 *   came out exact (at depth 4, one minute was not);
 * - in five shuffled minutes of 1,000 one-click members, 60 of 3 and ten of 10 to 19 clicks, every
 *   store listed all ten heavy members; exact were 48 of their 50 counts with the Top-K, 31 with
 *   RedisBloom's default decay of 0.9 (the lower decay keeps a heavy hitter from being worn down by
 *   the one-click members that share its buckets), and 44 with the sorted set (with 100 members,
 *   13 exact and 47 listed).
 */
const TOP_K = { k: MAX_OFFENDERS, width: 250, depth: 5, decay: 0.5 };
const SORTED_SET_MEMBERS = 2 * MAX_OFFENDERS;
/** The longest range one read adds up: 61 minutes of each partition, one script per partition. */
export const MAX_OFFENDERS_RANGE_MS = 60 * MINUTE_MS;

/**
 * Picks the store: RedisBloom's Top-K where the module is loaded, otherwise sorted sets of the
 * same size kept with Space-Saving (see includes/offenders.lua).
 */
export function prepareOffenders(capabilities: RedisCapabilities, { backend, keyspace, retentionMs }: OffendersSettings): Offenders {
  if (backend === 'topk' && !capabilities.bloom) {
    throw new Error('OFFENDERS_BACKEND=topk needs the RedisBloom module (Redis Stack or Redis 8), which this Redis does not have');
  }
  const chosen: OffendersBackend = backend === 'topk' || (backend === 'auto' && capabilities.bloom) ? 'topk' : 'zset';
  return {
    backend: chosen,
    tally(partition, { fraudType, deviceId, ip, ts }) {
      const minute = bucketStart(ts, MINUTE_MS);
      return {
        keys: [partition.offenders('device', chosen, minute), partition.offenders('address', chosen, minute)],
        args: [
          fraudType === 'clean' ? '' : chosen,
          `${fraudType}:${deviceId}`,
          `${fraudType}:${ip}`,
          minute + MINUTE_MS + retentionMs,
          chosen === 'topk' ? TOP_K.k : SORTED_SET_MEMBERS,
          TOP_K.width,
          TOP_K.depth,
          TOP_K.decay,
        ],
      };
    },
    async top(redis, from, to, limit) {
      const minutes: number[] = [];
      for (let minute = bucketStart(from, MINUTE_MS); minute <= to; minute += MINUTE_MS) minutes.push(minute);
      const replies = await Promise.all(
        keyspace.partitions.map(
          (partition) =>
            redis.readOffenders(
              2 * minutes.length,
              ...minutes.map((minute) => partition.offenders('device', chosen, minute)),
              ...minutes.map((minute) => partition.offenders('address', chosen, minute)),
              minutes.length,
              chosen,
              // Each partition's own top: a device is in one partition only, an address in any, and
              // one that is not among a partition's heaviest adds nothing there, as in its minutes.
              MAX_OFFENDERS,
            ) as Promise<[OffenderRow[], OffenderRow[]]>,
        ),
      );
      return {
        devices: heaviest(replies.map(([devices]) => devices), limit),
        addresses: heaviest(replies.map(([, addresses]) => addresses), limit),
      };
    },
  };
}

/** A row of readOffenders.lua's reply: id, fraud clicks, then verdict and clicks pairs. */
type OffenderRow = [id: string, fraud: number, ...verdictClicks: Array<string | number>];

/** The partitions' rows added up by id, the `limit` with most fraud clicks first (ties by id). */
function heaviest(partitions: OffenderRow[][], limit: number): Offender[] {
  const byId = new Map<string, Offender>();
  for (const rows of partitions) {
    for (const [id, fraud, ...pairs] of rows) {
      let offender = byId.get(id);
      if (!offender) byId.set(id, (offender = { id, fraud: 0, verdicts: {} }));
      offender.fraud += fraud;
      for (let i = 0; i + 1 < pairs.length; i += 2) {
        const verdict = String(pairs[i]);
        if (isFraudType(verdict)) offender.verdicts[verdict] = (offender.verdicts[verdict] ?? 0) + Number(pairs[i + 1]);
      }
    }
  }
  return [...byId.values()].sort((a, b) => b.fraud - a.fraud || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).slice(0, limit);
}
