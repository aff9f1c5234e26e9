import { isFraudType, statusOf, type FraudType, type Status } from './verdict.js';

/** What the counters need from a decision stream entry. */
export interface CountableDecision {
  fraudType: FraudType;
  /** Decision time in ms. */
  ts: number;
}

export type DecisionEntryRead = { ok: true; decision: CountableDecision } | { ok: false; problem: string };

/**
 * Reads an entry's flat field list (`[name, value, ...]`, as XREADGROUP returns it). The API only
 * writes well-formed entries, but anything can XADD to a stream, and a malformed entry must be
 * named and set aside rather than counted as something.
 */
export function readDecisionEntry(fields: string[]): DecisionEntryRead {
  let fraudType: string | undefined;
  let ts: string | undefined;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] === 'fraud_type') fraudType = fields[i + 1];
    else if (fields[i] === 'ts') ts = fields[i + 1];
  }
  if (fraudType === undefined || !isFraudType(fraudType)) return { ok: false, problem: `unknown fraud_type ${JSON.stringify(fraudType ?? null)}` };
  if (ts === undefined || !/^\d{1,15}$/.test(ts)) return { ok: false, problem: `ts is not a time in ms: ${JSON.stringify(ts ?? null)}` };
  return { ok: true, decision: { fraudType, ts: Number(ts) } };
}

/** Start of the time bucket of `bucketMs` that holds `ts`. */
export function bucketStart(ts: number, bucketMs: number): number {
  return ts - (ts % bucketMs);
}

/** A decision as the live page receives it: the fields the API writes to the stream. */
export interface LiveDecision {
  transaction_id: string;
  device_id: string;
  ip: string;
  status: Status;
  fraud_type: FraudType;
  /** Decision time in ms, from the Redis server clock. */
  ts: number;
}

/**
 * Reads a stream entry for the live feed; undefined for an entry the API did not write (anything
 * can XADD to a stream), which the feed skips rather than shows as something it is not.
 */
export function readLiveDecision(fields: string[]): LiveDecision | undefined {
  const read = readDecisionEntry(fields);
  if (!read.ok) return undefined;
  const text = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) text.set(fields[i]!, fields[i + 1]!);
  const [transaction_id, device_id, ip] = [text.get('transaction_id'), text.get('device_id'), text.get('ip')];
  if (transaction_id === undefined || device_id === undefined || ip === undefined) return undefined;
  const { fraudType, ts } = read.decision;
  return { transaction_id, device_id, ip, status: statusOf(fraudType), fraud_type: fraudType, ts };
}
