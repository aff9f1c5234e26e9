/** What the benchmark reads from Redis itself: memory, per-command counts and times, and pipelined ceilings. */
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../src/redis/connection.js';

export async function usedMemory(redis: RedisClient): Promise<number> {
  return Number(/^used_memory:(\d+)/m.exec(await redis.info('memory'))?.[1]);
}

/**
 * CPU time Redis's main thread has used, in µs (INFO cpu). Unlike a command's time in INFO
 * commandstats, which is time on the wall, it does not grow when the machine's other processes
 * take the core from Redis in the middle of a script.
 */
export async function mainThreadCpuUs(redis: RedisClient): Promise<number> {
  const info = await redis.info('cpu');
  const seconds = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1]);
  return (seconds('used_cpu_user_main_thread') + seconds('used_cpu_sys_main_thread')) * 1e6;
}

export interface CommandCount {
  calls: number;
  usec: number;
}

/** INFO commandstats: calls and total µs per command (`evalsha`, `cf.mexists`, `cluster|slots`, ...). */
export async function commandStats(redis: RedisClient): Promise<Map<string, CommandCount>> {
  const stats = new Map<string, CommandCount>();
  for (const [, name, calls, usec] of (await redis.info('commandstats')).matchAll(/^cmdstat_(\S+):calls=(\d+),usec=(\d+)/gm)) {
    stats.set(name!, { calls: Number(calls), usec: Number(usec) });
  }
  return stats;
}

/** What ran between two snapshots of commandStats. */
export function commandsBetween(before: Map<string, CommandCount>, after: Map<string, CommandCount>): Map<string, CommandCount> {
  const delta = new Map<string, CommandCount>();
  for (const [name, { calls, usec }] of after) {
    const earlier = before.get(name) ?? { calls: 0, usec: 0 };
    if (calls > earlier.calls) delta.set(name, { calls: calls - earlier.calls, usec: usec - earlier.usec });
  }
  return delta;
}

/**
 * How many commands per second Redis runs when `pipelines` pipelines of `perPipeline` commands are
 * kept in flight for `seconds`, as many HTTP requests would keep it busy; `add` puts the i-th
 * command on a pipeline.
 */
export async function pipelinedRate(
  redis: RedisClient,
  { seconds, pipelines, perPipeline }: { seconds: number; pipelines: number; perPipeline: number },
  add: (pipeline: ChainableCommander) => void,
): Promise<number> {
  let done = 0;
  const started = performance.now();
  const stream = async () => {
    while (performance.now() - started < seconds * 1000) {
      const pipeline = redis.pipeline();
      for (let i = 0; i < perPipeline; i++) add(pipeline);
      const replies = (await pipeline.exec()) ?? [];
      const failed = replies.find(([error]) => error);
      if (failed) throw failed[0]!;
      done += perPipeline;
    }
  };
  await Promise.all(Array.from({ length: pipelines }, stream));
  return done / ((performance.now() - started) / 1000);
}

/** Whether the server has RedisBloom (CF.EXISTS known): the service then uses the cuckoo filter. */
export async function hasBloom(redis: RedisClient): Promise<boolean> {
  const commands = (await redis.call('COMMAND', 'INFO', 'CF.EXISTS')) as unknown[];
  return commands[0] !== null && commands[0] !== undefined;
}

export async function redisVersion(redis: RedisClient): Promise<string> {
  return /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?';
}
