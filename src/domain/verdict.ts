import { RULES, type RuleHit } from './rules.js';

/** Every verdict a click can get: clean, or the name of the rule that caught it. */
export const FRAUD_TYPES = ['clean', ...RULES] as const;
export type FraudType = (typeof FRAUD_TYPES)[number];
export type Status = 'clean' | 'fraud';

export function statusOf(fraudType: FraudType): Status {
  return fraudType === 'clean' ? 'clean' : 'fraud';
}

export function isFraudType(value: string): value is FraudType {
  return (FRAUD_TYPES as readonly string[]).includes(value);
}

/** What the decision store answers for one click. */
export interface RecordedVerdict {
  fraudType: FraudType;
  /** Decision time in ms, from the Redis server clock. */
  ts: number;
  /** Id of the decision's entry in the decision stream. */
  streamId: string;
  /** True when this (device, transaction) was already decided inside the window. */
  duplicate: boolean;
  /** The rule that gave a fraud verdict, with what it saw. */
  reason: RuleHit | undefined;
  /** Rules in shadow mode that fired: recorded, not enforced. */
  shadow: RuleHit[];
  /** The address or device is on the allowlist, which wins over every rule. */
  allowlisted: boolean;
  /** The version of the rule set that judged it. */
  rulesVersion: number;
}
