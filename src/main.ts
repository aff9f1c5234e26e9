import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { parseConfig } from './config.js';
import { startApiCluster } from './http/api-cluster.js';
import { startApi } from './http/start-api.js';
import { findRedisServer, RedisServerNotInstalled, startLocalRedis, type LocalRedisServer } from './redis/local-server.js';
import { startWorker } from './worker/start-worker.js';

// `--role worker` on the command line wins over ROLE in the environment.
const { values: flags } = parseArgs({ options: { role: { type: 'string' } } });
const parsed = parseConfig({ ...process.env, ...(flags.role === undefined ? {} : { ROLE: flags.role }) });
if (!parsed.ok) {
  for (const problem of parsed.problems) process.stderr.write(`Invalid setting: ${problem}\n`);
  process.exit(1);
}
const config = parsed.config;
const logger = pino({ level: config.logLevel });
const apiProcesses = config.http.processes === 'auto' ? availableParallelism() : config.http.processes;

let localRedis: LocalRedisServer | undefined;
/**
 * What to close on shutdown, in order: the API first, so no new decisions arrive while the worker
 * finishes. Each is given the moment by which it must be done.
 */
const parts: Array<{ close(deadlineMs?: number): Promise<void> }> = [];
/** Of SHUTDOWN_TIMEOUT_MS, what is kept for stopping the private Redis and exiting. */
const EXIT_RESERVE_MS = 250;

async function start(): Promise<void> {
  let redisUrl = config.redis.url;
  if (redisUrl === undefined) {
    localRedis = await startLocalRedis({ dataDir: config.redis.dataDir, binary: findRedisServer(config.redis.serverBin) });
    redisUrl = localRedis.url;
    logger.info(
      { url: redisUrl, dataDir: localRedis.dataDir, server: localRedis.binary },
      `no REDIS_URL or REDIS_HOST set: started a private ${localRedis.binary} on ${redisUrl} with its data in ${localRedis.dataDir}; it stops with this process`,
    );
  }
  if (config.role !== 'worker') {
    // A process forked by startApiCluster arrives here with ROLE=api and API_PROCESSES=1.
    if (apiProcesses === 1) parts.push(await startApi(config, redisUrl, logger));
    else parts.push(await startApiCluster(apiProcesses, redisUrl, logger, (reason) => void stop('API processes failing', reason, 1)));
  }
  if (config.role !== 'api') parts.push(await startWorker(config, redisUrl, logger));
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
  await localRedis?.stop();
  logger.info('stopped');
  process.exit(exitCode);
}

process.once('SIGTERM', () => void stop('SIGTERM'));
// A terminal's SIGINT reaches every process of the group; in a cluster's API process the primary
// decides when to stop, with SIGTERM.
if (cluster.isWorker) process.on('SIGINT', () => {});
else process.once('SIGINT', () => void stop('SIGINT'));

start().catch(async (error: Error) => {
  if (error instanceof RedisServerNotInstalled) process.stderr.write(`${error.message}\n`);
  else logger.fatal(`cannot start: ${error.message}`);
  for (const part of parts) await part.close().catch(() => {});
  await localRedis?.stop();
  process.exit(1);
});
