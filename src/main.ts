import { pino } from 'pino';
import { parseConfig } from './config.js';
import { RedisServerNotInstalled, startLocalRedis, type LocalRedisServer } from './redis/local-server.js';
import { startApi, type ApiService } from './service.js';

const parsed = parseConfig(process.env);
if (!parsed.ok) {
  for (const problem of parsed.problems) process.stderr.write(`Invalid setting: ${problem}\n`);
  process.exit(1);
}
const config = parsed.config;
const logger = pino({ level: config.logLevel });

let localRedis: LocalRedisServer | undefined;
let api: ApiService | undefined;

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
  api = await startApi(config, redisUrl, logger);
}

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down: finishing in-flight requests');
  await api?.close();
  await localRedis?.stop();
  logger.info('stopped');
  process.exit(0);
}

process.once('SIGTERM', () => void stop('SIGTERM'));
process.once('SIGINT', () => void stop('SIGINT'));

start().catch(async (error: Error) => {
  if (error instanceof RedisServerNotInstalled) process.stderr.write(`${error.message}\n`);
  else logger.fatal(`cannot start: ${error.message}`);
  await localRedis?.stop();
  process.exit(1);
});
