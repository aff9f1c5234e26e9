// `npm run build`: compiles src/ into dist/ (tsc), copies next to the modules what they read at run
// time (the Lua scripts, the live page's files), then stamps dist/.
//
// `node scripts/build.mjs --if-stale` is how every npm script that runs dist/ starts: it builds only
// when some source is newer than the stamp (a few milliseconds to check), so a command starts at
// once after the first build and never runs code older than its sources. A build on install
// (`prepare`) would go stale at the first edit or `git pull`, and would break `npm ci --omit=dev`,
// which has no TypeScript.
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const STAMP = 'dist/.build-stamp';
/** Everything the build reads: a newer file, or a folder where a file was added or removed, means rebuild. */
const SOURCES = ['src', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs'];

if (process.argv.includes('--if-stale') && !stale()) process.exit(0);

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const compiled = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
if (compiled.status !== 0) {
  process.stderr.write('build failed: see the TypeScript errors above\n');
  process.exit(compiled.status ?? 1);
}
cpSync('src/redis/commands', 'dist/redis/commands', {
  recursive: true,
  filter: (path) => !path.includes('.') || path.endsWith('.lua'),
});
cpSync('src/http/public', 'dist/http/public', { recursive: true });
writeFileSync(STAMP, `${new Date().toISOString()}\n`);

function stale() {
  let builtAt;
  try {
    builtAt = statSync(STAMP).mtimeMs;
  } catch {
    return true;
  }
  return SOURCES.some((path) => newestChange(path) > builtAt);
}

function newestChange(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...readdirSync(path).map((name) => newestChange(join(path, name))));
}
