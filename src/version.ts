import { readFileSync } from 'node:fs';

/**
 * The version in package.json, read at run time rather than imported: a JSON import would pull
 * package.json into the compiled output. From src/ (tsx) and from dist/ alike it is one folder up,
 * and the Docker image copies it next to dist/.
 */
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
