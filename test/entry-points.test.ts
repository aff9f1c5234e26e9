import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../src/config.js';
import { redisUrl, startTestApi } from './support/api.js';
import { listeningPort, startMain } from './support/process.js';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/** The entry points, as their npm scripts run them (from the sources here), and the name their usage gives. */
const ENTRY_POINTS = [
  { script: 'src/main.ts', name: 'click-fraud-api' },
  { script: 'src/cli/blacklist.ts', name: 'blacklist' },
  { script: 'src/simulator/main.ts', name: 'simulate' },
];

function run(script: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // No Redis settings and no Redis reachable: --help and --version must not need one.
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((done) => child.once('close', (code) => done({ code, stdout, stderr })));
}

describe.each(ENTRY_POINTS)('$script', ({ script, name }) => {
  it('answers --version with the version in package.json', async () => {
    expect(await run(script, ['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('answers --help with its usage and options', async () => {
    const help = await run(script, ['--help']);
    expect(help.code).toBe(0);
    expect(help.stderr).toBe('');
    expect(help.stdout).toMatch(new RegExp(`^Usage: ${name} \\[options\\]`));
    expect(help.stdout).toContain('-V, --version');
  });

  it('names an unknown option, points to --help and exits 1', async () => {
    const wrong = await run(script, ['--no-such-option']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("error: unknown option '--no-such-option'");
    expect(wrong.stderr).toContain('--help');
  });
});

describe('the service', () => {
  it('lists every setting with its default in --help', async () => {
    const { stdout } = await run('src/main.ts', ['--help']);
    for (const [setting, { default: value }] of Object.entries(SETTINGS)) {
      expect(stdout).toMatch(new RegExp(`^  ${setting} +\\S`, 'm'));
      expect(stdout.replaceAll(/\s+/g, ' ')).toContain(`[default: ${value ?? 'unset'}]`);
    }
  });

  it('says its version in /healthz and in its first log line', async () => {
    const api = await startTestApi();
    try {
      expect(await (await fetch(`${api.base}/healthz`)).json()).toEqual({ status: 'ok', version });
    } finally {
      await api.close();
    }
    const main = startMain({ REDIS_URL: redisUrl, ROLE: 'api', PORT: '0', HOST: '127.0.0.1' });
    try {
      await listeningPort(main.stdout, main.exit);
      const first = JSON.parse(main.stdout().split('\n')[0]!) as Record<string, unknown>;
      expect(first).toMatchObject({ version, role: 'api', node: process.version, msg: `click-fraud-api ${version} starting (ROLE=api)` });
    } finally {
      main.child.kill('SIGTERM');
      await main.exit;
    }
  });
});
