import express, { type Express, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { ClickStore } from '../redis/click-store.js';
import type { BlacklistAdmin } from '../admin/blacklist-admin.js';
import { VERSION } from '../version.js';
import { adminRouter } from './admin-routes.js';
import { apiDocs } from './api-docs.js';
import { batchRoute } from './batch-route.js';
import { clickRoute, type FailMode } from './click-route.js';
import { errorHandler, notFound } from './errors.js';
import { livePage } from './live-page.js';
import { statsRoute, type StatsRouteDependencies } from './stats-route.js';

export interface Readiness {
  ready: boolean;
  [detail: string]: unknown;
}

export interface AppDependencies {
  clicks: ClickStore;
  stats: StatsRouteDependencies;
  /** Undefined when the admin API is off (no ADMIN_TOKEN). */
  admin: { blacklist: BlacklistAdmin; token: string } | undefined;
  readiness: () => Promise<Readiness>;
  /** `GET /events`: the live page's server-sent events. */
  events: RequestHandler;
  failMode: FailMode;
  batchMaxClicks: number;
  logger: Logger;
}

export const MAX_BODY_BYTES = 16 * 1024;

export function createApp({ clicks, stats, admin, readiness, events, failMode, batchMaxClicks, logger }: AppDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  // Express would hash every response body into an ETag, POSTs included; no answer here is cached.
  app.disable('etag');

  // The click routes first: every click would otherwise be matched against each route above it.
  // Any Content-Type is read as JSON: tracking pixels post with navigator.sendBeacon (text/plain)
  // and `curl -d` sends form encoding, yet both carry the same JSON click.
  // Not strict: `null` or `5` is valid JSON, just not a click, and the schema says so.
  const json = express.json({ limit: MAX_BODY_BYTES, type: () => true, strict: false });
  app.post('/', json, clickRoute({ clicks, failMode, logger }));
  // A click is well under 512 bytes of JSON even with ids at their 128-character limit.
  const batchJson = express.json({ limit: Math.max(MAX_BODY_BYTES, batchMaxClicks * 512), type: () => true, strict: false });
  app.post('/batch', batchJson, batchRoute({ clicks, maxClicks: batchMaxClicks, failMode, logger }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', version: VERSION });
  });
  app.get('/readyz', async (_req, res) => {
    const state = await readiness();
    res.status(state.ready ? 200 : 503).json(state);
  });
  app.get('/stats', statsRoute(stats));
  app.use(adminRouter(admin?.blacklist, admin?.token, logger));
  app.get('/events', events);
  app.use(apiDocs({ version: VERSION, batchMaxClicks }));
  app.use(livePage());

  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
