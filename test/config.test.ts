import { describe, expect, it } from 'vitest';
import { parseConfig, SETTINGS } from '../src/config.js';

describe('parseConfig', () => {
  it('has the documented defaults', () => {
    const result = parseConfig({});
    expect(result).toEqual({
      ok: true,
      config: {
        role: 'all',
        http: { port: 5000, host: '0.0.0.0', processes: 1, batchMaxClicks: 1000, requestTimeoutMs: 30_000, headersTimeoutMs: 10_000 },
        redis: { url: undefined, dataDir: '.redis-data', privatePort: 6379, serverBin: undefined, timeoutMs: 250, maxInFlight: 10_000, waitReplicas: undefined },
        rules: {
          ip_blacklist: { mode: 'enforce' },
          ip_range: { mode: 'enforce' },
          click_spam: { mode: 'enforce', threshold: 2, window_sec: 10 },
          ip_flood: { mode: 'off', threshold: 20, window_sec: 10 },
          device_farm: { mode: 'off', threshold: 5, window_sec: 60 },
        },
        blacklist: { backend: 'auto', key: 'ip_cf', capacity: 1_000_000, bucketSize: 2, expansion: 1 },
        admin: { token: undefined, banSweepIntervalMs: 1000 },
        stream: { key: 'fraud:decisions', maxLen: 1_000_000, partitions: 'auto' },
        keyPrefix: 'fraud:',
        worker: {
          group: 'counters',
          consumer: undefined,
          batchSize: 500,
          blockMs: 1000,
          claimIdleMs: 30_000,
          maxDeliveries: 5,
          deadLetterKey: 'fraud:decisions:dead',
        },
        stats: { backend: 'auto', retentionMs: 86_400_000, minuteRetentionMs: 2_592_000_000, appName: 'click-fraud' },
        offenders: { backend: 'auto', retentionMs: 86_400_000 },
        live: { maxEventStreams: 100 },
        viewer: { password: undefined },
        failMode: 'closed',
        logLevel: 'info',
        shutdownTimeoutMs: 10_000,
      },
    });
  });

  it.each([
    [{ REDIS_HOST: 'redis', REDIS_PORT: '6380' }, 'redis://redis:6380'],
    [{ REDIS_HOST: 'redis' }, 'redis://redis:6379'],
    [{ REDIS_PORT: '6380' }, 'redis://localhost:6380'],
    [{ REDIS_URL: 'rediss://:secret@cache:6380/2', REDIS_HOST: 'ignored' }, 'rediss://:secret@cache:6380/2'],
  ])('finds the Redis in %j', (env, url) => {
    const result = parseConfig(env);
    expect(result.ok && result.config.redis.url).toBe(url);
  });

  it('reads a window in seconds, decimals allowed, as milliseconds', () => {
    const result = parseConfig({ CLICK_SPAM_WINDOW_IN_SEC: '2.5' });
    expect(result.ok && result.config.rules.click_spam.window_sec).toBe(2.5);
  });

  it('treats an empty value as unset', () => {
    const result = parseConfig({ CLICK_SPAM_THRESHOLD: '', REDIS_URL: '' });
    expect(result.ok && result.config.rules.click_spam.threshold).toBe(2);
    expect(result.ok && result.config.redis.url).toBeUndefined();
  });

  it('reports every problem, one line each, naming the setting and the value', () => {
    expect(
      parseConfig({
        PORT: '70000',
        REDIS_URL: 'http://redis:6379',
        REDIS_TIMEOUT_MS: '0',
        CLICK_SPAM_THRESHOLD: 'abc',
        CLICK_SPAM_WINDOW_IN_SEC: '-1',
        IP_CUCKOO_FILTER_CAPACITY: '1.5',
        LOG_LEVEL: 'loud',
      }),
    ).toEqual({
      ok: false,
      problems: [
        'PORT must be at most 65535 (got "70000")',
        'REDIS_URL must be a redis:// or rediss:// URL (got 17 characters, not shown: REDIS_URL is secret)',
        'REDIS_TIMEOUT_MS must be at least 1 (got "0")',
        'CLICK_SPAM_THRESHOLD must be a whole number (got "abc")',
        'CLICK_SPAM_WINDOW_IN_SEC must be more than 0 (got "-1")',
        'IP_CUCKOO_FILTER_CAPACITY must be a whole number (got "1.5")',
        'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
      ],
    });
  });

  it('refuses a zero threshold, which would make every click spam', () => {
    expect(parseConfig({ CLICK_SPAM_THRESHOLD: '0' })).toEqual({ ok: false, problems: ['CLICK_SPAM_THRESHOLD must be at least 1 (got "0")'] });
  });

  it('refuses a headers timeout longer than the request timeout, which Node would refuse too', () => {
    expect(parseConfig({ HTTP_REQUEST_TIMEOUT_MS: '5000', HTTP_HEADERS_TIMEOUT_MS: '6000' })).toEqual({
      ok: false,
      problems: ['HTTP_HEADERS_TIMEOUT_MS must be at most HTTP_REQUEST_TIMEOUT_MS (5000) (got "6000")'],
    });
  });

  it('documents every setting', () => {
    for (const [name, setting] of Object.entries(SETTINGS)) expect(setting.doc, name).not.toBe('');
  });
});
