import express, { type Express, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import type { ClickStore } from '../redis/click-store.js';
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
  readiness: () => Promise<Readiness>;
  /** `GET /events`: the live page's server-sent events. */
  events: RequestHandler;
  failMode: FailMode;
  logger: Logger;
}

export const MAX_BODY_BYTES = 16 * 1024;

export function createApp({ clicks, stats, readiness, events, failMode, logger }: AppDependencies): Express {
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const state = await readiness();
    res.status(state.ready ? 200 : 503).json(state);
  });
  app.get('/stats', statsRoute(stats));
  app.get('/events', events);
  app.use(livePage());

  // Any Content-Type is read as JSON: tracking pixels post with navigator.sendBeacon (text/plain)
  // and `curl -d` sends form encoding, yet both carry the same JSON click.
  // Not strict: `null` or `5` is valid JSON, just not a click, and the schema says so.
  const json = express.json({ limit: MAX_BODY_BYTES, type: () => true, strict: false });
  app.post('/', json, clickRoute({ clicks, failMode, logger }));

  app.use(notFound);
  app.use(errorHandler(logger));
  return app;
}
