import { spawn, type ChildProcess } from 'node:child_process';
import { sleep } from './api.js';

export interface MainProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

/**
 * The real entry point, as `npm start` runs it, compiled on the fly. `detached` gives it a process
 * group of its own, as a shell gives a command it runs, so that a test can signal the group as a
 * terminal's Ctrl-C does.
 */
export function startMain(env: Record<string, string>, { detached = false }: { detached?: boolean } = {}): MainProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { PATH: process.env.PATH, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return { child, stdout: () => stdout, stderr: () => stderr, exit };
}

export async function listeningPort(stdout: () => string, exit: Promise<unknown>): Promise<number> {
  const deadline = Date.now() + 15_000;
  let exited = false;
  void exit.then(() => (exited = true));
  while (Date.now() < deadline && !exited) {
    const match = /"port":(\d+),"host":"[^"]*","msg":"click fraud API listening"/.exec(stdout());
    if (match) return Number(match[1]);
    await sleep(50);
  }
  throw new Error(`the API did not start:\n${stdout()}`);
}
