import { createRequire } from 'node:module';
import type { DataFrame, DataTransformerConfig } from '@grafana/data';
import { vi } from 'vitest';

/**
 * Grafana's own data code, @grafana/data (the release of the Grafana image in docker-compose.yml), for
 * tests in Node:
 *
 * - its ES module build imports named exports from lodash, a CommonJS package, which Node refuses;
 *   the package's CommonJS build (its `require` export) loads, so it is required instead;
 * - it is written for the browser: loading it adds a `storage` listener on `window` (its localStorage
 *   helper), and running a transformation reads `window.__grafanaSceneContext`. Neither matters to
 *   these tests, so an object with no-op listener methods stands in for `window` (each test file runs
 *   in its own worker, so no other test sees it);
 * - but a `window` global also tells react-use, which it requires, that this is a browser, and
 *   react-use's CSS helper (nano-css) then writes style elements into a `document`. Required first,
 *   while there is no `window`, react-use stays in its server mode, and @grafana/data gets that copy;
 * - its display processor asks `navigator.languages` for the viewer's locale, and Node 20 has no
 *   `navigator`: the tests format as an en-US browser would.
 */
const requireHere = createRequire(import.meta.url);
createRequire(requireHere.resolve('@grafana/data'))('react-use');
vi.stubGlobal('window', { addEventListener() {}, removeEventListener() {} });
vi.stubGlobal('navigator', { languages: ['en-US'] });

export const grafana = requireHere('@grafana/data') as typeof import('@grafana/data');

// Grafana's app registers each transformation together with its editor (public/app); the
// transformations themselves are @grafana/data's, and a panel's JSON is run with those alone.
// `seriesToColumnsTransformer` is a deprecated second name for joinByField: listed once.
grafana.standardTransformersRegistry.setInit(() =>
  [...new Set(Object.values(grafana.standardTransformers))].map((transformation) => ({
    id: transformation.id,
    name: transformation.name,
    transformation,
    editor: () => null,
  })),
);

/** A panel's transformations applied to its frames, as Grafana does before the panel draws them. */
export function transform(transformations: DataTransformerConfig[], frames: DataFrame[]): Promise<DataFrame[]> {
  // transformDataFrame passes the frames through a transformation it does not know, silently.
  for (const { id } of transformations) {
    if (!grafana.standardTransformersRegistry.getIfExists(id)) throw new Error(`@grafana/data has no transformation ${id}`);
  }
  return new Promise((resolve, reject) => {
    grafana.transformDataFrame(transformations, frames).subscribe({ next: resolve, error: reject });
  });
}
