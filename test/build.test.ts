import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * scripts/build.mjs on a project of three files laid out as this one (so that tsc takes seconds,
 * not the whole project's ten): `--if-stale` builds when dist/ is missing or older than a source, and only then.
 */
const project = mkdtempSync(join(tmpdir(), 'click-fraud-build-'));
afterAll(() => rmSync(project, { recursive: true, force: true }));

mkdirSync(join(project, 'scripts'));
cpSync(new URL('../scripts/build.mjs', import.meta.url), join(project, 'scripts/build.mjs'));
symlinkSync(new URL('../node_modules', import.meta.url).pathname, join(project, 'node_modules'));
const write = (path: string, text: string) => {
  mkdirSync(join(project, path, '..'), { recursive: true });
  writeFileSync(join(project, path), text);
};
write('tsconfig.json', JSON.stringify({ compilerOptions: { target: 'ES2022', module: 'NodeNext', strict: true, types: [] } }));
write('tsconfig.build.json', JSON.stringify({ extends: './tsconfig.json', compilerOptions: { rootDir: 'src', outDir: 'dist' }, include: ['src'] }));
write('src/main.ts', 'export const answer: number = 1;\n');
write('src/redis/commands/check-1.lua', 'return 1\n');
write('src/http/public/index.html', '<!doctype html>\n');

function build(...args: string[]): { status: number | null; stderr: string } {
  const result = spawnSync(process.execPath, ['scripts/build.mjs', ...args], { cwd: project, encoding: 'utf8' });
  return { status: result.status, stderr: result.stderr };
}
const built = (path: string) => readFileSync(join(project, 'dist', path), 'utf8');
const stampTime = () => statSync(join(project, 'dist/.build-stamp')).mtimeMs;
/**
 * Every source 10 s old and the stamp 5 s old: the state after a build, with the times far enough
 * apart for any file system's resolution. Whatever a test writes next is newer than the stamp.
 */
function settle(): void {
  const age = (path: string, seconds: number) => {
    const then = new Date(Date.now() - seconds * 1000);
    utimesSync(path, then, then);
    if (statSync(path).isDirectory()) for (const name of readdirSync(path)) age(join(path, name), seconds);
  };
  for (const source of ['src', 'tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs']) age(join(project, source), 10);
  age(join(project, 'dist/.build-stamp'), 5);
}

describe('npm run build and the --if-stale check of every npm script', { timeout: 60_000 }, () => {
  it('builds what is missing, with the files the modules read beside them', () => {
    expect(build('--if-stale').status).toBe(0);
    expect(built('main.js')).toContain('answer = 1');
    expect(built('redis/commands/check-1.lua')).toBe('return 1\n');
    expect(built('http/public/index.html')).toBe('<!doctype html>\n');
  });

  it('does nothing while dist/ is newer than every source', () => {
    settle();
    const before = stampTime();
    expect(build('--if-stale').status).toBe(0);
    expect(stampTime()).toBe(before);
  });

  it('builds again after a source changed, or a file was added', () => {
    settle();
    write('src/main.ts', 'export const answer: number = 2;\n');
    expect(build('--if-stale').status).toBe(0);
    expect(built('main.js')).toContain('answer = 2');

    settle();
    // Only the folders it went into are newer than the stamp.
    write('src/more/added.ts', 'export const added = true;\n');
    utimesSync(join(project, 'src/more/added.ts'), new Date(0), new Date(0));
    expect(build('--if-stale').status).toBe(0);
    expect(existsSync(join(project, 'dist/more/added.js'))).toBe(true);
  });

  it('fails on a type error and leaves dist/ stale, so that the next command tries again', () => {
    settle();
    const before = stampTime();
    write('src/main.ts', 'export const answer: number = "two";\n');
    const failed = build('--if-stale');
    expect(failed.status).not.toBe(0);
    expect(failed.stderr).toContain('build failed: see the TypeScript errors above');
    expect(stampTime()).toBe(before);
    expect(build('--if-stale').status).not.toBe(0);
  });
});
