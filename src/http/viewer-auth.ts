import type { RequestHandler } from 'express';
import { sendError } from './errors.js';
import { matchesSecret, secretDigest } from './secret-match.js';

/** The one user name of the read-only views; VIEWER_PASSWORD is its password. */
export const VIEWER_USER = 'viewer';
const CHALLENGE = `Basic realm="click-fraud live view (user ${VIEWER_USER})", charset="UTF-8"`;

/**
 * Guards the read-only views that show every click's address and device (the live page, its
 * event stream, /stats, /offenders) with HTTP basic auth, which browsers, and EventSource with
 * them, answer by themselves: the browser asks once and sends the same credentials with the
 * page's own requests. Without a password the views are open, and this lets every request through.
 */
export function viewerAuth(password: string | undefined): RequestHandler {
  if (password === undefined) return (_req, _res, next) => next();
  const expected = secretDigest(`${VIEWER_USER}:${password}`);
  return (req, res, next) => {
    // The scheme is case-insensitive (RFC 9110); the credentials are `user:password` in base64.
    const match = /^basic +([A-Za-z0-9+/]+=*) *$/i.exec(req.get('authorization') ?? '');
    const given = match ? Buffer.from(match[1]!, 'base64').toString('utf8') : '';
    if (match && matchesSecret(given, expected)) return next();
    res.set('WWW-Authenticate', CHALLENGE);
    sendError(res, 401, { error: 'unauthorized', message: `this view needs the viewer password (HTTP basic auth, user "${VIEWER_USER}")` });
  };
}
