import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { startApi } from '../src/http/start-api.js';
import { startLocalRedis } from '../src/redis/local-server.js';
import { redisUrl, startTestApi, testConfig, type TestApi } from './support/api.js';

describe('the set blacklist (plain Redis, or BLACKLIST_BACKEND=set)', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ BLACKLIST_BACKEND: 'set' });
  });
  afterAll(() => api.close());

  it('is announced in /readyz with the command that blocks an address', async () => {
    const key = api.config.blacklist.key;
    expect(api.service.blacklist).toEqual({ backend: 'set', key, addCommand: `SADD ${key} <ip>` });
    const readyz = await fetch(`${api.base}/readyz`);
    expect(readyz.status).toBe(200);
    expect(await readyz.json()).toMatchObject({ ready: true, blacklist: { backend: 'set', key, add_command: `SADD ${key} <ip>` } });
  });

  it('blocks exactly the addresses in the set, and unblocks on SREM', async () => {
    await api.admin.sadd(api.config.blacklist.key, '198.51.100.7');
    expect((await api.click('d1', 't1', '198.51.100.7')).fraud_type).toBe('ip_blacklist');
    expect((await api.click('d2', 't1', '198.51.100.8')).fraud_type).toBe('clean');
    await api.admin.srem(api.config.blacklist.key, '198.51.100.7');
    expect((await api.click('d3', 't1', '198.51.100.7')).fraud_type).toBe('clean');
  });
});

describe('start-up checks of the blacklist', () => {
  it('refuses a key that holds something else, naming the key and the fix', async () => {
    const config = testConfig({ BLACKLIST_BACKEND: 'set' });
    const admin = new Redis(redisUrl);
    try {
      await admin.set(config.blacklist.key, 'oops');
      await expect(startApi(config, redisUrl, pino({ level: 'silent' }))).rejects.toThrow(
        `Redis key "${config.blacklist.key}" holds a string, not a set: point IP_CUCKOO_FILTER_NAME at another key or delete it`,
      );
    } finally {
      await admin.del(config.blacklist.key);
      admin.disconnect();
    }
  });

  it('with BLACKLIST_BACKEND=auto picks the backend the server supports', async () => {
    const api = await startTestApi();
    try {
      expect(api.service.blacklist.backend).toBe(api.service.capabilities.bloom ? 'cuckoo' : 'set');
    } finally {
      await api.close();
    }
  });

  it('with BLACKLIST_BACKEND=cuckoo refuses a server without RedisBloom', async () => {
    const probe = await startTestApi({ BLACKLIST_BACKEND: 'set' });
    const bloom = probe.service.capabilities.bloom;
    await probe.close();
    // Where the test Redis has RedisBloom (REDIS_URL a Stack server), a private redis-server without modules.
    const plain = bloom ? await startLocalRedis({ dataDir: mkdtempSync(join(tmpdir(), 'no-bloom-')) }) : undefined;
    try {
      await expect(startApi(testConfig({ BLACKLIST_BACKEND: 'cuckoo' }), plain?.url ?? redisUrl, pino({ level: 'silent' }))).rejects.toThrow(
        'BLACKLIST_BACKEND=cuckoo needs the RedisBloom module (Redis Stack or Redis 8), which this Redis does not have',
      );
    } finally {
      await plain?.stop();
      if (plain) rmSync(plain.dataDir, { recursive: true, force: true });
    }
  });
});
