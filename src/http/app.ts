import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type Request, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { ApiMetrics } from '../metrics.js';
import type { ClickStore } from '../redis/click-store.js';
import { MAX_CLICK_JSON_BYTES } from '../domain/click.js';
import { adminRouter, type AdminServices } from './admin-routes.js';
import { VERSION } from '../version.js';
import { apiDocs } from './api-docs.js';
import { batchRoute } from './batch-route.js';
import { clickRoute, type FailMode } from './click-route.js';
import { errorHandler, notFound } from './errors.js';
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
  metrics: ApiMetrics;
  /** `GET /metrics`: this process's metrics, or every API process's added up (API_PROCESSES > 1). */
  metricsText: () => Promise<string>;
  logger: Logger;
}

export const MAX_BODY_BYTES = 16 * 1024;
/** Room in a batch body for `{"clicks": [...]}` and whatever other fields a sender adds around the clicks. */
const BATCH_ENVELOPE_BYTES = 1024;

/** Large enough for the largest valid batch, however its clicks are escaped (see MAX_CLICK_JSON_BYTES). */
export function batchBodyLimit(maxClicks: number): number {
  return Math.max(MAX_BODY_BYTES, maxClicks * MAX_CLICK_JSON_BYTES + BATCH_ENVELOPE_BYTES);
}

/**
 * The API: an Express app, each request timed on its way in (see measureRequests).
 */
export function createApp(dependencies: AppDependencies): RequestListener {
  const { clicks, stats, offenders, admin, readiness, events, failMode, batchMaxClicks, viewerPassword, metrics, metricsText, logger } = dependencies;
  const app = express();
  app.disable('x-powered-by');
  // Express would hash every response body into an ETag, POSTs included; no answer here is cached.
  app.disable('etag');

  // The click routes first: every click would otherwise be matched against each route above it.
  // Each reads its own body (see json-body.ts).
  app.post('/', clickRoute({ clicks, failMode, maxBodyBytes: MAX_BODY_BYTES, logger }));
  app.post('/batch', batchRoute({ clicks, maxClicks: batchMaxClicks, maxBodyBytes: batchBodyLimit(batchMaxClicks), failMode, logger }));

  // Counts and times, no device id or address: open, as Prometheus scrapers expect.
  app.get('/metrics', async (_req, res) => {
    try {
      res.type('text/plain; version=0.0.4; charset=utf-8').send(await metricsText());
    } catch (error) {
      logger.warn({ err: (error as Error).message }, 'cannot gather the metrics');
      res.status(503).json({ error: 'metrics_unavailable', message: 'the metrics could not be gathered; retry in a moment' });
    }
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', version: VERSION });
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
  app.use(apiDocs({ version: VERSION, batchMaxClicks }));
  app.use(livePage(viewer, { adminApi: admin !== undefined }));

  app.use(notFound);
  app.use(errorHandler(logger));
  const measure = measureRequests(metrics);
  return (req, res) => {
    measure(req, res);
    app(req, res);
  };
}

/**
 * Times every request by the route it matched (as declared: `/admin/blacklist/:ip`, never the
 * address), its method and status class. The live page's event streams last as long as the page
 * is open: they are counted as open streams instead.
 *
 * It runs before the app rather than as its first middleware: a layer in front of the click
 * routes is one more pass through the router for every click.
 */
function measureRequests(metrics: ApiMetrics): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const url = req.url ?? '';
    if (url === '/events' || url.startsWith('/events?')) return;
    const started = performance.now();
    // A response finishes once; its listener goes with it.
    res.on('finish', () => {
      const route = ((req as Request).route as { path?: string } | undefined)?.path ?? 'unmatched';
      metrics.requests.observe({ route, method: req.method ?? '', status_class: `${Math.floor(res.statusCode / 100)}xx` }, (performance.now() - started) / 1000);
    });
  };
}
