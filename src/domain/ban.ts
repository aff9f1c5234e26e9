import { z } from 'zod';
import { fieldProblems, type FieldProblem } from './field-problems.js';
import { ipField } from './ip.js';

/** One blocked address and why: the registry's record. */
export interface Ban {
  ip: string;
  reason: string;
  /** Who or what added it: `admin-api`, `cli`, `import:<file>`, or what the caller said. */
  source: string;
  /** Unix ms. */
  addedAt: number;
  /** Unix ms; null for a ban without end. */
  expiresAt: number | null;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
/** Longer than any sensible temporary ban; past it, a ban should be permanent. */
export const MAX_TTL_SECONDS = 365 * 86_400;

/** `90`, `90s`, `15m`, `1h` or `7d` as seconds; undefined for anything else. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d{1,9})([smhd])?$/.exec(text.trim());
  if (!match) return undefined;
  return Number(match[1]) * UNIT_SECONDS[match[2] ?? 's']!;
}

const ttlField = z
  .union([z.number(), z.string()], { error: 'ttl must be a duration such as 3600, "90s", "15m", "1h" or "7d"' })
  .transform((value, ctx) => {
    const seconds = typeof value === 'number' ? value : parseDuration(value);
    if (seconds === undefined || !Number.isInteger(seconds) || seconds < 1 || seconds > MAX_TTL_SECONDS) {
      ctx.issues.push({
        code: 'custom',
        input: value,
        message: `ttl must be a duration from 1 second to ${MAX_TTL_SECONDS / 86_400} days, such as 3600, "90s", "15m", "1h" or "7d"`,
      });
      return z.NEVER;
    }
    return seconds;
  });

export const banRequestSchema = z.object(
  {
    ip: ipField,
    reason: z
      .string({ error: (issue) => (issue.input === undefined ? 'reason is required' : 'reason must be a string') })
      .trim()
      .min(1, 'reason must not be empty')
      .max(500, 'reason must be at most 500 characters'),
    ttl: ttlField.optional(),
    source: z.string('source must be a string').trim().min(1, 'source must not be empty').max(64, 'source must be at most 64 characters').optional(),
  },
  { error: 'body must be a JSON object with ip, reason and an optional ttl' },
);

/** A ban as asked for: canonical ip, ttl in seconds. */
export type BanRequest = z.output<typeof banRequestSchema>;

export function parseBanRequest(body: unknown): { ok: true; request: BanRequest } | { ok: false; problems: FieldProblem[] } {
  const result = banRequestSchema.safeParse(body);
  return result.success ? { ok: true, request: result.data } : { ok: false, problems: fieldProblems(result.error.issues, '(body)') };
}
