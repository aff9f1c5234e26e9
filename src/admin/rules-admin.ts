import type { RuleSet, VersionedRuleSet } from '../domain/rules.js';
import type { RedisClient } from '../redis/connection.js';
import { readRules, writeRules } from '../redis/rule-store.js';

/**
 * The rule set, read and replaced the same way by the admin API and the CLI. A replacement is
 * stored as the next version and is in force in every API process within about a second
 * (RULES_POLL_MS); an invalid one never gets this far (the callers validate with parseRuleSet).
 */
export interface RulesAdmin {
  current(): Promise<VersionedRuleSet | undefined>;
  replace(rules: RuleSet): Promise<VersionedRuleSet>;
  /** Back to the rule set of the environment (RULES, CLICK_SPAM_*) this process was started with. */
  reset(): Promise<VersionedRuleSet>;
  /** Puts back a rule set read before, with its source, as the next version: a tool that changed the rules for a while does, when done. */
  restore(previous: VersionedRuleSet): Promise<VersionedRuleSet>;
}

export function createRulesAdmin(redis: RedisClient, key: string, environment: RuleSet): RulesAdmin {
  return {
    current: () => readRules(redis, key),
    replace: (rules) => writeRules(redis, key, rules, 'admin'),
    reset: () => writeRules(redis, key, environment, 'environment'),
    restore: (previous) => writeRules(redis, key, previous.rules, previous.source),
  };
}
