/**
 * The main table, on one Redis: a single click against the framework ceiling and the article's
 * path, the latency at half load, batches against the Redis ceiling, the stream worker, memory.
 */
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { parseConfig } from '../src/config.js';
import { streamGroupState } from '../src/redis/decision-stream.js';
import { startWorker } from '../src/worker/start-worker.js';
import { clickSource, type BenchClick } from './clicks.js';
import { autocannonLoad, wrkLoad, type Load } from './load.js';
import { sleep, startServer, type Server } from './processes.js';
import { usedMemory } from './redis-figures.js';
import { openStore, type OpenStore } from './store.js';
import { badOf, fmt, mb, median, medianLoad, ms, ratio, type Row } from './table.js';

export const ROUND_SECONDS = 3;
/** Rounds of the single-click comparison, the contenders taking turns in each. */
export const CLICK_ROUNDS = 5;
const ROUNDS = 3;
/**
 * Rounds of the batches and their ceiling. Under this load the private Redis rewrites its
 * append-only file every few seconds (a fork that copies the data set and takes a core for a second
 * or two), and one round in three of the batches of 1000 ran under one: five rounds keep such a
 * round from being the median.
 */
export const BATCH_ROUNDS = 5;
export const CONNECTIONS = 64;
/**
 * Half load is offered from fewer connections: autocannon's rate limiter releases each
 * connection's share in bursts, so 64 connections at half rate measure the bursts (the bare
 * Express route shows a p99 near 40 ms that way) rather than the server.
 */
export const HALF_LOAD_CONNECTIONS = 8;
/** As in the issue that set the targets: wrk with 32 connections. */
export const WRK_CONNECTIONS = 32;
/** wrk is the cross-check, not the measure: fewer rounds keep the whole benchmark near five minutes (3: a median, not a mean of 2). */
export const WRK_ROUNDS = 3;
/** Pipelines in flight at once when measuring the Redis ceiling, as many HTTP requests would be. */
const CEILING_PIPELINES = 4;
const CEILING_PIPELINE_CLICKS = 500;
/**
 * Clicks in flight per batch size: connections × clicks per batch stays at 4,000 at most. The API
 * refuses a batch at once when REDIS_MAX_IN_FLIGHT (10,000) clicks would be waiting for Redis in
 * the process, and a batch waits REDIS_TIMEOUT_MS + 1 ms per click and per click ahead of it; 4
 * batches of 1,000 are far from both, and keep Redis as busy as the ceiling's 2,000 in flight do.
 */
export const BATCH_CLICKS_IN_FLIGHT = 4000;
export const BATCH_SIZES = [10, 100, 1000] as const;
export const WINDOW_SECONDS = 10;

export interface MainContext {
  redisUrl: string;
  admin: Redis;
  namespace: string;
  /** The API's settings: the namespace's keys, quiet logs. */
  apiEnv: Record<string, string>;
  backend: 'cuckoo' | 'set';
  wrk: boolean;
  log(line: string): void;
}

export interface MainResult {
  rows: Row[];
  /** POST / at full load, clicks/s: the per-process rate of the capacity model on one Redis. */
  clickRate: number;
}

export async function mainTable(ctx: MainContext): Promise<MainResult> {
  const { redisUrl, admin, namespace, apiEnv, backend, log } = ctx;
  const rows: Row[] = [];
  const nextClick = clickSource(20_000);
  const clickBody = () => JSON.stringify(nextClick());

  // --- single clicks: the framework ceiling, the article's path and ours, taking turns ---
  const ours = await startServer('dist/main.js', { ...apiEnv, REDIS_URL: redisUrl, ROLE: 'api' });
  const servers: Record<Contender, Server> = {
    bare: await startServer('bench/servers/bare-express.ts', {}),
    article: await startServer('bench/servers/article-path.ts', { REDIS_URL: redisUrl, KEY_PREFIX: namespace, BLACKLIST_KEY: apiEnv.IP_CUCKOO_FILTER_NAME!, BLACKLIST_BACKEND: backend }),
    ours,
  };
  let clicks: Record<Contender, Load[]>;
  let halfLoad: Record<'bare' | 'ours', Load[]>;
  let wrk: Record<Contender, Load[]> | undefined;
  try {
    for (const name of CONTENDERS) await autocannonLoad({ url: servers[name].url, path: '/', body: clickBody, seconds: 1, connections: CONNECTIONS });
    clicks = await takingTurns(CONTENDERS, CLICK_ROUNDS, (name) => autocannonLoad({ url: servers[name].url, path: '/', body: clickBody, seconds: ROUND_SECONDS, connections: CONNECTIONS }), log);
    halfLoad = await takingTurns(['bare', 'ours'] as const, ROUNDS, (name) =>
      autocannonLoad({ url: servers[name].url, path: '/', body: clickBody, seconds: ROUND_SECONDS, connections: HALF_LOAD_CONNECTIONS, rate: Math.max(1, Math.round(median(rates(clicks[name])) / 2)) }),
    log);
    let round = 0;
    if (ctx.wrk) wrk = await takingTurns(CONTENDERS, WRK_ROUNDS, (name) => wrkLoad({ url: servers[name].url, seconds: ROUND_SECONDS, connections: WRK_CONNECTIONS, prefix: `wrk${Date.now().toString(36)}r${round++}` }), log);
  } finally {
    await Promise.all([servers.bare.stop(), servers.article.stop()]);
  }
  const clickRate = median(rates(clicks.ours));
  rows.push(...clickRows('', clicks));
  if (wrk) rows.push(...clickRows(`wrk (${WRK_CONNECTIONS} connections): `, wrk));
  else rows.push({ figure: 'wrk cross-check', value: 'skipped: wrk is not installed (apt-get install wrk)' });

  // --- batches against the Redis ceiling, taking turns ---
  const nextBatchClick = clickSource(20_000, { prefix: 'bdev' });
  let batches: Record<string, Load[]>;
  try {
    const direct = await openStore({ ...apiEnv, REDIS_URL: redisUrl });
    try {
      const batchLoad = (size: number, seconds: number) =>
        autocannonLoad({
          url: ours.url,
          path: '/batch',
          body: () => JSON.stringify({ clicks: Array.from({ length: size }, nextBatchClick) }),
          seconds,
          connections: batchConnections(size),
          clicksPerRequest: size,
        });
      for (const size of BATCH_SIZES) await batchLoad(size, 1);
      const names = ['ceiling', ...BATCH_SIZES.map(String)];
      batches = await takingTurns(names, BATCH_ROUNDS, async (name) => {
        if (name !== 'ceiling') return batchLoad(Number(name), ROUND_SECONDS);
        // The service's own check as the API sends it (ClickStore.decideMany), straight into Redis, no HTTP.
        const { rate, count } = await decidedRate(direct, ROUND_SECONDS, CEILING_PIPELINES, CEILING_PIPELINE_CLICKS, nextBatchClick);
        return { rate, count, p50: 0, p99: 0, failed: 0, errors: 0 };
      }, log);
    } finally {
      direct.close();
    }
  } finally {
    await ours.stop();
  }
  const ceiling = median(rates(batches.ceiling!));
  rows.push({ figure: `Redis ceiling: the check as the API sends it (${CEILING_PIPELINES} × ${CEILING_PIPELINE_CLICKS} clicks in flight), no HTTP`, value: `${fmt(ceiling)} clicks/s` });
  for (const size of BATCH_SIZES) {
    const loads = batches[String(size)]!;
    const perRound = medianOfRatios(loads, batches.ceiling!);
    rows.push({
      figure: `POST /batch of ${size} (${batchConnections(size)} connections)`,
      value: `${fmt(median(rates(loads)))} clicks/s, p99 ${ms(medianLoad(loads).p99)}`,
      bad: badOf(loads),
      ratio: `${perRound.toFixed(2)} × Redis ceiling`,
      ...(size === 1000 ? { target: '≥ 0.9 × ceiling', met: perRound >= 0.9 } : {}),
    });
  }
  rows.push(
    ...(['bare', 'ours'] as const).map((name): Row => {
      const p99 = median(halfLoad[name].map((load) => load.p99));
      return {
        figure: `${name === 'bare' ? 'bare Express 5 route' : 'POST /'} at half load (${fmt(median(rates(clicks[name])) / 2)}/s offered, ${HALF_LOAD_CONNECTIONS} connections)`,
        value: `${fmt(median(rates(halfLoad[name])))}/s, p50 ${ms(median(halfLoad[name].map((load) => load.p50)))}, p99 ${ms(p99)}`,
        bad: badOf(halfLoad[name]),
        ...(name === 'ours' ? { target: 'p99 ≤ 10 ms', met: p99 <= 10 } : {}),
      };
    }),
  );

  // --- memory now; the stream worker on a pre-filled stream meanwhile; memory once the window has passed ---
  const memoryNow = await usedMemory(admin);
  const windowsNow = await countKeys(admin, `${namespace}window:*`);
  const windowEnds = Date.now() + (WINDOW_SECONDS + 1) * 1000;
  const drain = await workerDrainRate(ctx);
  rows.push({ figure: `one worker draining ${fmt(drain.count)} decisions`, value: `${fmt(drain.rate)} decisions/s`, ratio: `${ratio(drain.rate, clickRate)} × POST / max`, target: '≥ 3 × POST / max', met: drain.rate >= 3 * clickRate });
  log(`waiting for the click windows to pass...`);
  await sleep(windowEnds - Date.now());
  const windowsAfter = await countKeys(admin, `${namespace}window:*`);
  rows.push(
    { figure: 'Redis memory after the clicks', value: `${mb(memoryNow)}, ${fmt(windowsNow)} device windows` },
    { figure: `Redis memory ${WINDOW_SECONDS + 1} s later (and the worker's stream)`, value: `${mb(await usedMemory(admin))}, ${fmt(windowsAfter)} device windows`, target: '0 device windows', met: windowsAfter === 0 },
  );
  return { rows, clickRate };
}

const CONTENDERS = ['bare', 'article', 'ours'] as const;
type Contender = (typeof CONTENDERS)[number];

function clickRows(prefix: string, loads: Record<Contender, Load[]>): Row[] {
  const describe = (name: Contender, unit: string) => {
    const typical = medianLoad(loads[name]);
    return `${fmt(median(rates(loads[name])))} ${unit}, p50 ${ms(typical.p50)}, p99 ${ms(typical.p99)}`;
  };
  const toBare = medianOfRatios(loads.ours, loads.bare);
  const toArticle = medianOfRatios(loads.ours, loads.article);
  return [
    { figure: `${prefix}bare Express 5 route (framework ceiling)`, value: describe('bare', 'req/s'), bad: badOf(loads.bare) },
    { figure: `${prefix}the article's request path (4 round trips)`, value: describe('article', 'clicks/s'), bad: badOf(loads.article) },
    {
      figure: `${prefix}POST / (one click)`,
      value: describe('ours', 'clicks/s'),
      bad: badOf(loads.ours),
      ratio: `${toBare.toFixed(2)} × bare, ${toArticle.toFixed(2)} × article`,
      target: '≥ 1.1 × bare, ≥ 1.5 × article',
      met: toBare >= 1.1 && toArticle >= 1.5,
    },
  ];
}

/** Connections for batches of `size`: BATCH_CLICKS_IN_FLIGHT clicks in flight, between 2 and CONNECTIONS. */
export function batchConnections(size: number): number {
  return Math.max(2, Math.min(CONNECTIONS, Math.floor(BATCH_CLICKS_IN_FLIGHT / size)));
}

/**
 * Runs `rounds` rounds in which every contender is measured once, in an order that turns each
 * round, and runs backwards every other round, so that a spell of load from elsewhere on a shared
 * machine falls on all of them alike, and what one contender leaves behind (an AOF rewrite, a
 * garbage collection) does not fall on the same next one every time.
 */
export async function takingTurns<T extends string>(names: readonly T[], rounds: number, measure: (name: T) => Promise<Load>, log: (line: string) => void): Promise<Record<T, Load[]>> {
  const loads = Object.fromEntries(names.map((name) => [name, [] as Load[]])) as Record<T, Load[]>;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const turn = (i + round) % names.length;
      const name = names[round % 2 === 0 ? turn : names.length - 1 - turn]!;
      const load = await measure(name);
      loads[name].push(load);
      const bad = load.failed + load.errors > 0 ? `, ${load.failed} failed, ${load.errors} errors` : '';
      log(`  round ${round + 1}/${rounds} ${name}: ${fmt(load.rate)}/s, p99 ${ms(load.p99)}${bad}`);
    }
  }
  return loads;
}

export function rates(loads: Load[]): number[] {
  return loads.map((load) => load.rate);
}

/** The median of the round-by-round ratios: each pair was measured moments apart. */
export function medianOfRatios(a: Load[], b: Load[]): number {
  return median(a.map((load, round) => load.rate / b[round]!.rate));
}

async function workerDrainRate({ redisUrl, admin, namespace, apiEnv, log }: MainContext): Promise<{ count: number; rate: number }> {
  const count = 200_000;
  const drainEnv = { ...apiEnv, DECISION_STREAM_NAME: `${namespace}drain`, WORKER_GROUP: 'bench', REDIS_TIMEOUT_MS: '2000' };
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
  const worker = await startWorker(parsed.config, redisUrl, pino({ level: 'warn' }));
  try {
    while (!(await streamGroupState(admin, drainEnv.DECISION_STREAM_NAME, 'bench')).drained) await sleep(20);
  } finally {
    await worker.close();
  }
  const rate = count / ((performance.now() - started) / 1000);
  log(`  worker: ${fmt(rate)} decisions/s (${worker.counters.backend} counters)`);
  return { count, rate };
}

/**
 * Clicks decided per second through ClickStore.decideMany, `streams` batches of `perBatch` kept in
 * flight, as many HTTP requests would keep Redis busy. A click Redis failed is not counted, and
 * fails the measurement.
 */
export async function decidedRate({ store }: OpenStore, seconds: number, streams: number, perBatch: number, next: () => BenchClick): Promise<{ rate: number; count: number }> {
  let count = 0;
  const started = performance.now();
  const stream = async () => {
    while (performance.now() - started < seconds * 1000) {
      const verdicts = await store.decideMany(Array.from({ length: perBatch }, next));
      const failed = verdicts.find((verdict) => verdict instanceof Error);
      if (failed) throw failed;
      count += perBatch;
    }
  };
  await Promise.all(Array.from({ length: streams }, stream));
  return { rate: count / ((performance.now() - started) / 1000), count };
}

export async function countKeys(redis: Redis, pattern: string): Promise<number> {
  let count = 0;
  for (let cursor = '0'; ; ) {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 10_000);
    count += keys.length;
    cursor = next;
    if (cursor === '0') return count;
  }
}
