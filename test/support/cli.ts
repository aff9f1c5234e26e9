import { spawn } from 'node:child_process';
import type { TestApi } from './api.js';

/** The blacklist CLI as `npm run blacklist` runs it, compiled on the fly, on a test API's settings and Redis. */
export function runCli(api: TestApi, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/blacklist.ts', ...args], {
    env: { PATH: process.env.PATH, ...api.config.env, REDIS_URL: api.redisUrl },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((done) => child.once('exit', (code) => done({ code, stdout, stderr })));
}
