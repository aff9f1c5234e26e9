/**
 * `npm run bench`: the main table (one Redis), how a click's cost grows with the work, and the
 * service on a Redis Cluster. Every figure is measured in this run on this machine, each the median
 * of several rounds, counting only successful answers. Nothing here is a test: the targets are
 * printed beside the figures, and only `--check` turns a missed target or a row with failed
 * requests into a non-zero exit.
 *
 *   npm run bench                           every section
 *   npm run bench -- --check                exit 1 when a target is missed or a row is invalid
 *   npm run bench -- --only main,cluster    some sections (main, growth, cluster)
 */
import { cpus, loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { parseConfig } from '../src/config.js';
import { privateRedisUrl } from '../src/redis/private-redis.js';
import { clusterSection } from './cluster.js';
import { growthSection } from './growth.js';
import { wrkInstalled } from './load.js';
import { BATCH_ROUNDS, BATCH_SIZES, batchConnections, CLICK_ROUNDS, CONNECTIONS, HALF_LOAD_CONNECTIONS, mainTable, ROUND_SECONDS, WINDOW_SECONDS, WRK_CONNECTIONS } from './main-table.js';
import { redisProgram, startPrivateRedis, type PrivateRedis } from './processes.js';
import { hasBloom, redisVersion } from './redis-figures.js';
import { printGrid, printTable, verdictOf, type Row } from './table.js';

const SECTIONS = ['main', 'growth', 'cluster'] as const;
const args = process.argv.slice(2);
const check = args.includes('--check');
const onlyAt = args.indexOf('--only');
const only = onlyAt === -1 ? [...SECTIONS] : (args[onlyAt + 1] ?? '').split(',');
const unknown = only.filter((name) => !(SECTIONS as readonly string[]).includes(name));
if (unknown.length > 0) {
  console.error(`unknown section ${unknown.join(', ')}: pick from ${SECTIONS.join(', ')}`);
  process.exit(2);
}

const log = (line: string) => process.stderr.write(`${line}\n`);
const namespace = `bench:${Date.now().toString(36)}:`;
const apiEnv = {
  KEY_PREFIX: namespace,
  IP_CUCKOO_FILTER_NAME: `${namespace}ip_cf`,
  DECISION_STREAM_NAME: `${namespace}decisions`,
  DEAD_LETTER_STREAM_NAME: `${namespace}dead`,
  DECISION_STREAM_MAXLEN: '1000000',
  LOG_LEVEL: 'warn',
  HOST: '127.0.0.1',
};
const started = Date.now();
const loadBefore = loadavg()[0]!;
const program = redisProgram();
const wrk = wrkInstalled();
const privateRedis: PrivateRedis[] = [];
const allRows: Row[] = [];

// The main table runs on the configured Redis (REDIS_URL, or REDIS_HOST/REDIS_PORT); else on the
// private Redis of an `npm start` running on the same data folder (the bench's keys have a namespace
// of their own and are deleted at the end); else on a private Redis of its own.
const settings = parseConfig(process.env);
if (!settings.ok) throw new Error(settings.problems.join('\n'));
let redisUrl = settings.config.redis.url ?? (await privateRedisUrl(settings.config.redis.dataDir, 0).catch(() => undefined));
const redisSource = settings.config.redis.url ? 'configured' : redisUrl ? "the running service's private Redis" : undefined;
if (!redisUrl) {
  if (!program) {
    console.error('npm run bench needs REDIS_URL, or redis-server (or Redis Stack: bash scripts/install-redis-stack.sh) to run private servers');
    process.exit(2);
  }
  privateRedis.push(await startPrivateRedis(program));
  redisUrl = privateRedis[0]!.url;
}
/** The growth and cluster sections run Redis servers of their own. */
const skipped = (section: string) => console.log(`\n${section}: skipped, it runs private Redis servers and there is no redis-server (bash scripts/install-redis-stack.sh)`);
const admin = new Redis(redisUrl);
try {
  const bloom = await hasBloom(admin);
  console.log(`click-fraud-api benchmark, ${new Date().toISOString()}, ${cpus().length} × ${cpus()[0]?.model.trim()}, Node ${process.version}`);
  console.log(
    `Redis ${await redisVersion(admin)} (${redisSource ?? `private: ${program!.name}, append-only file everysec`}), blacklist: ${bloom ? 'cuckoo filter' : 'set'}; load average ${loadBefore.toFixed(2)} at the start`,
  );
  console.log('load generator, servers and Redis on the same machine; only 2xx answers count (for /batch: the clicks they decided)');

  if (only.includes('main')) {
    const main = await mainTable({ redisUrl, admin, namespace, apiEnv, backend: bloom ? 'cuckoo' : 'set', wrk, log });
    allRows.push(...main.rows);
    printTable(
      `Main table: ${CLICK_ROUNDS} rounds of ${ROUND_SECONDS} s for single clicks (the three contenders taking turns in each; ratios are the median of the rounds' ratios), ${BATCH_ROUNDS} for batches, 3 rounds elsewhere; ` +
        `autocannon with ${CONNECTIONS} keep-alive connections (${HALF_LOAD_CONNECTIONS} at half load; /batch of ${BATCH_SIZES.map((size) => `${size}: ${batchConnections(size)}`).join(', ')})` +
        `${wrk ? `, wrk with ${WRK_CONNECTIONS}` : ''}; threshold 2, window ${WINDOW_SECONDS} s, 20,000 devices`,
      main.rows,
    );
  }

  if (only.includes('growth') && !program) skipped('How cost grows');
  else if (only.includes('growth') && program) {
    // A Redis of its own, without persistence: a million preloaded devices need not go to disk, and FLUSHALL between cases is safe.
    const growthRedis = await startPrivateRedis({ ...program, args: [...program.args, '--appendonly', 'no'] });
    privateRedis.push(growthRedis);
    const growth = await growthSection({ redisUrl: growthRedis.url, namespace, apiEnv, log });
    allRows.push(...growth.rows);
    printGrid(
      `How cost grows (private ${program.name}, no persistence; each case from an empty Redis, preloaded, then POST / at full load, 2 rounds of ${ROUND_SECONDS} s, devices picked at random; window 60 s so that preloaded clicks stay in it; Redis CPU µs per click is its main thread's CPU time (INFO cpu) over the clicks decided)`,
      growth.header,
      growth.cells,
    );
  }

  if (only.includes('cluster') && !program) skipped('Redis Cluster');
  else if (only.includes('cluster') && program) {
    const cluster = await clusterSection({ program, singleRedisUrl: redisUrl, apiEnv, log });
    allRows.push(...cluster.rows);
    printGrid(`Redis Cluster: 3 masters with a replica each (private ${program.name}), POST / at full load, 3 rounds of ${ROUND_SECONDS} s taking turns with one Redis; per master, what ran during the cluster's rounds`, cluster.header, cluster.cells);
    printTable('Cluster figures', cluster.rows);
    console.log(`\n${cluster.model.join('\n')}`);
  }

  const failing = allRows.filter((row) => verdictOf(row) === 'MISSED' || verdictOf(row) === 'INVALID');
  console.log(`\n${Math.round((Date.now() - started) / 1000)} s in all; load average ${loadavg()[0]!.toFixed(2)} at the end`);
  if (failing.length > 0) console.log(`${failing.length} row(s) missed a target or had failed requests: ${failing.map((row) => row.figure).join('; ')}`);
  if (check && failing.length > 0) process.exitCode = 1;
} finally {
  await cleanUp();
}

async function cleanUp(): Promise<void> {
  if (redisSource) {
    for (let cursor = '0'; ; ) {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${namespace}*`, 'COUNT', 10_000);
      if (keys.length > 0) await admin.unlink(...keys);
      cursor = next;
      if (cursor === '0') break;
    }
  }
  admin.disconnect();
  for (const redis of privateRedis) await redis.stop();
}
