import type { RequestHandler } from 'express';
import type { Logger } from 'pino';
import { parseClick, type Click } from '../domain/click.js';
import type { FieldProblem } from '../domain/field-problems.js';
import type { ClickStore } from '../redis/click-store.js';
import { sendJson } from './answer.js';
import { decisionBody, degradedDecision, logCheckFailure, REDIS_UNAVAILABLE, type DecisionBody, type FailMode } from './click-route.js';
import { readJsonBody } from './json-body.js';

type BatchItem = DecisionBody | { index: number; error: string; message: string; issues?: FieldProblem[] };

/**
 * `POST /batch` with `{"clicks": [...]}`: every click decided exactly as `POST /` decides it, in
 * order, in one Redis round trip. Each item answers for itself: a bad click gets its own error
 * entry and the good ones are still decided.
 */
export interface BatchRouteSettings {
  clicks: ClickStore;
  maxClicks: number;
  /** Largest body read (see batchBodyLimit in app.ts); a larger one is a 413. */
  maxBodyBytes: number;
  failMode: FailMode;
  logger: Logger;
}

/** Reads its own body and writes its own answer, as `POST /` does (see click-route.ts). */
export function batchRoute({ clicks, maxClicks, maxBodyBytes, failMode, logger }: BatchRouteSettings): RequestHandler {
  return async (req, res) => {
    const body = await readJsonBody(req, maxBodyBytes);
    const items: unknown = (body as { clicks?: unknown } | undefined)?.clicks;
    if (!Array.isArray(items)) {
      return sendJson(res, 400, {
        error: 'invalid_batch',
        message: 'body must be a JSON object with a clicks array',
        issues: [{ path: 'clicks', message: 'clicks must be an array of clicks' }],
      });
    }
    if (items.length > maxClicks) {
      return sendJson(res, 413, {
        error: 'batch_too_large',
        message: `a batch holds at most ${maxClicks} clicks`,
        issues: [{ path: 'clicks', message: `clicks must hold at most ${maxClicks} clicks, not ${items.length}` }],
      });
    }

    const results: BatchItem[] = new Array(items.length);
    const valid: Array<{ index: number; click: Click }> = [];
    items.forEach((item, index) => {
      const parsed = parseClick(item);
      if (parsed.ok) valid.push({ index, click: parsed.click });
      else results[index] = { index, error: 'invalid_click', message: 'the click has invalid fields', issues: parsed.problems };
    });

    let failed = 0;
    const verdicts = valid.length === 0 ? [] : await clicks.decideMany(valid.map(({ click }) => click)).catch((error: Error) => valid.map(() => error));
    verdicts.forEach((verdict, i) => {
      const { index, click } = valid[i]!;
      if (!(verdict instanceof Error)) return void (results[index] = decisionBody(click, verdict));
      logCheckFailure(logger, verdict);
      failed += 1;
      results[index] = failMode === 'open' ? degradedDecision(click) : { index, ...REDIS_UNAVAILABLE };
    });
    // Nothing decided because Redis is away: the whole batch is unavailable, as a single click would be.
    if (failMode === 'closed' && failed > 0 && failed === valid.length) return sendJson(res, 503, REDIS_UNAVAILABLE);
    sendJson(res, 200, { results });
  };
}
