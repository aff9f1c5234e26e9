import { MAX_ID_LENGTH } from './click.js';
import { MAX_IP_LENGTH } from './ip.js';
import { orderedHit, RULES, type RuleHit, type RuleName } from './rules.js';
import { characterCount } from './text.js';
import { isFraudType, statusOf, type FraudType, type Status } from './verdict.js';

/** What the counters and the top offenders need from a decision stream entry. */
export interface CountableDecision {
  fraudType: FraudType;
  /** Decision time in ms. */
  ts: number;
  /** Rules that fired in shadow mode: counted in series of their own. */
  shadow: RuleName[];
  deviceId: string;
  ip: string;
}

export type DecisionEntryRead = { ok: true; decision: CountableDecision } | { ok: false; problem: string };

/**
 * The fields the check scripts write to a decision stream entry: `transaction_id`, `device_id`,
 * `ip`, `status`, `fraud_type`, `ts` (the reference article's), `rules_version`, and when they
 * apply `reason` (JSON, the rule hit behind a fraud verdict), `shadow` (JSON, the hits of rules in
 * shadow mode) and `allowlisted` (`1`).
 */
function fieldsOf(fields: string[]): Map<string, string> {
  const text = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) text.set(fields[i]!, fields[i + 1]!);
  return text;
}

/** The hits of a `reason` or `shadow` field; undefined when it is not what the scripts write. */
function readHits(json: string | undefined): RuleHit[] | undefined {
  if (json === undefined) return [];
  try {
    const parsed: unknown = JSON.parse(json);
    const hits = Array.isArray(parsed) ? parsed : [parsed];
    return hits.every((hit) => typeof hit === 'object' && hit !== null && (RULES as readonly string[]).includes((hit as RuleHit).rule)) ? (hits as RuleHit[]).map(orderedHit) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads an entry's flat field list (`[name, value, ...]`, as XREADGROUP returns it). The API only
 * writes well-formed entries, but anything can XADD to a stream, and a malformed entry must be
 * named and set aside rather than counted as something.
 */
export function readDecisionEntry(fields: string[]): DecisionEntryRead {
  const text = fieldsOf(fields);
  const fraudType = text.get('fraud_type');
  const ts = text.get('ts');
  if (fraudType === undefined || !isFraudType(fraudType)) return { ok: false, problem: `unknown fraud_type ${JSON.stringify(fraudType ?? null)}` };
  if (ts === undefined || !/^\d{1,15}$/.test(ts)) return { ok: false, problem: `ts is not a time in ms: ${JSON.stringify(ts ?? null)}` };
  const shadow = readHits(text.get('shadow'));
  if (shadow === undefined) return { ok: false, problem: `shadow is not a list of rule hits: ${JSON.stringify(text.get('shadow'))}` };
  // The API writes both within its limits; anything longer would make every top-offenders entry of its minute as long.
  const [deviceId, ip] = [text.get('device_id'), text.get('ip')];
  if (deviceId === undefined || deviceId === '' || characterCount(deviceId, MAX_ID_LENGTH) > MAX_ID_LENGTH) {
    return { ok: false, problem: `device_id is not 1-${MAX_ID_LENGTH} characters: ${JSON.stringify(deviceId?.slice(0, 2 * MAX_ID_LENGTH) ?? null)}` };
  }
  if (ip === undefined || ip === '' || ip.length > MAX_IP_LENGTH) {
    return { ok: false, problem: `ip is not 1-${MAX_IP_LENGTH} characters: ${JSON.stringify(ip?.slice(0, 2 * MAX_IP_LENGTH) ?? null)}` };
  }
  return { ok: true, decision: { fraudType, ts: Number(ts), shadow: shadow.map((hit) => hit.rule), deviceId, ip } };
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
  reason?: RuleHit;
  shadow?: RuleHit[];
  allowlisted?: true;
  rules_version?: number;
}

/**
 * Reads a stream entry for the live feed; undefined for an entry the API did not write (anything
 * can XADD to a stream), which the feed skips rather than shows as something it is not.
 */
export function readLiveDecision(fields: string[]): LiveDecision | undefined {
  const read = readDecisionEntry(fields);
  if (!read.ok) return undefined;
  const text = fieldsOf(fields);
  const transaction_id = text.get('transaction_id');
  if (transaction_id === undefined) return undefined;
  const { fraudType, ts, deviceId: device_id, ip } = read.decision;
  const [reason] = readHits(text.get('reason')) ?? [];
  const shadow = readHits(text.get('shadow')) ?? [];
  const version = text.get('rules_version');
  return {
    transaction_id,
    device_id,
    ip,
    status: statusOf(fraudType),
    fraud_type: fraudType,
    ts,
    ...(reason ? { reason } : {}),
    ...(shadow.length > 0 ? { shadow } : {}),
    ...(text.get('allowlisted') === '1' ? { allowlisted: true as const } : {}),
    ...(version !== undefined && /^\d+$/.test(version) ? { rules_version: Number(version) } : {}),
  };
}
