import type { RedisClient } from './connection.js';

export interface RedisCapabilities {
  version: string;
  /** RedisBloom: cuckoo filters (Redis Stack, Redis 8). */
  bloom: boolean;
  /** RedisTimeSeries (Redis Stack, Redis 8). */
  timeseries: boolean;
  /** RediSearch (Redis Stack, Redis 8). */
  search: boolean;
}

const MINIMUM_VERSION = [7, 0];

/**
 * Asks the server which module commands it knows. `COMMAND INFO` answers a nil entry for an
 * unknown command, and unlike `MODULE LIST` it also sees Redis 8's built-in modules and works
 * where managed services disable MODULE.
 */
export async function detectCapabilities(redis: RedisClient): Promise<RedisCapabilities> {
  const [info, commands] = await Promise.all([
    redis.info('server'),
    redis.call('COMMAND', 'INFO', 'CF.EXISTS', 'TS.ADD', 'FT.SEARCH') as Promise<unknown[]>,
  ]);
  const version = /^redis_version:(\S+)/m.exec(info)?.[1] ?? 'unknown';
  const [major = 0, minor = 0] = version.split('.').map(Number);
  if (major < MINIMUM_VERSION[0]! || (major === MINIMUM_VERSION[0] && minor < MINIMUM_VERSION[1]!)) {
    throw new Error(`Redis ${version} is too old: this service needs Redis ${MINIMUM_VERSION.join('.')} or newer`);
  }
  const [bloom, timeseries, search] = commands.map((entry) => entry !== null);
  return { version, bloom: bloom!, timeseries: timeseries!, search: search! };
}
