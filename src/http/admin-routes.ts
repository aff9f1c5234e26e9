import { createHash, timingSafeEqual } from 'node:crypto';
import express, { Router, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import type { BlacklistAdmin } from '../admin/blacklist-admin.js';
import { parseBanRequest, type Ban } from '../domain/ban.js';
import { fieldProblems } from '../domain/field-problems.js';
import { canonicalIp } from '../domain/ip.js';
import { BlacklistFullError } from '../redis/blacklist.js';
import type { Logger } from 'pino';
import { sendError } from './errors.js';

export const ADMIN_PATH = '/admin/blacklist';

export const pageSchema = z.object({
  offset: z.string().regex(/^\d{1,9}$/, 'offset must be a whole number').transform(Number).default(0),
  limit: z
    .string()
    .regex(/^\d{1,4}$/, 'limit must be a whole number from 1 to 500')
    .transform(Number)
    .pipe(z.number().min(1, 'limit must be a whole number from 1 to 500').max(500, 'limit must be a whole number from 1 to 500'))
    .default(50),
});

/**
 * `/admin/blacklist`: add, remove, get and list bans, behind `Authorization: Bearer <ADMIN_TOKEN>`.
 * Without a token configured the admin API is off and says so, rather than open.
 */
export function adminRouter(admin: BlacklistAdmin | undefined, token: string | undefined, logger: Logger): Router {
  const router = Router();
  if (admin === undefined || token === undefined) {
    router.use(ADMIN_PATH, (_req, res) => {
      sendError(res, 404, { error: 'admin_disabled', message: 'the admin API is off: set ADMIN_TOKEN to turn it on' });
    });
    return router;
  }

  router.use(ADMIN_PATH, requireBearer(token), express.json({ limit: 16 * 1024, type: () => true, strict: false }));

  router.post(ADMIN_PATH, async (req, res) => {
    const parsed = parseBanRequest(req.body);
    if (!parsed.ok) return sendError(res, 400, { error: 'invalid_ban', message: 'the ban has invalid fields', issues: parsed.problems });
    await answer(res, logger, async () => {
      const { ban, alreadyBlocked, replaced } = await admin.add(parsed.request, 'admin-api');
      res.status(replaced ? 200 : 201).json({ ...banBody(ban), blocked: true, already_blocked: alreadyBlocked, replaced });
    });
  });

  router.get(ADMIN_PATH, async (req, res) => {
    const parsed = pageSchema.safeParse(req.query);
    if (!parsed.success) {
      return sendError(res, 400, { error: 'invalid_query', message: 'the page has invalid parameters', issues: fieldProblems(parsed.error.issues, '(query)') });
    }
    const { offset, limit } = parsed.data;
    await answer(res, logger, async () => {
      const page = await admin.list(offset, limit);
      res.json({ items: page.bans.map(banBody), total: page.total, offset, limit });
    });
  });

  router.get(`${ADMIN_PATH}/:ip`, withIp(logger, async (ip, res) => {
    const status = await admin.status(ip);
    if (!status.blocked && status.entry === null) return sendError(res, 404, { error: 'not_found', message: `${ip} is not blacklisted` });
    res.json({ ip, blocked: status.blocked, entry: status.entry && banBody(status.entry) });
  }));

  router.delete(`${ADMIN_PATH}/:ip`, withIp(logger, async (ip, res) => {
    const { unblocked, entryRemoved } = await admin.remove(ip);
    if (!unblocked && !entryRemoved) return sendError(res, 404, { error: 'not_found', message: `${ip} is not blacklisted` });
    res.json({ ip, unblocked, entry_removed: entryRemoved });
  }));

  return router;
}

/** Compares digests, so that neither the token's content nor its length leaks through timing. */
function requireBearer(token: string): RequestHandler {
  const expected = createHash('sha256').update(token).digest();
  return (req, res, next) => {
    const match = /^Bearer (.+)$/.exec(req.get('authorization') ?? '');
    const given = createHash('sha256').update(match?.[1] ?? '').digest();
    if (match && timingSafeEqual(given, expected)) return next();
    res.set('WWW-Authenticate', 'Bearer');
    sendError(res, 401, { error: 'unauthorized', message: 'the admin API needs Authorization: Bearer <ADMIN_TOKEN>' });
  };
}

function withIp(logger: Logger, handle: (ip: string, res: Response) => Promise<void>): RequestHandler<{ ip: string }> {
  return async (req, res) => {
    const ip = canonicalIp(req.params.ip);
    if (ip === undefined) {
      return sendError(res, 400, { error: 'invalid_ip', message: 'ip must be an IPv4 or IPv6 address', issues: [{ path: 'ip', message: 'ip must be an IPv4 or IPv6 address' }] });
    }
    await answer(res, logger, () => handle(ip, res));
  };
}

/** Redis trouble is a 503 as on the click path; a full cuckoo filter is the operator's to fix. */
async function answer(res: Response, logger: Logger, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (error instanceof BlacklistFullError) return sendError(res, 507, { error: 'blacklist_full', message: error.message });
    logger.warn({ err: error }, 'admin request failed');
    sendError(res, 503, { error: 'redis_unavailable', message: 'the blacklist could not be changed or read because Redis is unavailable' });
  }
}

function banBody(ban: Ban) {
  return { ip: ban.ip, reason: ban.reason, source: ban.source, added_at: ban.addedAt, expires_at: ban.expiresAt };
}
