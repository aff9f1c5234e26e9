import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { parseConfig } from './config.js';
import { startApi } from './http/start-api.js';
import { RedisServerNotInstalled, startLocalRedis, type LocalRedisServer } from './redis/local-server.js';
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

let localRedis: LocalRedisServer | undefined;
/** What to close on shutdown, in order: the API first, so no new decisions arrive while the worker finishes. */
const parts: Array<{ close(): Promise<void> }> = [];

async function start(): Promise<void> {
  let redisUrl = config.redis.url;
  if (redisUrl === undefined) {
    localRedis = await startLocalRedis({ dataDir: config.redis.dataDir });
    redisUrl = localRedis.url;
    logger.info(
      { url: redisUrl, dataDir: localRedis.dataDir },
      `no REDIS_URL or REDIS_HOST set: started a private redis-server on ${redisUrl} with its data in ${localRedis.dataDir}; it stops with this process`,
    );
  }
  if (config.role !== 'worker') parts.push(await startApi(config, redisUrl, logger));
  if (config.role !== 'api') parts.push(await startWorker(config, redisUrl, logger));
}

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down: finishing in-flight work');
  for (const part of parts) await part.close();
  await localRedis?.stop();
  logger.info('stopped');
  process.exit(0);
}

process.once('SIGTERM', () => void stop('SIGTERM'));
process.once('SIGINT', () => void stop('SIGINT'));

start().catch(async (error: Error) => {
  if (error instanceof RedisServerNotInstalled) process.stderr.write(`${error.message}\n`);
  else logger.fatal(`cannot start: ${error.message}`);
  for (const part of parts) await part.close().catch(() => {});
  await localRedis?.stop();
  process.exit(1);
});
