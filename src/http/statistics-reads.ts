import type { Response } from 'express';
import { z } from 'zod';
import { fieldProblems, type FieldProblem } from '../domain/field-problems.js';
import { createConcurrencyLimit, TooBusyError, type ConcurrencyLimit } from './concurrency-limit.js';
import { sendError } from './errors.js';

/**
 * What the statistics reads (`GET /stats`, `GET /offenders`) share: their time parameters, their
 * answers to a bad query, and one limit on how many run at once.
 *
 * Reads of statistics in one API process: one at a time, at most half of the time, and at most 64
 * waiting for a turn. Each is bounded in commands (Counters.maxRangeMs, MAX_OFFENDERS_RANGE_MS) and
 * clicks have a Redis connection of their own, so no amount of such traffic can starve the clicks,
 * in Redis or in this process's event loop.
 */
export function createStatsReads(): ConcurrencyLimit {
  return createConcurrencyLimit({ maxRunning: 1, maxWaiting: 64, share: 0.5 });
}

/** A `from` or `to` query parameter: ms since the epoch. */
export const epochMs = (name: string) =>
  z
    .string()
    .regex(/^\d{1,15}$/, `${name} must be a time in ms since the epoch`)
    .transform(Number)
    .optional();

/**
 * The query parsed by `schema`, or undefined once a 400 naming every problem has been sent.
 * `what` names the query in the answer ("the stats query has invalid parameters").
 */
export function parseQuery<T extends z.ZodType>(res: Response, schema: T, query: unknown, what: string): z.output<T> | undefined {
  const parsed = schema.safeParse(query);
  if (parsed.success) return parsed.data;
  sendInvalidQuery(res, what, fieldProblems(parsed.error.issues, '(query)'));
  return undefined;
}

/**
 * The range [from, to] the query asks for (to defaults to now, from to `defaultMs` before it), or
 * undefined once a 400 has been sent: from after to, longer than `maxMs` (`maxText` says so), or
 * any of `more`, the route's own problems with the range.
 */
export function rangeOf(
  res: Response,
  query: { from?: number; to?: number },
  { defaultMs, maxMs, maxText, what, more = () => [] }: { defaultMs: number; maxMs: number; maxText: string; what: string; more?: (from: number, to: number) => FieldProblem[] },
): { from: number; to: number } | undefined {
  const to = query.to ?? Date.now();
  const from = query.from ?? to - Math.min(defaultMs, maxMs);
  const problems = [
    ...(from > to ? [{ path: 'from', message: 'from must not be after to' }] : []),
    ...(to - from > maxMs ? [{ path: 'to', message: `the range must be at most ${maxText}` }] : []),
    ...more(from, to),
  ];
  if (problems.length === 0) return { from, to };
  sendInvalidQuery(res, what, problems);
  return undefined;
}

/**
 * Runs `read` in its turn under `reads`; answers 503 itself (with Retry-After when it is only too
 * busy) and resolves undefined when it could not run or Redis failed.
 */
export async function readInTurn<T>(res: Response, reads: ConcurrencyLimit, what: string, read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await reads.run(read);
  } catch (error) {
    if (error instanceof TooBusyError) {
      res.set('Retry-After', '1');
      sendError(res, 503, { error: 'stats_busy', message: 'too many statistics reads at once; retry in a moment' });
    } else {
      sendError(res, 503, { error: 'redis_unavailable', message: `the ${what} could not be read because Redis is unavailable` });
    }
    return undefined;
  }
}

function sendInvalidQuery(res: Response, what: string, issues: FieldProblem[]): void {
  sendError(res, 400, { error: 'invalid_query', message: `the ${what} query has invalid parameters`, issues });
}
