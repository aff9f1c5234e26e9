import { randomUUID } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, SETTINGS } from '../src/config.js';
import { capturingLogger, redisUrl, startTestApi, testConfig } from './support/api.js';
import { listeningPort, startMain } from './support/process.js';

const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) child.kill('SIGKILL');
});

describe('secret settings are never printed', () => {
  it('marks the tokens, the passwords and the URL that can carry one as secret', () => {
    const secrets = Object.entries(SETTINGS)
      .filter(([, setting]) => 'secret' in setting && setting.secret)
      .map(([name]) => name);
    expect(secrets).toEqual(['REDIS_URL', 'REDIS_CLUSTER_NODES', 'ADMIN_TOKEN', 'VIEWER_PASSWORD']);
  });

  it('reports a wrong secret by its length, never its value', () => {
    const result = parseConfig({ ADMIN_TOKEN: 'hunter2-secret', REDIS_URL: 'http://:hunter3@redis:6379' });
    expect(result).toEqual({
      ok: false,
      problems: [
        'REDIS_URL must be a redis:// or rediss:// URL (got 26 characters, not shown: REDIS_URL is secret)',
        'ADMIN_TOKEN must be at least 16 characters (got 14 characters, not shown: ADMIN_TOKEN is secret)',
      ],
    });
  });

  it('refuses to start on a wrong secret without printing it', async () => {
    const main = startMain({ ADMIN_TOKEN: 'hunter2-secret', REDIS_URL: 'http://:hunter3@redis:6379' });
    running.push(main.child);
    expect(await main.exit).toBe(1);
    expect(main.stderr().trim().split('\n')).toEqual([
      'Invalid setting: REDIS_URL must be a redis:// or rediss:// URL (got 26 characters, not shown: REDIS_URL is secret)',
      'Invalid setting: ADMIN_TOKEN must be at least 16 characters (got 14 characters, not shown: ADMIN_TOKEN is secret)',
    ]);
    expect(main.stdout() + main.stderr()).not.toMatch(/hunter/);
  });

  describe('a running service with a password-protected Redis', () => {
    const user = `test-secrets-${randomUUID().slice(0, 8)}`;
    const password = `redis-password-${randomUUID()}`;
    const adminToken = `admin-token-${randomUUID()}`;
    const viewerPassword = `viewer-password-${randomUUID()}`;
    const { hostname, port } = new URL(redisUrl);
    let admin: Redis;

    beforeAll(async () => {
      admin = new Redis(redisUrl);
      // A user of its own, so that the password is really used and really needed.
      await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, '~*', '&*', '+@all');
    });
    afterAll(async () => {
      await admin.call('ACL', 'DELUSER', user);
      admin.disconnect();
    });

    /** Runs the service (API and worker) at debug level, uses it a little, stops it, and answers all it printed and /readyz. */
    async function printedBy(url: string) {
      const main = startMain({ ...testConfig().env, REDIS_URL: url, ADMIN_TOKEN: adminToken, VIEWER_PASSWORD: viewerPassword, LOG_LEVEL: 'debug' });
      running.push(main.child);
      const base = `http://127.0.0.1:${await listeningPort(main.stdout, main.exit)}`;
      const readyz = await fetch(`${base}/readyz`);
      // The views, right and wrong, for what they might log.
      expect((await fetch(`${base}/stats`, { headers: { authorization: `Basic ${Buffer.from(`viewer:${viewerPassword}`).toString('base64')}` } })).status).toBe(200);
      expect((await fetch(`${base}/stats`, { headers: { authorization: 'Basic d3Jvbmc6d3Jvbmc=' } })).status).toBe(401);
      expect(readyz.status).toBe(200);
      const readyzBody = await readyz.text();
      const click = await fetch(base, { method: 'POST', body: JSON.stringify({ device_id: 'd', ip: '10.0.0.1', transaction_id: 't' }) });
      expect(click.status).toBe(200);
      main.child.kill('SIGTERM');
      expect(await main.exit).toBe(0);
      return { readyz: JSON.parse(readyzBody) as { redis: { url: string } }, printed: main.stdout() + main.stderr() + readyzBody };
    }

    it('shows neither the Redis password in the URL, the admin token nor the viewer password in its logs or /readyz', async () => {
      const { readyz, printed } = await printedBy(`redis://${user}:${password}@${hostname}:${port}`);
      expect(readyz.redis.url).toBe(`redis://${user}:***@${hostname}:${port}`);
      expect(printed).toContain('admin API on /admin/blacklist');
      expect(printed).toContain('need VIEWER_PASSWORD');
      expect(printed).not.toContain(password);
      expect(printed).not.toContain(adminToken);
      expect(printed).not.toContain(viewerPassword);
    });

    it('masks a password given as ?password=, which ioredis reads too', async () => {
      const log = capturingLogger('debug');
      const api = await startTestApi({}, `redis://${hostname}:${port}/?username=${user}&password=${password}`, log.logger);
      try {
        const readyz = await (await fetch(`${api.base}/readyz`)).text();
        expect((JSON.parse(readyz) as { redis: { url: string } }).redis.url).toBe(`redis://${hostname}:${port}/?username=${user}&password=***`);
        expect((await api.click('d', 't')).fraud_type).toBe('clean');
        expect(readyz + JSON.stringify(log.lines())).not.toContain(password);
      } finally {
        await api.close();
      }
    });
  });
});
