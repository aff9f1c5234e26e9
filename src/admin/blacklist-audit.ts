import type { RedisClient } from '../redis/connection.js';
import type { Logger } from 'pino';
import { findNonCanonical, type Blacklist, type NonCanonicalEntry } from '../redis/blacklist.js';

/**
 * How much one look at the set blacklist may cost: at start-up, and on each admin listing or fix.
 * 100,000 members is about a hundred SSCAN round trips; a larger set is looked at a page at a time.
 */
export const NON_CANONICAL_SCAN = { maxScanned: 100_000, maxFound: 1000 };
/** Entries named in the start-up warning, and in /readyz. */
const NAMED_IN_LOG = 5;
const NAMED_IN_READYZ = 10;

export interface BlacklistAudit {
  /** What the last look found, for /readyz; empty on a cuckoo filter, which cannot be listed. */
  readiness(): { non_canonical?: NonCanonicalReport };
  /** Looks at the set again (one bounded page), and warns in the log when it finds entries that block nothing. */
  check(): Promise<void>;
}

interface NonCanonicalReport {
  /** Entries found that are not the canonical spelling of an address. */
  found: number;
  /** The first of them. */
  examples: Array<{ raw: string; canonical: string | null }>;
  /** Members looked at. */
  scanned: number;
  /** False when the set is larger than one look covers: there may be more. */
  complete: boolean;
  /** When the look was taken, unix ms. */
  checked_at: number;
}

export const describeEntry = (entry: Pick<NonCanonicalEntry, 'raw' | 'canonical'>) =>
  `${JSON.stringify(entry.raw)} (${entry.canonical === null ? 'not an address' : `should be ${entry.canonical}`})`;

/**
 * Finds the set blacklist's members that block nothing because they are not spelled as lookups
 * spell addresses (added with redis-cli as `2001:DB8::9`, say). It looks at start-up and after a
 * fix through the admin API, never per /readyz: a set can hold millions of members.
 */
export function createBlacklistAudit(redis: RedisClient, blacklist: Blacklist, logger: Logger): BlacklistAudit {
  let report: NonCanonicalReport | undefined;

  return {
    readiness: () => (report === undefined ? {} : { non_canonical: report }),
    async check() {
      if (blacklist.backend !== 'set') return;
      let page;
      try {
        page = await findNonCanonical(redis, blacklist, NON_CANONICAL_SCAN);
      } catch (error) {
        logger.warn({ err: (error as Error).message }, `could not check the blacklist set "${blacklist.key}" for entries not in canonical form`);
        return;
      }
      const { entries, scanned, nextCursor } = page;
      report = {
        found: entries.length,
        examples: entries.slice(0, NAMED_IN_READYZ).map(({ raw, canonical }) => ({ raw, canonical })),
        scanned,
        complete: nextCursor === undefined,
        checked_at: Date.now(),
      };
      if (entries.length === 0) return;
      const more = report.complete ? '' : ` (in the first ${scanned} members looked at; there may be more)`;
      logger.warn(
        { blacklist: blacklist.key, nonCanonical: report.found, complete: report.complete },
        `the blacklist set "${blacklist.key}" holds ${entries.length} entries not in canonical form${more}, which block nothing: ` +
          `${entries.slice(0, NAMED_IN_LOG).map(describeEntry).join(', ')}${entries.length > NAMED_IN_LOG ? ', ...' : ''}; ` +
          'list and fix them with: npm run blacklist -- non-canonical --fix (admin API: GET /admin/blacklist/non-canonical, POST /admin/blacklist/non-canonical/fix)',
      );
    },
  };
}
