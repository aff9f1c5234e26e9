import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { Command, Option } from 'commander';
import { pino } from 'pino';
import { settingsHelp } from './cli/settings-help.js';
import { parseConfig } from './config.js';
import { startApiCluster } from './http/api-cluster.js';
import { metricsFromPrimary, serveClusterMetrics } from './http/cluster-metrics.js';
import { serveMetrics } from './http/metrics-server.js';
import { startApi } from './http/start-api.js';
import { createApiMetrics, createWorkerMetrics } from './metrics.js';
import { findRedisServer, RedisServerNotInstalled } from './redis/local-server.js';
import { DataFolderInUse, NoPrivateRedis, privateRedisUrl, startPrivateRedis, type PrivateRedis } from './redis/private-redis.js';
import { VERSION } from './version.js';
import { startWorker } from './worker/start-worker.js';

const program = new Command('click-fraud-api')
  .description(
    'The click fraud detection service: the HTTP API (POST / decides a click) and the stream worker that counts decisions. Settings come from environment variables, listed below.',
  )
  .version(VERSION)
  .addOption(new Option('--role <role>', 'what this process runs: the API and one stream worker, the API only, or a worker only; wins over ROLE').choices(['all', 'api', 'worker']))
  .addHelpText('after', settingsHelp)
  .showHelpAfterError('(--help lists the options and settings)')
  .parse();

// An API process forked by startApiCluster re-runs this program with the primary's arguments; its
// role is the ROLE=api the primary gave it.
const role = cluster.isWorker ? undefined : program.opts<{ role?: string }>().role;
const parsed = parseConfig({ ...process.env, ...(role === undefined ? {} : { ROLE: role }) });
if (!parsed.ok) {
  for (const problem of parsed.problems) process.stderr.write(`Invalid setting: ${problem}\n`);
  process.exit(1);
}
const config = parsed.config;
const logger = pino({ level: config.logLevel });
const apiProcesses = config.http.processes === 'auto' ? availableParallelism() : config.http.processes;

let privateRedis: PrivateRedis | undefined;
/**
 * What to close on shutdown, in order: the API first, so no new decisions arrive while the worker
 * finishes. Each is given the moment by which it must be done.
 */
const parts: Array<{ close(deadlineMs?: number): Promise<void> }> = [];
/** Of SHUTDOWN_TIMEOUT_MS, what is kept for stopping the private Redis and exiting. */
const EXIT_RESERVE_MS = 250;

async function start(): Promise<void> {
  logger.info({ version: VERSION, role: config.role, node: process.version }, `click-fraud-api ${VERSION} starting (ROLE=${config.role})`);
  const redisUrl = config.redis.url ?? (config.role === 'worker' ? await runningPrivateRedis() : await startOwnRedis());
  // The process's own metrics (CPU, memory, event loop) come with the API's where there is an API
  // in this process; the primary of several API processes reports only its worker's.
  const workerMetrics = config.role === 'api' ? undefined : createWorkerMetrics({ processMetrics: config.role === 'worker' });
  if (config.role !== 'worker') {
    // A process forked by startApiCluster arrives here with ROLE=api and API_PROCESSES=1.
    if (apiProcesses === 1) {
      const metrics = createApiMetrics();
      // A process forked by startApiCluster answers with every API process's, gathered by the primary.
      const metricsText = cluster.isWorker
        ? metricsFromPrimary(metrics.registry)
        : async () => (workerMetrics ? `${await metrics.registry.metrics()}\n${await workerMetrics.registry.metrics()}` : metrics.registry.metrics());
      parts.push(await startApi(config, redisUrl, logger, { metrics, metricsText }));
    } else {
      const stopServing = serveClusterMetrics(workerMetrics?.registry);
      const api = await startApiCluster(apiProcesses, redisUrl, logger, (reason) => void stop('API processes failing', reason, 1));
      parts.push({ close: () => api.close().finally(stopServing) });
    }
  }
  if (config.role !== 'api') parts.push(await startWorker(config, redisUrl, logger, workerMetrics));
  if (config.role === 'worker' && config.worker.metricsPort !== undefined) {
    const server = await serveMetrics(workerMetrics!.registry, { port: config.worker.metricsPort, host: config.http.host });
    logger.info({ port: server.port }, `worker metrics on http://${config.http.host}:${server.port}/metrics`);
    parts.push(server);
  }
}

/** No Redis configured: this service runs the data folder's private one. */
async function startOwnRedis(): Promise<string> {
  const { dataDir, privatePort, serverBin } = config.redis;
  privateRedis = await startPrivateRedis({ dataDir, binary: findRedisServer(serverBin), preferredPort: privatePort });
  const { server, cleared, gotPreferredPort } = privateRedis;
  if (cleared) logger.warn({ dataDir: server.dataDir }, cleared);
  const port =
    privatePort === 0 ? 'a free port, as REDIS_PRIVATE_PORT=0 asks' : gotPreferredPort ? `port ${privatePort}` : `port ${privatePort} is taken, so on a free one`;
  logger.info(
    { url: server.url, dataDir: server.dataDir, server: server.binary, redisPid: server.pid },
    `no REDIS_URL or REDIS_HOST set: started a private ${server.binary} on ${server.url} (${port}) with its data in ${server.dataDir}; npm run worker, npm run blacklist and npm run bench find it there; it stops after this service`,
  );
  return server.url;
}

/** No Redis configured, and a worker alone: the one the service on the same data folder runs. */
async function runningPrivateRedis(): Promise<string> {
  const url = await privateRedisUrl(config.redis.dataDir);
  logger.info({ url, dataDir: config.redis.dataDir }, `no REDIS_URL or REDIS_HOST set: using ${url}, the private Redis of the service that holds ${config.redis.dataDir}`);
  return url;
}

let stopping = false;
async function stop(cause: string, detail?: string, exitCode = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ cause, detail }, 'shutting down: finishing in-flight work');
  // Whatever state Redis is in (down, hung, failing over), the process is gone by the deadline.
  setTimeout(() => {
    logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown did not finish within SHUTDOWN_TIMEOUT_MS; exiting anyway');
    process.exit(1);
  }, config.shutdownTimeoutMs).unref();
  const deadline = Date.now() + Math.max(0, config.shutdownTimeoutMs - EXIT_RESERVE_MS);
  for (const part of parts) await part.close(deadline);
  await privateRedis?.stop();
  logger.info('stopped');
  process.exit(exitCode);
}

process.once('SIGTERM', () => void stop('SIGTERM'));
// A terminal's SIGINT reaches every process of the group; in a cluster's API process the primary
// decides when to stop, with SIGTERM. (The private Redis has a group of its own.)
if (cluster.isWorker) process.on('SIGINT', () => {});
else process.once('SIGINT', () => void stop('SIGINT'));

start().catch(async (error: Error) => {
  if (error instanceof RedisServerNotInstalled || error instanceof DataFolderInUse || error instanceof NoPrivateRedis) process.stderr.write(`${error.message}\n`);
  else logger.fatal(`cannot start: ${error.message}`);
  for (const part of parts) await part.close().catch(() => {});
  await privateRedis?.stop();
  process.exit(1);
});
