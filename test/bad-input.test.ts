import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './support/api.js';

interface ErrorAnswer {
  error: string;
  message: string;
  issues?: Array<{ path: string; message: string }>;
}

const valid = { device_id: 'dev-1', ip: '10.0.0.1', transaction_id: 'tx-1' };

describe('bad input gets a clear 4xx and writes nothing', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(() => api.close());

  async function expectRefused(body: unknown, status: number, headers: Record<string, string> = {}): Promise<ErrorAnswer> {
    const before = await snapshot();
    const res = await api.post(body, headers);
    const text = await res.text();
    expect(res.status, text).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(text).not.toMatch(/\bat \S+:\d+:\d+/); // no stack trace
    expect(await snapshot()).toEqual(before);
    return JSON.parse(text) as ErrorAnswer;
  }

  /** Every decision adds a stream entry, so unchanged keys and stream length mean nothing was written. */
  async function snapshot() {
    return { keys: await api.writtenKeys(), streamLength: await api.admin.xlen(api.config.stream.key) };
  }

  it('names every missing field', async () => {
    const answer = await expectRefused({}, 400);
    expect(answer.error).toBe('invalid_click');
    expect(answer.issues).toEqual([
      { path: 'device_id', message: 'device_id is required' },
      { path: 'transaction_id', message: 'transaction_id is required' },
      { path: 'ip', message: 'ip is required' },
    ]);
  });

  it('names every wrong-typed field', async () => {
    const answer = await expectRefused({ device_id: 42, ip: ['1.1.1.1'], transaction_id: null }, 400);
    expect(answer.issues).toEqual([
      { path: 'device_id', message: 'device_id must be a string' },
      { path: 'transaction_id', message: 'transaction_id must be a string' },
      { path: 'ip', message: 'ip must be a string' },
    ]);
  });

  it('bounds every string', async () => {
    const answer = await expectRefused({ device_id: 'd'.repeat(129), ip: '1'.repeat(65), transaction_id: 't'.repeat(129) }, 400);
    expect(answer.issues).toEqual([
      { path: 'device_id', message: 'device_id must be at most 128 characters' },
      { path: 'transaction_id', message: 'transaction_id must be at most 128 characters' },
      { path: 'ip', message: 'ip must be at most 64 characters' },
    ]);
    await expectRefused({ ...valid, device_id: '' }, 400);
  });

  it('accepts ids of exactly 128 characters', async () => {
    const res = await api.post({ ...valid, device_id: 'd'.repeat(128), transaction_id: 't'.repeat(128) });
    expect(res.status).toBe(200);
  });

  it.each(['1.1.1', '01.1.1.1', '0x1.1.1.1', '256.1.1.1', 'fe80::1%eth0', 'localhost', '1.1.1.1 ', '', '::ffff:1.1.1.1.1', '2001:db8:::1'])(
    'refuses %j as an ip',
    async (ip) => {
      const answer = await expectRefused({ ...valid, ip }, 400);
      expect(answer.issues).toEqual([{ path: 'ip', message: 'ip must be an IPv4 or IPv6 address' }]);
    },
  );

  it.each([
    ['malformed JSON', '{"device_id": "d",'],
    ['a body that is not JSON', 'device_id=d&ip=1.1.1.1'],
  ])('refuses %s as invalid_json', async (_, body) => {
    const answer = await expectRefused(body, 400);
    expect(answer.error).toBe('invalid_json');
    expect(answer.message).toMatch(/^body is not valid JSON/);
  });

  it.each([
    ['an array', [valid]],
    ['null', null],
    ['a number', 5],
    ['a JSON string', '"just a string"'],
  ])('refuses %s as the body', async (_, body) => {
    const answer = await expectRefused(body, 400);
    expect(answer.issues).toEqual([{ path: '(body)', message: 'body must be a JSON object with device_id, ip and transaction_id' }]);
  });

  it('refuses an empty body', async () => {
    const before = await snapshot();
    const res = await fetch(api.base, { method: 'POST' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorAnswer).error).toBe('invalid_click');
    expect(await snapshot()).toEqual(before);
  });

  it('refuses a body over 16 KiB with 413', async () => {
    const answer = await expectRefused({ ...valid, padding: 'x'.repeat(16 * 1024) }, 413);
    expect(answer).toEqual({ error: 'body_too_large', message: 'body must be at most 16 KiB' });
  });

  it('refuses a body in an encoding it cannot read with 415', async () => {
    const answer = await expectRefused(JSON.stringify(valid), 415, { 'content-encoding': 'compress' });
    expect(answer.error).toBe('unsupported_encoding');
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await fetch(`${api.base}/clicks`, { method: 'POST' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'not_found', message: 'no route for POST /clicks' });
  });

  it('ignores fields it does not know', async () => {
    const res = await api.post({ ...valid, campaign: 'c-9' });
    expect(res.status).toBe(200);
  });
});
