import express, { type Express, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { ClickStore } from '../redis/click-store.js';
import { MAX_CLICK_JSON_BYTES } from '../domain/click.js';
import { adminRouter, type AdminServices } from './admin-routes.js';
import { batchRoute } from './batch-route.js';
import { clickRoute, type FailMode } from './click-route.js';
import { errorHandler, notFound } from './errors.js';
import { jsonBody } from './json-body.js';
import { livePage } from './live-page.js';
import { offendersRoute, type OffendersRouteDependencies } from './offenders-route.js';
import { statsRoute, type StatsRouteDependencies } from './stats-route.js';
import { viewerAuth, VIEWER_USER } from './viewer-auth.js';

export interface Readiness {
  ready: boolean;
  [detail: string]: unknown;
}

export interface AppDependencies {
  clicks: ClickStore;
  stats: StatsRouteDependencies;
  offenders: OffendersRouteDependencies;
  /** Undefined when the admin API is off (no ADMIN_TOKEN). */
  admin: { services: AdminServices; token: string } | undefined;
  readiness: () => Promise<Readiness>;
  /** `GET /events`: the live page's server-sent events. */
  events: RequestHandler;
  failMode: FailMode;
  batchMaxClicks: number;
  /** Password of the read-only views (VIEWER_PASSWORD); undefined: they are open. */
  viewerPassword: string | undefined;
  logger: Logger;
}

export const MAX_BODY_BYTES = 16 * 1024;
/** Room in a batch body for `{"clicks": [...]}` and whatever other fields a sender adds around the clicks. */
const BATCH_ENVELOPE_BYTES = 1024;

/** Large enough for the largest valid batch, however its clicks are escaped (see MAX_CLICK_JSON_BYTES). */
export function batchBodyLimit(maxClicks: number): number {
  return Math.max(MAX_BODY_BYTES, maxClicks * MAX_CLICK_JSON_BYTES + BATCH_ENVELOPE_BYTES);
}

export function createApp({ clicks, stats, offenders, admin, readiness, events, failMode, batchMaxClicks, viewerPassword, logger }: AppDependencies): Express {
  const app = express();
  app.disable('x-powered-by');
  // Express would hash every response body into an ETag, POSTs included; no answer here is cached.
  app.disable('etag');

  // The click routes first: every click would otherwise be matched against each route above it.
  app.post('/', jsonBody(MAX_BODY_BYTES), clickRoute({ clicks, failMode, logger }));
  app.post('/batch', jsonBody(batchBodyLimit(batchMaxClicks)), batchRoute({ clicks, maxClicks: batchMaxClicks, failMode, logger }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const state = await readiness();
    res.status(state.ready ? 200 : 503).json(state);
  });
  // The views that show every click (address, device, verdict), the traffic's volume or its
  // heaviest sources, read by people; clicks, probes and the admin API (its own token) never need
  // the viewer password.
  const viewer = viewerAuth(viewerPassword);
  if (viewerPassword === undefined) logger.info('live page, /events, /stats and /offenders are open: set VIEWER_PASSWORD to require a password');
  else logger.info(`live page, /events, /stats and /offenders need VIEWER_PASSWORD (HTTP basic auth, user "${VIEWER_USER}")`);
  app.get('/stats', viewer, statsRoute(stats));
  app.get('/offenders', viewer, offendersRoute(offenders));
  app.use(adminRouter(admin?.services, admin?.token, logger));
  app.get('/events', viewer, events);
  app.use(livePage(viewer, { adminApi: admin !== undefined }));

  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
