import { Router, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import type { BlacklistAdmin } from '../admin/blacklist-admin.js';
import { parseBanRequest, type Ban } from '../domain/ban.js';
import { fieldProblems } from '../domain/field-problems.js';
import type { AllowlistAdmin, AllowEntry } from '../admin/allowlist-admin.js';
import type { RulesAdmin } from '../admin/rules-admin.js';
import { MAX_REASON_LENGTH } from '../domain/ban.js';
import { MAX_ID_LENGTH } from '../domain/click.js';
import { canonicalAddressOrRange, ipOrRangeField } from '../domain/ip.js';
import { parseRuleSet, type VersionedRuleSet } from '../domain/rules.js';
import { textField } from '../domain/text.js';
import { BlacklistFullError, NotEnumerableError, type NonCanonicalPage } from '../redis/blacklist.js';
import type { Logger } from 'pino';
import { sendError } from './errors.js';
import { jsonBody } from './json-body.js';
import { matchesSecret, secretDigest } from './secret-match.js';

export const ADMIN_PATH = '/admin/blacklist';
export const ALLOWLIST_PATH = '/admin/allowlist';
export const RULES_PATH = '/admin/rules';

/** What the admin API manages. */
export interface AdminServices {
  blacklist: BlacklistAdmin;
  allowlist: AllowlistAdmin;
  rules: RulesAdmin;
}

export const allowRequestSchema = z
  .object(
    {
      ip: ipOrRangeField.optional(),
      device_id: textField('device_id', MAX_ID_LENGTH).optional(),
      reason: textField('reason', MAX_REASON_LENGTH),
    },
    { error: 'body must be a JSON object with ip or device_id, and reason' },
  )
  .strict()
  .refine((body) => (body.ip === undefined) !== (body.device_id === undefined), { message: 'give one of ip (an address or range) and device_id', path: ['ip'] });

export const pageSchema = z.object({
  offset: z.string().regex(/^\d{1,9}$/, 'offset must be a whole number').transform(Number).default(0),
  limit: z
    .string()
    .regex(/^\d{1,4}$/, 'limit must be a whole number from 1 to 500')
    .transform(Number)
    .pipe(z.number().min(1, 'limit must be a whole number from 1 to 500').max(500, 'limit must be a whole number from 1 to 500'))
    .default(50),
});

const cursorSchema = z.object({
  cursor: z.string().regex(/^\d{1,20}$/, 'cursor must be the next_cursor of an earlier answer').optional(),
});

/**
 * The admin API, behind `Authorization: Bearer <ADMIN_TOKEN>`: `/admin/blacklist` (add, remove, get
 * and list bans of addresses and ranges), `/admin/allowlist` and `/admin/rules`. Without a token
 * configured the admin API is off and says so, rather than open.
 */
export function adminRouter(services: AdminServices | undefined, token: string | undefined, logger: Logger): Router {
  const router = Router();
  if (services === undefined || token === undefined) {
    router.use([ADMIN_PATH, ALLOWLIST_PATH, RULES_PATH], (_req, res) => {
      sendError(res, 404, { error: 'admin_disabled', message: 'the admin API is off: set ADMIN_TOKEN to turn it on' });
    });
    return router;
  }
  const admin = services.blacklist;

  router.use([ADMIN_PATH, ALLOWLIST_PATH, RULES_PATH], requireBearer(token), jsonBody(16 * 1024));
  allowlistRoutes(router, services.allowlist, logger);
  rulesRoutes(router, services.rules, logger);

  router.post(ADMIN_PATH, async (req, res) => {
    const parsed = parseBanRequest(req.body);
    if (!parsed.ok) return sendError(res, 400, { error: 'invalid_ban', message: 'the ban has invalid fields', issues: parsed.problems });
    await answer(res, logger, async () => {
      const { ban, alreadyBlocked, replaced } = await admin.add(parsed.value, 'admin-api');
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

  // Before the routes of one address, which would take `non-canonical` for one (and refuse it).
  router.get(`${ADMIN_PATH}/non-canonical`, nonCanonicalRoute(logger, 'items', (cursor) => admin.nonCanonical(cursor)));
  router.post(`${ADMIN_PATH}/non-canonical/fix`, nonCanonicalRoute(logger, 'fixed', (cursor) => admin.fixNonCanonical(cursor)));

  router.get(`${ADMIN_PATH}/:ip`, withIp(logger, async (ip, res) => {
    const status = await admin.status(ip);
    if (!status.blocked && status.entry === null) return sendError(res, 404, { error: 'not_found', message: `${ip} is not blacklisted` });
    res.json({ ip, blocked: status.blocked, entry: status.entry && banBody(status.entry) });
  }));

  // The address as written in the path goes too: that is how an entry added with redis-cli in
  // another spelling (`2001:DB8::9`), which blocks nothing, is removed.
  router.delete(`${ADMIN_PATH}/:ip`, withIp(logger, async (ip, res, spelling) => {
    const { unblocked, entryRemoved, spellingRemoved } = await admin.remove(ip, spelling);
    if (!unblocked && !entryRemoved && !spellingRemoved) return sendError(res, 404, { error: 'not_found', message: `${spelling} is not blacklisted` });
    res.json({ ip, unblocked, entry_removed: entryRemoved, ...(spellingRemoved === undefined ? {} : { spelling, spelling_removed: spellingRemoved }) });
  }));

  return router;
}

function requireBearer(token: string): RequestHandler {
  const expected = secretDigest(token);
  return (req, res, next) => {
    const match = /^Bearer (.+)$/.exec(req.get('authorization') ?? '');
    if (match && matchesSecret(match[1]!, expected)) return next();
    res.set('WWW-Authenticate', 'Bearer');
    sendError(res, 401, { error: 'unauthorized', message: 'the admin API needs Authorization: Bearer <ADMIN_TOKEN>' });
  };
}

/** Hands the route the canonical address, and the spelling the path gave it in. */
function withIp(logger: Logger, handle: (ip: string, res: Response, spelling: string) => Promise<void>): RequestHandler<{ ip: string }> {
  return async (req, res) => {
    const ip = canonicalAddressOrRange(req.params.ip);
    if (ip === undefined) {
      const message = 'ip must be an IPv4 or IPv6 address, or a range such as 203.0.113.0/24 (with its slash as %2F)';
      return sendError(res, 400, { error: 'invalid_ip', message, issues: [{ path: 'ip', message }] });
    }
    await answer(res, logger, () => handle(ip, res, req.params.ip));
  };
}

/**
 * Entries of the set blacklist that are not canonical, a bounded page at a time: `?cursor=` takes
 * the `next_cursor` of the answer before (null once the whole set has been looked at).
 */
function nonCanonicalRoute(logger: Logger, listName: 'items' | 'fixed', work: (cursor: string | undefined) => Promise<NonCanonicalPage>): RequestHandler {
  return async (req, res) => {
    const parsed = cursorSchema.safeParse(req.query);
    if (!parsed.success) {
      return sendError(res, 400, { error: 'invalid_query', message: 'the query has invalid parameters', issues: fieldProblems(parsed.error.issues, '(query)') });
    }
    await answer(res, logger, async () => {
      const { entries, scanned, nextCursor } = await work(parsed.data.cursor);
      res.json({ [listName]: entries.map(({ raw, canonical }) => ({ raw, canonical })), scanned, next_cursor: nextCursor ?? null });
    });
  };
}

/** Redis trouble is a 503 as on the click path; a full cuckoo filter is the operator's to fix. */
async function answer(res: Response, logger: Logger, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (error instanceof BlacklistFullError) return sendError(res, 507, { error: 'blacklist_full', message: error.message });
    if (error instanceof NotEnumerableError) return sendError(res, 409, { error: 'not_enumerable', message: error.message });
    logger.warn({ err: error }, 'admin request failed');
    sendError(res, 503, { error: 'redis_unavailable', message: 'the blacklist could not be changed or read because Redis is unavailable' });
  }
}

function banBody(ban: Ban) {
  return { ip: ban.ip, reason: ban.reason, source: ban.source, added_at: ban.addedAt, expires_at: ban.expiresAt };
}

/**
 * `/admin/allowlist`: addresses and ranges (`/addresses`), and devices (`/devices`), that win over
 * every rule.
 */
function allowlistRoutes(router: Router, allowlist: AllowlistAdmin, logger: Logger): void {
  router.post(ALLOWLIST_PATH, async (req, res) => {
    const parsed = allowRequestSchema.safeParse(req.body);
    if (!parsed.success) {
      return sendError(res, 400, { error: 'invalid_allow', message: 'the allowlist entry has invalid fields', issues: fieldProblems(parsed.error.issues, '(body)') });
    }
    const { ip, device_id: deviceId, reason } = parsed.data;
    await answer(res, logger, async () => {
      const { entry, replaced } = await allowlist.add(ip === undefined ? 'device' : 'address', (ip ?? deviceId)!, reason);
      res.status(replaced ? 200 : 201).json({ ...allowBody(entry), replaced });
    });
  });
  for (const [path, kind] of [['addresses', 'address'], ['devices', 'device']] as const) {
    router.get(`${ALLOWLIST_PATH}/${path}`, async (req, res) => {
      const parsed = cursorSchema.safeParse(req.query);
      if (!parsed.success) {
        return sendError(res, 400, { error: 'invalid_query', message: 'the query has invalid parameters', issues: fieldProblems(parsed.error.issues, '(query)') });
      }
      await answer(res, logger, async () => {
        const page = await allowlist.list(kind, parsed.data.cursor);
        res.json({ items: page.entries.map(allowBody), next_cursor: page.nextCursor ?? null });
      });
    });
    router.delete(`${ALLOWLIST_PATH}/${path}/:value`, async (req, res) => {
      const value = kind === 'device' ? req.params.value : canonicalAddressOrRange(req.params.value);
      if (value === undefined) {
        const message = 'an address, or a range such as 203.0.113.0/24 (with its slash as %2F)';
        return sendError(res, 400, { error: 'invalid_ip', message, issues: [{ path: 'ip', message }] });
      }
      await answer(res, logger, async () => {
        if (!(await allowlist.remove(kind, value))) return sendError(res, 404, { error: 'not_found', message: `${value} is not on the allowlist` });
        res.json({ value, removed: true });
      });
    });
  }
}

/**
 * `/admin/rules`: the rule set in force (GET), a new one (PUT: every rule it leaves out takes its
 * default; an invalid one is refused with every problem named and replaces nothing), and back to
 * the environment's (DELETE). In force in every API process within about a second.
 */
function rulesRoutes(router: Router, rules: RulesAdmin, logger: Logger): void {
  router.get(RULES_PATH, async (_req, res) => {
    await answer(res, logger, async () => {
      const current = await rules.current();
      if (current === undefined) return sendError(res, 404, { error: 'not_found', message: 'no rule set is stored: an API process stores one when it starts' });
      res.json(rulesBody(current));
    });
  });
  router.put(RULES_PATH, async (req, res) => {
    const parsed = parseRuleSet(req.body);
    if (!parsed.ok) return sendError(res, 400, { error: 'invalid_rules', message: 'the rule set has invalid fields; the rules in force are unchanged', issues: parsed.problems });
    await answer(res, logger, async () => void res.json(rulesBody(await rules.replace(parsed.rules))));
  });
  router.delete(RULES_PATH, async (_req, res) => {
    await answer(res, logger, async () => void res.json(rulesBody(await rules.reset())));
  });
}

function allowBody(entry: AllowEntry) {
  return { kind: entry.kind, value: entry.value, reason: entry.reason, added_at: entry.addedAt };
}

function rulesBody(rules: VersionedRuleSet) {
  return { version: rules.version, source: rules.source, updated_at: rules.updatedAt, rules: rules.rules };
}
