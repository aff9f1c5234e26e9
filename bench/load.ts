/**
 * Load generation for the benchmark: autocannon (keep-alive connections, a new body per request),
 * and wrk as a cross-check where it is installed. Only successful answers count: a round's rate is
 * its 2xx answers (for /batch, the clicks they decided) per second, and every non-2xx answer,
 * connection error and timeout is kept, so that the table can show it and mark the row invalid.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import autocannon from 'autocannon';

export interface Load {
  /** Successful answers per second (clicks decided per second for /batch). */
  rate: number;
  /** Successful answers (clicks decided for /batch) in all. */
  count: number;
  p50: number;
  p99: number;
  /** Answers that were not 2xx, and for /batch the clicks a 200 answered with an error. */
  failed: number;
  /** Connection errors and timeouts. */
  errors: number;
}

export interface LoadSettings {
  url: string;
  path: string;
  body: () => string;
  seconds: number;
  connections: number;
  /** Requests per second offered over all connections; unset: as fast as answers come back. */
  rate?: number;
  /** For /batch: clicks per request, each counted only when its item in the answer is a decision. */
  clicksPerRequest?: number;
}

export async function autocannonLoad({ url, path, body, seconds, connections, rate, clicksPerRequest }: LoadSettings): Promise<Load> {
  let decided = 0;
  let failedItems = 0;
  const result = await autocannon({
    url: `${url}${path}`,
    connections,
    duration: seconds,
    // With a rate, autocannon "corrects" each latency for coordinated omission as if requests were
    // due every millisecond (Math.ceil(1 / rate) of a rate per second): a 20 ms answer adds 19
    // synthetic samples of 19 ms down to 1 ms. Its real latencies are what the half-load rows report.
    ...(rate === undefined ? {} : { overallRate: rate, ignoreCoordinatedOmission: true }),
    requests: [
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: body() }),
        // A 200 to a batch can still carry items that failed (Redis unavailable for them): those
        // are not decided clicks. Counting the error items' keys is enough; decisions have none.
        ...(clicksPerRequest === undefined
          ? {}
          : {
              onResponse: (status: number, text: string) => {
                if (status < 200 || status > 299) return;
                const failures = text.split('"error":').length - 1;
                failedItems += failures;
                decided += clicksPerRequest - failures;
              },
            }),
      },
    ],
  });
  const count = clicksPerRequest === undefined ? result['2xx'] : decided;
  return {
    rate: count / result.duration,
    count,
    p50: result.latency.p50,
    p99: result.latency.p99,
    failed: result.non2xx + failedItems,
    errors: result.errors + result.timeouts,
  };
}

const run = promisify(execFile);

export function wrkInstalled(): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, 'wrk')));
}

/** The Lua script that makes wrk send a distinct click per request (see bench/wrk-clicks.lua). */
const WRK_SCRIPT = new URL('./wrk-clicks.lua', import.meta.url).pathname;

/**
 * wrk, one thread (the server needs the other core), distinct clicks over 20,000 devices; `prefix`
 * keeps transaction ids distinct across rounds. Non-2xx answers are wrk's "status" errors.
 */
export async function wrkLoad({ url, seconds, connections, prefix }: { url: string; seconds: number; connections: number; prefix: string }): Promise<Load> {
  const { stdout } = await run('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', WRK_SCRIPT, `${url}/`, '--', prefix]);
  const line = stdout.split('\n').find((text) => text.startsWith('{"requests"'));
  if (!line) throw new Error(`wrk printed no summary:\n${stdout}`);
  const summary = JSON.parse(line) as { requests: number; seconds: number; status: number; socket: number; timeout: number; p50_us: number; p99_us: number };
  return {
    rate: (summary.requests - summary.status) / summary.seconds,
    count: summary.requests - summary.status,
    p50: summary.p50_us / 1000,
    p99: summary.p99_us / 1000,
    failed: summary.status,
    errors: summary.socket + summary.timeout,
  };
}
