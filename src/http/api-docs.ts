import { Router } from 'express';
import { PAGE_HEADERS, publicDir } from './live-page.js';
import { openApiDocument, type OpenApiOptions } from './openapi.js';

/** The page's own files, beside the live page's (src/http/public). */
const DOCS_FILES = { '/docs': 'docs.html', '/docs/docs.js': 'docs.js', '/docs/docs.css': 'docs.css' };

/**
 * `GET /openapi.json`, the OpenAPI document, and `GET /docs`, a page that shows it. The document is
 * built once, on first request, from the schemas that validate the requests.
 */
export function apiDocs(options: OpenApiOptions): Router {
  let document: string | undefined;
  const router = Router();
  router.get('/openapi.json', (_req, res) => {
    document ??= JSON.stringify(openApiDocument(options));
    res.type('application/json').send(document);
  });
  for (const [path, file] of Object.entries(DOCS_FILES)) {
    // Under the same strict policy as the live page: its own scripts and styles only, no CDN.
    router.get(path, (_req, res) => res.set(PAGE_HEADERS).sendFile(file, { root: publicDir }));
  }
  return router;
}
