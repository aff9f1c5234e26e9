/**
 * `npm run bench`: one table of throughput and latency figures, every one measured in this run on
 * this machine, each the median of several rounds. Nothing here asserts a time; the targets are
 * printed beside the ratios for a person to read.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { parseConfig } from '../src/config.js';
import { createClickStore } from '../src/redis/click-store.js';
import { createCommandGate } from '../src/redis/command-gate.js';
import { keyspaceFor } from '../src/redis/keyspace.js';
import { openRuleBook } from '../src/redis/rule-store.js';
import { createServerClock } from '../src/redis/server-clock.js';
import { createRedisClient } from '../src/redis/connection.js';
import { streamGroupState } from '../src/redis/decision-stream.js';
import { startLocalRedis, type LocalRedisServer } from '../src/redis/local-server.js';
import { privateRedisUrl } from '../src/redis/private-redis.js';
import { startWorker } from '../src/worker/start-worker.js';

const ROUNDS = 3;
const ROUND_SECONDS = 4;
const CONNECTIONS = 64;
/**
 * Half load is offered from fewer connections: autocannon's rate limiter releases each
 * connection's share in bursts, so 64 connections at half rate measure the bursts (the bare
 * Express route shows a p99 near 40 ms that way) rather than the server.
 */
const HALF_LOAD_CONNECTIONS = 8;
/** Pipelines in flight at once when measuring the Redis ceiling, as many HTTP requests would be. */
const CEILING_PIPELINES = 4;
const WINDOW_SECONDS = 10;

const namespace = `bench:${Date.now().toString(36)}:`;
const env = {
  KEY_PREFIX: namespace,
  IP_CUCKOO_FILTER_NAME: `${namespace}ip_cf`,
  DECISION_STREAM_NAME: `${namespace}decisions`,
  DEAD_LETTER_STREAM_NAME: `${namespace}dead`,
  DECISION_STREAM_MAXLEN: '1000000',
  LOG_LEVEL: 'warn',
  HOST: '127.0.0.1',
};

interface Row {
  figure: string;
  value: string;
  ratio?: string;
  target?: string;
}
const rows: Row[] = [];
const log = (line: string) => process.stderr.write(`${line}\n`);

// REDIS_URL (or REDIS_HOST/REDIS_PORT); else the private Redis of a running `npm start` on the same
// data folder (the bench's keys have a namespace of their own and are deleted at the end); else a
// private redis-server of its own in a temporary folder.
const settings = parseConfig(process.env);
if (!settings.ok) throw new Error(settings.problems.join('\n'));
let localRedis: LocalRedisServer | undefined;
let dataDir: string | undefined;
let redisUrl = settings.config.redis.url ?? (await privateRedisUrl(settings.config.redis.dataDir, 0).catch(() => undefined));
if (!redisUrl) {
  dataDir = mkdtempSync(join(tmpdir(), 'click-fraud-bench-'));
  localRedis = await startLocalRedis({ dataDir });
  redisUrl = localRedis.url;
}
log(`Redis: ${redisUrl}${localRedis ? ' (a private redis-server of its own)' : ''}`);
const admin = new Redis(redisUrl);

try {
  let clickNumber = 0;
  /** Every request a new transaction; 20,000 devices, so a device clicks again within the window. */
  const nextClick = () => {
    const n = clickNumber++;
    return { device_id: `dev-${n % 20_000}`, ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, transaction_id: `tx-${n}` };
  };

  // --- single clicks: the framework ceiling, the article's path, and ours ---
  const bareServer = await startServer('bench/servers/bare-express.ts', {});
  let bare: Load;
  let bareHalfLoad: Load;
  try {
    bare = await measure(bareServer.url, '/', () => JSON.stringify(nextClick()));
    bareHalfLoad = await load(bareServer.url, '/', () => JSON.stringify(nextClick()), ROUND_SECONDS, HALF_LOAD_CONNECTIONS, Math.round(bare.rps / 2));
  } finally {
    await bareServer.stop();
  }
  const article = await measureServer('bench/servers/article-path.ts', { REDIS_URL: redisUrl, BLACKLIST_KEY: env.IP_CUCKOO_FILTER_NAME, BLACKLIST_BACKEND: await blacklistBackend() }, '/', () =>
    JSON.stringify(nextClick()),
  );
  const api = await startServer('dist/main.js', { ...env, REDIS_URL: redisUrl, ROLE: 'api' });
  let ours: Load;
  let halfLoad: Load;
  const batch: Record<number, number> = {};
  try {
    ours = await measure(api.url, '/', () => JSON.stringify(nextClick()));
    halfLoad = await load(api.url, '/', () => JSON.stringify(nextClick()), ROUND_SECONDS, HALF_LOAD_CONNECTIONS, Math.round(ours.rps / 2));
    for (const size of [10, 100, 1000]) {
      const result = await measure(api.url, '/batch', () => JSON.stringify({ clicks: Array.from({ length: size }, nextClick) }), Math.max(2, Math.min(CONNECTIONS, 4000 / size)));
      batch[size] = result.rps * size;
    }
  } finally {
    await api.stop();
  }
  const ceiling = await redisCeiling(redisUrl, nextClick);

  rows.push(
    { figure: 'bare Express 5 route (framework ceiling)', value: `${fmt(bare.rps)} req/s, p50 ${bare.p50} ms, p99 ${bare.p99} ms` },
    { figure: "the article's request path (4 round trips)", value: `${fmt(article.rps)} clicks/s, p50 ${article.p50} ms, p99 ${article.p99} ms` },
    {
      figure: 'POST / (one click)',
      value: `${fmt(ours.rps)} clicks/s, p50 ${ours.p50} ms, p99 ${ours.p99} ms`,
      ratio: `${ratio(ours.rps, bare.rps)} × bare, ${ratio(ours.rps, article.rps)} × article`,
      target: '≥ 0.85 × bare, ≥ 1.3 × article',
    },
    { figure: `Redis ceiling: checkClick pipelined (${CEILING_PIPELINES} × 500 in flight), no HTTP`, value: `${fmt(ceiling)} clicks/s` },
    ...[10, 100, 1000].map((size) => ({
      figure: `POST /batch of ${size}`,
      value: `${fmt(batch[size]!)} clicks/s`,
      ratio: `${ratio(batch[size]!, ceiling)} × Redis ceiling`,
      target: size === 100 ? '≥ 0.5 × ceiling' : '',
    })),
    { figure: `bare Express 5 route at half load (${fmt(bare.rps / 2)}/s offered)`, value: `p50 ${bareHalfLoad.p50} ms, p99 ${bareHalfLoad.p99} ms` },
    { figure: `POST / at half load (${fmt(ours.rps / 2)}/s offered)`, value: `p50 ${halfLoad.p50} ms, p99 ${halfLoad.p99} ms`, target: 'p99 ≤ 10 ms' },
  );

  // --- the stream worker on a pre-filled stream ---
  const drain = await workerDrainRate(redisUrl);
  rows.push({ figure: `one worker draining ${fmt(drain.count)} decisions`, value: `${fmt(drain.rate)} decisions/s`, ratio: `${ratio(drain.rate, ours.rps)} × POST / max`, target: '≥ 3 × POST / max' });

  // --- memory, now and once the window has passed ---
  const memoryNow = await usedMemory();
  const windowKeysNow = await countKeys(`${namespace}window:*`);
  log(`waiting ${WINDOW_SECONDS + 1} s for the click windows to pass...`);
  await sleep((WINDOW_SECONDS + 1) * 1000);
  const windowKeysAfter = await countKeys(`${namespace}window:*`);
  rows.push(
    { figure: 'Redis memory after the run', value: `${mb(memoryNow)} MB, ${fmt(windowKeysNow)} device windows` },
    { figure: `Redis memory ${WINDOW_SECONDS + 1} s later`, value: `${mb(await usedMemory())} MB, ${fmt(windowKeysAfter)} device windows`, target: '0 device windows' },
  );

  await printTable();
} finally {
  await deleteKeys(`${namespace}*`);
  admin.disconnect();
  await localRedis?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------

interface Load {
  rps: number;
  p50: number;
  p99: number;
}

async function measureServer(script: string, extraEnv: Record<string, string>, path: string, body: () => string): Promise<Load> {
  const server = await startServer(script, extraEnv);
  try {
    return await measure(server.url, path, body);
  } finally {
    await server.stop();
  }
}

/** A warm-up, then ROUNDS rounds; the median round by throughput. */
async function measure(url: string, path: string, body: () => string, connections = CONNECTIONS): Promise<Load> {
  await load(url, path, body, 1, connections);
  const rounds: Load[] = [];
  for (let i = 0; i < ROUNDS; i++) rounds.push(await load(url, path, body, ROUND_SECONDS, connections));
  rounds.sort((a, b) => a.rps - b.rps);
  return rounds[Math.floor(ROUNDS / 2)]!;
}

async function load(url: string, path: string, body: () => string, seconds: number, connections: number, overallRate?: number): Promise<Load> {
  const result = await autocannon({
    url: `${url}${path}`,
    connections,
    duration: seconds,
    ...(overallRate === undefined ? {} : { overallRate }),
    requests: [{ method: 'POST', headers: { 'content-type': 'application/json' }, setupRequest: (request) => ({ ...request, body: body() }) }],
  });
  if (result.non2xx > 0 || result.errors > 0) log(`  ${path}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  log(`  ${url}${path}: ${fmt(result.requests.average)} req/s, p99 ${result.latency.p99} ms`);
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99 };
}

async function startServer(script: string, extraEnv: Record<string, string>): Promise<{ url: string; stop(): Promise<void> }> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child: ChildProcess = fork(script, [], {
    env: { ...process.env, ...extraEnv, PORT: String(port) },
    execArgv: script.endsWith('.ts') ? ['--import', 'tsx'] : [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 15_000; ; await sleep(100)) {
    if (child.exitCode !== null) throw new Error(`${script} exited with code ${child.exitCode}`);
    if (await fetch(`${url}/healthz`).then(() => true, () => false)) break;
    if (Date.now() > deadline) throw new Error(`${script} did not start`);
  }
  return {
    url,
    stop: () =>
      new Promise((done) => {
        child.once('exit', () => done());
        child.kill('SIGTERM');
      }),
  };
}

/** The project's own check, as the API sends it (ClickStore.decideMany), 500 clicks a pipeline, no HTTP. */
async function redisCeiling(url: string, nextClick: () => { device_id: string; ip: string; transaction_id: string }): Promise<number> {
  const silent = pino({ level: 'silent' });
  const redis = createRedisClient({ url, timeoutMs: 10_000, connectionName: 'bench', logger: silent });
  await redis.connect();
  const config = parseConfig({ ...env, REDIS_URL: url });
  if (!config.ok) throw new Error(config.problems.join('\n'));
  const keyspace = keyspaceFor(config.config, false);
  const clock = await createServerClock(redis, silent);
  const rules = await openRuleBook(redis, keyspace.rules, config.config.rules, silent);
  const store = createClickStore(redis, clock, createCommandGate(1_000_000), {
    keyspace,
    blacklist: { backend: await blacklistBackend(), key: env.IP_CUCKOO_FILTER_NAME, addCommand: '' },
    rules,
    streamMaxLen: 1_000_000,
    timeoutMs: 60_000,
    lookupFirst: false,
    replicas: undefined,
    onUnreplicated: () => {},
  });
  const rates: number[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      let done = 0;
      const started = performance.now();
      const stream = async () => {
        while (performance.now() - started < ROUND_SECONDS * 1000) {
          await store.decideMany(Array.from({ length: 500 }, nextClick));
          done += 500;
        }
      };
      await Promise.all(Array.from({ length: CEILING_PIPELINES }, stream));
      rates.push(done / ((performance.now() - started) / 1000));
    }
  } finally {
    rules.stop();
    clock.stop();
    redis.disconnect();
  }
  rates.sort((a, b) => a - b);
  const median = rates[Math.floor(ROUNDS / 2)]!;
  log(`  Redis ceiling: ${fmt(median)} clicks/s`);
  return median;
}

async function workerDrainRate(url: string): Promise<{ count: number; rate: number }> {
  const count = 200_000;
  const drainEnv = { ...env, DECISION_STREAM_NAME: `${namespace}drain`, WORKER_GROUP: 'bench', REDIS_TIMEOUT_MS: '2000' };
  const parsed = parseConfig(drainEnv);
  if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
  const types = ['clean', 'ip_blacklist', 'click_spam'];
  const start = Date.now() - 60_000;
  for (let i = 0; i < count; i += 2000) {
    const pipeline = admin.pipeline();
    for (let j = i; j < i + 2000; j++) {
      pipeline.xadd(drainEnv.DECISION_STREAM_NAME, '*', 'transaction_id', `t${j}`, 'device_id', `d${j % 1000}`, 'ip', '10.0.0.1', 'status', 'clean', 'fraud_type', types[j % 3]!, 'ts', String(start + Math.floor((j * 60_000) / count)));
    }
    await pipeline.exec();
  }
  const started = performance.now();
  const worker = await startWorker(parsed.config, url, pino({ level: 'warn' }));
  try {
    while (!(await streamGroupState(admin, drainEnv.DECISION_STREAM_NAME, 'bench')).drained) await sleep(20);
  } finally {
    await worker.close();
  }
  const rate = count / ((performance.now() - started) / 1000);
  log(`  worker: ${fmt(rate)} decisions/s (${worker.counters.backend} counters)`);
  return { count, rate };
}

async function blacklistBackend(): Promise<'set' | 'cuckoo'> {
  const commands = (await admin.call('COMMAND', 'INFO', 'CF.EXISTS')) as unknown[];
  return commands[0] === null ? 'set' : 'cuckoo';
}

async function usedMemory(): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await admin.info('memory'))?.[1]);
}

async function countKeys(pattern: string): Promise<number> {
  let count = 0;
  for (let cursor = '0'; ; ) {
    const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 10_000);
    count += keys.length;
    cursor = next;
    if (cursor === '0') return count;
  }
}

async function deleteKeys(pattern: string): Promise<void> {
  for (let cursor = '0'; ; ) {
    const [next, keys] = await admin.scan(cursor, 'MATCH', pattern, 'COUNT', 10_000);
    if (keys.length > 0) await admin.unlink(...keys);
    cursor = next;
    if (cursor === '0') return;
  }
}

async function printTable(): Promise<void> {
  const header: Row = { figure: 'figure', value: 'measured (median of rounds)', ratio: 'ratio', target: 'target' };
  const all = [header, ...rows];
  const width = (key: keyof Row) => Math.max(...all.map((row) => (row[key] ?? '').length));
  const line = (row: Row) => `| ${(['figure', 'value', 'ratio', 'target'] as const).map((key) => (row[key] ?? '').padEnd(width(key))).join(' | ')} |`;
  console.log(`\nclick-fraud-api benchmark, ${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}, Redis ${/redis_version:(\S+)/.exec(await admin.info('server'))?.[1]}`);
  console.log(
    `${ROUNDS} rounds of ${ROUND_SECONDS} s each, ${CONNECTIONS} keep-alive connections (autocannon; ${HALF_LOAD_CONNECTIONS} at half load), load generator, servers and Redis on the same machine; threshold 2, window ${WINDOW_SECONDS} s\n`,
  );
  console.log(line(header));
  console.log(`|${(['figure', 'value', 'ratio', 'target'] as const).map((key) => '-'.repeat(width(key) + 2)).join('|')}|`);
  for (const row of rows) console.log(line(row));
}

function ratio(a: number, b: number): string {
  return (a / b).toFixed(2);
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function mb(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}
