import type { ErrorRequestHandler, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { FieldProblem } from '../domain/field-problems.js';

export interface ErrorBody {
  error: string;
  message: string;
  issues?: FieldProblem[];
}

export function sendError(res: Response, status: number, body: ErrorBody): void {
  res.status(status).json(body);
}

/** Errors body-parser raises for a body it will not read, by its `type`. */
type BodyError = Error & { limit?: number };

const BODY_ERRORS: Record<string, { status: number; error: string; message: (err: BodyError) => string }> = {
  'entity.parse.failed': { status: 400, error: 'invalid_json', message: (err) => `body is not valid JSON: ${err.message}` },
  'entity.too.large': { status: 413, error: 'body_too_large', message: (err) => `body must be at most ${Math.floor((err.limit ?? 0) / 1024)} KiB` },
  'encoding.unsupported': { status: 415, error: 'unsupported_encoding', message: (err) => err.message },
  'charset.unsupported': { status: 415, error: 'unsupported_charset', message: (err) => err.message },
  'entity.invalid_utf8': { status: 400, error: 'invalid_utf8', message: (err) => err.message },
  'request.aborted': { status: 400, error: 'request_aborted', message: () => 'the request body was cut off' },
  'request.size.invalid': { status: 400, error: 'invalid_body_size', message: () => 'body length does not match Content-Length' },
};

export const notFound: RequestHandler = (req, res) => {
  sendError(res, 404, { error: 'not_found', message: `no route for ${req.method} ${req.path}` });
};

/** Every failure leaves as JSON; a fault is logged with its stack but never shows it to the client. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: Error & { type?: string; status?: number; expose?: boolean }, req, res, next) => {
    if (res.headersSent) return next(err);
    const known = err.type === undefined ? undefined : BODY_ERRORS[err.type];
    if (known) return sendError(res, known.status, { error: known.error, message: known.message(err) });
    if (err.expose && err.status !== undefined && err.status >= 400 && err.status < 500) {
      return sendError(res, err.status, { error: 'bad_request', message: err.message });
    }
    logger.error({ err, method: req.method, path: req.path }, 'request failed');
    sendError(res, 500, { error: 'internal_error', message: 'internal error' });
  };
}
