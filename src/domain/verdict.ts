export const FRAUD_TYPES = ['clean', 'ip_blacklist', 'click_spam'] as const;
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
}
