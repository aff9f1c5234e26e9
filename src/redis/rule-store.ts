import type { Logger } from 'pino';
import { isDeepStrictEqual } from 'node:util';
import { parseRuleSet, windowBound, type RuleMode, type RuleSet, type VersionedRuleSet } from '../domain/rules.js';
import type { RedisClient } from './connection.js';

/**
 * The rule set in force, kept in Redis (a hash at Keyspace.rules: `version`, `source`, `updated_at`,
 * `rules` as JSON), so that every API process judges by the same rules and a change reaches all of
 * them without a restart. The environment seeds it; the admin API and CLI replace it.
 */
export interface RuleBook {
  /** The rule set every check uses now. */
  current(): VersionedRuleSet;
  /** `current()` as the check scripts read it (see includes/rules.lua). */
  args(): RuleArgs;
  stop(): void;
}

/** How often each API process looks for a new version: a change is in force everywhere within about this long. */
export const RULES_POLL_MS = 500;

const MODE_LETTER: Record<RuleMode, string> = { enforce: 'e', shadow: 's', off: 'o' };

/** The rule set as the check scripts take it: 13 arguments, read by position (includes/rules.lua). */
export type RuleArgs = [
  version: number,
  ipBlacklist: string,
  ipRange: string,
  ...clickSpam: [mode: string, threshold: number, windowMs: number],
  ...ipFlood: [mode: string, threshold: number, windowMs: number],
  ...deviceFarm: [mode: string, threshold: number, windowMs: number],
  deviceWindowCap: number,
];

export function ruleArgs({ version, rules }: VersionedRuleSet): RuleArgs {
  const velocity = (rule: RuleSet['click_spam']): [string, number, number] => [MODE_LETTER[rule.mode], rule.threshold, Math.round(rule.window_sec * 1000)];
  return [
    version,
    MODE_LETTER[rules.ip_blacklist.mode],
    MODE_LETTER[rules.ip_range.mode],
    ...velocity(rules.click_spam),
    ...velocity(rules.ip_flood),
    ...velocity(rules.device_farm),
    windowBound(rules).device,
  ];
}

/** Reads the stored rule set; undefined when there is none, or it is not one (someone wrote the key by hand). */
export async function readRules(redis: RedisClient, key: string): Promise<VersionedRuleSet | undefined> {
  const stored = await redis.hgetall(key);
  if (stored.version === undefined || stored.rules === undefined) return undefined;
  let parsed;
  try {
    parsed = parseRuleSet(JSON.parse(stored.rules));
  } catch {
    return undefined;
  }
  if (!parsed.ok || !/^\d+$/.test(stored.version)) return undefined;
  return {
    version: Number(stored.version),
    source: stored.source === 'admin' ? 'admin' : 'environment',
    updatedAt: Number(stored.updated_at ?? 0),
    rules: parsed.rules,
  };
}

/** Stores a new rule set as the next version, in one step (MULTI), and answers it. */
export async function writeRules(redis: RedisClient, key: string, rules: RuleSet, source: VersionedRuleSet['source']): Promise<VersionedRuleSet> {
  const updatedAt = Date.now();
  const replies = (await redis
    .multi()
    .hincrby(key, 'version', 1)
    .hset(key, 'source', source, 'updated_at', updatedAt, 'rules', JSON.stringify(rules))
    .exec()) as Array<[Error | null, unknown]>;
  const failed = replies.find(([error]) => error);
  if (failed) throw failed[0];
  return { version: Number(replies[0]![1]), source, updatedAt, rules };
}

/**
 * The rule set at start: the stored one, unless there is none or it came from the environment and
 * the environment now says otherwise, in which case the environment's is stored as a new version.
 * One set through the admin API stays in force over the environment until it is reset.
 */
export async function openRuleBook(redis: RedisClient, key: string, seed: RuleSet, logger: Logger): Promise<RuleBook> {
  let current = await readRules(redis, key);
  if (current === undefined || (current.source === 'environment' && !isDeepStrictEqual(current.rules, seed))) {
    current = await writeRules(redis, key, seed, 'environment');
    logger.info({ version: current.version, rules: current.rules }, `rule set v${current.version} from the environment`);
  } else if (current.source === 'admin' && !isDeepStrictEqual(current.rules, seed)) {
    logger.warn({ version: current.version }, `rule set v${current.version}, set through the admin API, is in force; the environment's (RULES, CLICK_SPAM_*) is not used until it is reset`);
  }
  let args = ruleArgs(current);
  let failing = false;
  // Only the version is read each time: a new rule set is fetched once, when it changes.
  const check = async () => {
    const version = await redis.hget(key, 'version');
    if (version === null) {
      // Redis lost it (restarted empty): store the rules in force again, for every process.
      current = await writeRules(redis, key, current!.rules, current!.source);
      args = ruleArgs(current);
      logger.warn({ version: current.version }, 'the rule set was gone from Redis; stored the one in force again');
      return;
    }
    if (Number(version) === current!.version) return;
    const next = await readRules(redis, key);
    if (next === undefined || next.version === current!.version) return;
    current = next;
    args = ruleArgs(next);
    logger.info({ version: next.version, source: next.source, rules: next.rules }, `rule set v${next.version} now in force`);
  };
  const poll = setInterval(() => {
    check().then(
      () => (failing = false),
      (error: Error) => {
        if (!failing) logger.warn({ err: error.message }, 'cannot read the rule set; keeping the rules in force');
        failing = true;
      },
    );
  }, RULES_POLL_MS);
  poll.unref();
  return {
    current: () => current!,
    args: () => args,
    stop: () => clearInterval(poll),
  };
}
