import type { Request, RequestHandler, Response } from 'express';
import { ReplyError } from 'ioredis';
import type { Logger } from 'pino';
import { parseClick, type Click } from '../domain/click.js';
import { statusOf, type FraudType } from '../domain/verdict.js';
import type { ClickStore } from '../redis/click-store.js';
import { sendError } from './errors.js';

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
  degraded?: true;
}

export function clickRoute({ clicks, failMode, logger }: { clicks: ClickStore; failMode: FailMode; logger: Logger }): RequestHandler {
  return async (req, res) => {
    const parsed = parseClick(req.body);
    if (!parsed.ok) {
      return sendError(res, 400, { error: 'invalid_click', message: 'the click has invalid fields', issues: parsed.problems });
    }
    const click = parsed.click;
    let verdict;
    try {
      verdict = await clicks.decide(click);
    } catch (error) {
      // An error Redis answered (wrong key type, a script bug) is ours to fix; a lost or slow
      // connection is already logged once by the client and would flood the log per click.
      if (error instanceof ReplyError) logger.error({ err: error }, 'click check failed in Redis');
      else logger.debug({ err: error }, 'click check failed');
      if (failMode === 'open') return sendDecision(req, res, degradedDecision(click));
      return sendError(res, 503, {
        error: 'redis_unavailable',
        message: 'the click could not be decided because Redis is unavailable; retry with the same transaction_id',
      });
    }
    sendDecision(req, res, {
      transaction_id: click.transaction_id,
      device_id: click.device_id,
      ip: click.ip,
      status: statusOf(verdict.fraudType),
      fraud_type: verdict.fraudType,
      ts: verdict.ts,
      stream_id: verdict.streamId,
      duplicate: verdict.duplicate,
    });
  };
}

/** FAIL_MODE=open: let the click through, marked, and count it nowhere. */
function degradedDecision(click: Click): DecisionBody {
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

/** JSON by default; the bare fraud type for `Accept: text/plain`, as the article's curl shows. */
function sendDecision(req: Request, res: Response, body: DecisionBody): void {
  if (req.accepts(['application/json', 'text/plain']) === 'text/plain') res.type('text/plain').send(body.fraud_type);
  else res.json(body);
}
