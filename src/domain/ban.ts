import { z } from 'zod';
import { fieldProblems, type FieldProblem } from './field-problems.js';
import { ipOrRangeField } from './ip.js';
import { textField } from './text.js';

/** One blocked address or range and why: the registry's record. */
export interface Ban {
  /** A canonical address, or a range in CIDR form (`203.0.113.0/24`). */
  ip: string;
  reason: string;
  /** Who or what added it: `admin-api`, `cli`, `import:<file>`, or what the caller said. */
  source: string;
  /** Unix ms. */
  addedAt: number;
  /** Unix ms; null for a ban without end. */
  expiresAt: number | null;
}

/** Most characters of a ban's reason and of its source. */
export const MAX_REASON_LENGTH = 500;
export const MAX_SOURCE_LENGTH = 64;

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
    ip: ipOrRangeField,
    reason: textField('reason', MAX_REASON_LENGTH, { trim: true }),
    ttl: ttlField.optional(),
    source: textField('source', MAX_SOURCE_LENGTH, { trim: true }).optional(),
  },
  { error: 'body must be a JSON object with ip, reason and an optional ttl' },
);

/** A ban as asked for: canonical ip, ttl in seconds. */
export type BanRequest = z.output<typeof banRequestSchema>;

export function parseBanRequest(body: unknown): { ok: true; value: BanRequest } | { ok: false; problems: FieldProblem[] } {
  const result = banRequestSchema.safeParse(body);
  return result.success ? { ok: true, value: result.data } : { ok: false, problems: fieldProblems(result.error.issues, '(body)') };
}

/** A ban's reason on its own (the CLI's import gives one to every address), by the same rules. */
export function parseBanReason(text: string): { ok: true; value: string } | { ok: false; problems: FieldProblem[] } {
  const result = banRequestSchema.shape.reason.safeParse(text);
  return result.success ? { ok: true, value: result.data } : { ok: false, problems: fieldProblems(result.error.issues, 'reason') };
}
