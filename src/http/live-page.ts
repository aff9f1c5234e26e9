import express, { type RequestHandler, type Router } from 'express';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sendError } from './errors.js';

/** The page's own files; the build copies them next to this module (scripts/build.mjs). */
export const publicDir = fileURLToPath(new URL('./public/', import.meta.url));
/** uPlot draws the chart; it is served from its npm package, so there is no copy to keep current. */
const uPlotDir = dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'));

/**
 * Only this origin's scripts, styles and connections: the feed shows ids that any client posted,
 * and the page writes them as text, but a policy is the second line of defence.
 */
export const PAGE_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

/** `GET /` for a browser: the live page. An API client that does not accept HTML is told where things are. */
const page: RequestHandler = (req, res) => {
  if (!req.accepts('html')) {
    return sendError(res, 406, {
      error: 'not_acceptable',
      message: 'GET / is the live page (text/html); post clicks to POST /, follow decisions at GET /events',
    });
  }
  res.set(PAGE_HEADERS).sendFile('index.html', { root: publicDir });
};

/** The two files of uPlot the page loads, and nothing else of its package. */
const UPLOT_FILES = ['uPlot.iife.min.js', 'uPlot.min.css'];

export interface LivePageSettings {
  /** Whether the admin API is on: the page then offers to block an offender, once given the token. */
  adminApi: boolean;
}

/**
 * The page and its files, each behind `access` (the viewer password, when there is one), and what
 * the page needs to know of this server (`/live/settings.json`). The admin token is never among it:
 * the person using the page types it in.
 */
export function livePage(access: RequestHandler, settings: LivePageSettings): Router {
  const router = express.Router();
  router.get('/', access, page);
  router.get('/live/settings.json', access, (_req, res) => {
    res.set(PAGE_HEADERS).json({ admin_api: settings.adminApi });
  });
  for (const file of UPLOT_FILES) {
    router.get(`/live/vendor/${file}`, access, (_req, res) => res.set(PAGE_HEADERS).sendFile(file, { root: uPlotDir }));
  }
  router.use('/live', access, express.static(publicDir, { index: false, setHeaders: (res) => res.set(PAGE_HEADERS) }));
  return router;
}
