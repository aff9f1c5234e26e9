import { z } from 'zod';
import { fieldProblems, type FieldProblem } from './field-problems.js';

/**
 * The detection rules, in the order they are applied: the first rule in `enforce` mode that fires
 * gives the verdict. The allowlist comes before all of them and wins over every one.
 *
 * - `ip_blacklist`: the address is on the blacklist (`ip_cf`);
 * - `ip_range`: the address is in a range on the blacklist (`203.0.113.0/24`, `2001:db8::/32`);
 * - `click_spam`: more than `threshold` clicks of one device within `window_sec`;
 * - `ip_flood`: more than `threshold` clicks from one address within `window_sec`;
 * - `device_farm`: more than `threshold` devices behind one address within `window_sec`.
 *
 * Each rule's name is also the fraud type of the verdicts it gives, and everything downstream (the
 * stream entry, the counters, /stats, the dashboard, the live page) is driven by this list.
 */
export const RULES = ['ip_blacklist', 'ip_range', 'click_spam', 'ip_flood', 'device_farm'] as const;
export type RuleName = (typeof RULES)[number];

/** Rules that count clicks in a sliding window against a threshold. */
export const VELOCITY_RULES = ['click_spam', 'ip_flood', 'device_farm'] as const satisfies readonly RuleName[];
export type VelocityRuleName = (typeof VELOCITY_RULES)[number];

/** What people read for a verdict (the live page, the dashboard). */
export const RULE_LABELS: Record<RuleName | 'clean', string> = {
  clean: 'Clean',
  ip_blacklist: 'Blacklisted address',
  ip_range: 'Blacklisted address range',
  click_spam: 'Click spam (device too fast)',
  ip_flood: 'Address flood (address too fast)',
  device_farm: 'Device farm (too many devices on one address)',
};

/** `enforce`: its hits are verdicts. `shadow`: its hits are recorded beside the verdict, which they do not change. */
export const RULE_MODES = ['enforce', 'shadow', 'off'] as const;
export type RuleMode = (typeof RULE_MODES)[number];

/** Why a click was judged as it was: the rule, what it saw, and its limit. */
export interface RuleHit {
  rule: RuleName;
  /** Clicks or devices counted in the window (this click included), or the matching address or range. */
  observed: number | string;
  limit?: number;
  window_sec?: number;
}

/**
 * A hit as the scripts wrote it (cjson orders an object's fields by chance), with its fields in the
 * order people read them: the rule, what it saw, its limit and window.
 */
export function orderedHit({ rule, observed, limit, window_sec }: RuleHit): RuleHit {
  return { rule, observed, ...(limit === undefined ? {} : { limit }), ...(window_sec === undefined ? {} : { window_sec }) };
}

const mode = z.enum(RULE_MODES, { error: `mode must be one of ${RULE_MODES.join(', ')}` });
const velocity = (defaults: { mode: RuleMode; threshold: number; window_sec: number }) =>
  z
    .object(
      {
        mode: mode.default(defaults.mode),
        threshold: z
          .number({ error: 'threshold must be a whole number' })
          .int('threshold must be a whole number')
          .min(1, 'threshold must be at least 1')
          .max(100_000, 'threshold must be at most 100000')
          .default(defaults.threshold),
        window_sec: z
          .number({ error: 'window_sec must be a number of seconds' })
          .min(0.001, 'window_sec must be more than 0')
          .max(86_400, 'window_sec must be at most 86400 (one day)')
          .default(defaults.window_sec),
      },
      { error: 'must be an object with mode, threshold and window_sec' },
    )
    .strict()
    .default({ mode: defaults.mode, threshold: defaults.threshold, window_sec: defaults.window_sec });
const listRule = z.object({ mode: mode.default('enforce') }, { error: 'must be an object with mode' }).strict().default({ mode: 'enforce' });

/**
 * A rule set as the admin API takes it: every rule optional, with today's defaults (the reference
 * article's two rules on, the new ones off), so `{}` is the default rule set.
 */
export const ruleSetSchema = z
  .object(
    {
      ip_blacklist: listRule,
      ip_range: listRule,
      click_spam: velocity({ mode: 'enforce', threshold: 2, window_sec: 10 }),
      ip_flood: velocity({ mode: 'off', threshold: 20, window_sec: 10 }),
      device_farm: velocity({ mode: 'off', threshold: 5, window_sec: 60 }),
    },
    { error: 'the rule set must be a JSON object of rules' },
  )
  .strict();

export type RuleSet = z.output<typeof ruleSetSchema>;

export function parseRuleSet(body: unknown): { ok: true; rules: RuleSet } | { ok: false; problems: FieldProblem[] } {
  const result = ruleSetSchema.safeParse(body);
  return result.success ? { ok: true, rules: result.data } : { ok: false, problems: fieldProblems(result.error.issues, '(body)') };
}

/** The rule set in force, as stored: the rules and where they came from. */
export interface VersionedRuleSet {
  /** Grows by one with every change; every decision names the version that judged it. */
  version: number;
  /** `environment`: seeded from CLICK_SPAM_* and the other rule settings; `admin`: set through the admin API or CLI. */
  source: 'environment' | 'admin';
  /** Unix ms. */
  updatedAt: number;
  rules: RuleSet;
}

/** Device windows keep at least this many recent transactions, to answer retries with their decision. */
export const RECENT_TRANSACTIONS = 100;

/**
 * What one device's or address's window may hold whatever it sends: only the newest `threshold`
 * clicks decide whether the next is over it, plus, for a device, its recent transactions (retries).
 */
export function windowBound(rules: RuleSet): { device: number; ipClicks: number; ipDevices: number } {
  return {
    device: Math.max(rules.click_spam.threshold + 1, RECENT_TRANSACTIONS),
    ipClicks: rules.ip_flood.threshold + 1,
    ipDevices: rules.device_farm.threshold + 1,
  };
}
