import type { RequestHandler } from 'express';
import { z } from 'zod';
import { bucketStart } from '../domain/decision-entry.js';
import { fieldProblems } from '../domain/field-problems.js';
import type { RedisClient } from '../redis/connection.js';
import { MAX_OFFENDERS_RANGE_MS, MAX_OFFENDERS, type Offender, type Offenders } from '../redis/offenders.js';
import { MINUTE_MS } from '../stats/series.js';
import { TooBusyError, type ConcurrencyLimit } from './concurrency-limit.js';
import { sendError } from './errors.js';
import { epochMs } from './stats-route.js';

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
    const parsed = querySchema.safeParse(req.query);
    if (!parsed.success) {
      return sendError(res, 400, { error: 'invalid_query', message: 'the offenders query has invalid parameters', issues: fieldProblems(parsed.error.issues, '(query)') });
    }
    const { limit } = parsed.data;
    const to = parsed.data.to ?? Date.now();
    const from = parsed.data.from ?? to - DEFAULT_RANGE_MS;
    const problems = [
      ...(from > to ? [{ path: 'from', message: 'from must not be after to' }] : []),
      ...(to - from > MAX_OFFENDERS_RANGE_MS ? [{ path: 'to', message: `the range must be at most ${MAX_OFFENDERS_RANGE_MS / MINUTE_MS} minutes` }] : []),
    ];
    if (problems.length > 0) return sendError(res, 400, { error: 'invalid_query', message: 'the offenders query has invalid parameters', issues: problems });

    let top;
    try {
      top = await reads.run(() => offenders.top(redis, from, to, limit));
    } catch (error) {
      if (error instanceof TooBusyError) {
        res.set('Retry-After', '1');
        return sendError(res, 503, { error: 'stats_busy', message: 'too many statistics reads at once; retry in a moment' });
      }
      return sendError(res, 503, { error: 'redis_unavailable', message: 'the offenders could not be read because Redis is unavailable' });
    }
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
