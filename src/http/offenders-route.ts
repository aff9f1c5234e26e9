import type { RequestHandler } from 'express';
import { z } from 'zod';
import { bucketStart } from '../domain/decision-entry.js';
import type { RedisClient } from '../redis/connection.js';
import { MAX_OFFENDERS_RANGE_MS, MAX_OFFENDERS, type Offender, type Offenders } from '../redis/offenders.js';
import { MINUTE_MS } from '../stats/series.js';
import type { ConcurrencyLimit } from './concurrency-limit.js';
import { epochMs, parseQuery, rangeOf, readInTurn } from './statistics-reads.js';

const DEFAULT_RANGE_MS = 15 * MINUTE_MS;
const DEFAULT_LIMIT = 10;
const limitProblem = `limit must be a whole number from 1 to ${MAX_OFFENDERS}`;

/** The query of GET /offenders (also the OpenAPI document's, src/http/openapi.ts). */
export const querySchema = z.object({
  from: epochMs('from'),
  to: epochMs('to'),
  limit: z
    .string()
    .regex(/^\d{1,4}$/, limitProblem)
    .transform(Number)
    .pipe(z.number().min(1, limitProblem).max(MAX_OFFENDERS, limitProblem))
    .default(DEFAULT_LIMIT),
});

export interface OffendersRouteDependencies {
  redis: RedisClient;
  offenders: Offenders;
  /** Shared with /stats (createStatsReads). */
  reads: ConcurrencyLimit;
}

/**
 * `GET /offenders?from=&to=&limit=`: the devices and the addresses with the most fraud clicks over
 * every minute that overlaps [from, to], each with its clicks per verdict. A read is one script per
 * partition over at most 61 minutes of at most 200 entries per kind each, whatever is asked.
 */
export function offendersRoute({ redis, offenders, reads }: OffendersRouteDependencies): RequestHandler {
  return async (req, res) => {
    const query = parseQuery(res, querySchema, req.query, 'offenders');
    if (query === undefined) return;
    const range = rangeOf(res, query, { defaultMs: DEFAULT_RANGE_MS, maxMs: MAX_OFFENDERS_RANGE_MS, maxText: `${MAX_OFFENDERS_RANGE_MS / MINUTE_MS} minutes`, what: 'offenders' });
    if (range === undefined) return;
    const { from, to } = range;
    const { limit } = query;

    const top = await readInTurn(res, reads, 'offenders', () => offenders.top(redis, from, to, limit));
    if (top === undefined) return;
    res.json({
      // The whole minutes read.
      from: bucketStart(from, MINUTE_MS),
      to: bucketStart(to, MINUTE_MS) + MINUTE_MS - 1,
      limit,
      backend: offenders.backend,
      devices: top.devices.map((offender) => ({ device_id: offender.id, ...counts(offender) })),
      addresses: top.addresses.map((offender) => ({ ip: offender.id, ...counts(offender) })),
    });
  };
}

function counts({ fraud, verdicts }: Offender) {
  return { fraud, verdicts };
}
