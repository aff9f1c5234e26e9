import type { Request, RequestHandler, Response } from 'express';
import { ReplyError } from 'ioredis';
import type { Logger } from 'pino';
import { parseClick, type Click } from '../domain/click.js';
import type { RuleHit } from '../domain/rules.js';
import { statusOf, type FraudType, type RecordedVerdict } from '../domain/verdict.js';
import type { ClickStore } from '../redis/click-store.js';
import { sendJson, sendText } from './answer.js';
import { readJsonBody } from './json-body.js';

export type FailMode = 'closed' | 'open';

/** The answer to `POST /`, field names as in the reference article's contract. */
export interface DecisionBody {
  transaction_id: string;
  device_id: string;
  ip: string;
  status: 'clean' | 'fraud';
  fraud_type: FraudType;
  ts: number;
  stream_id: string | null;
  duplicate: boolean;
  /** A fraud verdict's rule, with what it saw against its limit. */
  reason?: RuleHit;
  /** Rules in shadow mode that fired: recorded, not enforced. */
  shadow?: RuleHit[];
  /** On the allowlist, which wins over every rule. */
  allowlisted?: true;
  /** The rule-set version that judged it. */
  rules_version?: number;
  degraded?: true;
}

export interface ClickRouteSettings {
  clicks: ClickStore;
  failMode: FailMode;
  /** Largest body read (MAX_BODY_BYTES); a larger one is a 413. */
  maxBodyBytes: number;
  logger: Logger;
}

/**
 * `POST /`: reads its own body and writes its own answer (see json-body.ts and answer.ts), one
 * Express route with nothing in front of it. A body refused while reading is thrown to the error
 * handler, which answers it as for every route.
 */
export function clickRoute({ clicks, failMode, maxBodyBytes, logger }: ClickRouteSettings): RequestHandler {
  return async (req, res) => {
    const parsed = parseClick(await readJsonBody(req, maxBodyBytes));
    if (!parsed.ok) {
      return sendJson(res, 400, { error: 'invalid_click', message: 'the click has invalid fields', issues: parsed.problems });
    }
    const click = parsed.click;
    let verdict;
    try {
      verdict = await clicks.decide(click);
    } catch (error) {
      logCheckFailure(logger, error);
      if (failMode === 'open') return sendDecision(req, res, degradedDecision(click));
      return sendJson(res, 503, REDIS_UNAVAILABLE);
    }
    sendDecision(req, res, decisionBody(click, verdict));
  };
}

export function decisionBody(click: Click, verdict: RecordedVerdict): DecisionBody {
  const body: DecisionBody = {
    transaction_id: click.transaction_id,
    device_id: click.device_id,
    ip: click.ip,
    status: statusOf(verdict.fraudType),
    fraud_type: verdict.fraudType,
    ts: verdict.ts,
    stream_id: verdict.streamId,
    duplicate: verdict.duplicate,
  };
  // The optional fields only where they say something, in this order (the JSON's).
  if (verdict.reason) body.reason = verdict.reason;
  if (verdict.shadow.length > 0) body.shadow = verdict.shadow;
  if (verdict.allowlisted) body.allowlisted = true;
  body.rules_version = verdict.rulesVersion;
  return body;
}

/** FAIL_MODE=open: let the click through, marked, and count it nowhere. */
export function degradedDecision(click: Click): DecisionBody {
  return {
    ...click,
    status: 'clean',
    fraud_type: 'clean',
    ts: Date.now(),
    stream_id: null,
    duplicate: false,
    degraded: true,
  };
}

export const REDIS_UNAVAILABLE = {
  error: 'redis_unavailable',
  message: 'the click could not be decided because Redis is unavailable; retry with the same transaction_id',
};

/**
 * An error Redis answered (wrong key type, a script bug) is ours to fix; a lost or slow connection
 * is already logged once by the client and would flood the log per click.
 */
export function logCheckFailure(logger: Logger, error: unknown): void {
  if (error instanceof ReplyError) logger.error({ err: error }, 'click check failed in Redis');
  else logger.debug({ err: error }, 'click check failed');
}

/** JSON by default; the bare fraud type for `Accept: text/plain`, as the article's curl shows. */
function sendDecision(req: Request, res: Response, body: DecisionBody): void {
  // Content negotiation only when text/plain is mentioned at all: most clicks carry no such Accept.
  const accept = req.headers.accept;
  if (accept?.includes('text/plain') && req.accepts(['application/json', 'text/plain']) === 'text/plain') sendText(res, 200, body.fraud_type);
  else sendJson(res, 200, body);
}
