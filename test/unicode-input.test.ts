import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './support/api.js';
import { runCli } from './support/cli.js';

interface ErrorAnswer {
  error: string;
  message: string;
  issues?: Array<{ path: string; message: string }>;
}

const TOKEN = 'test-admin-token-0123456789';
const LONE_SURROGATE = 'must be well-formed Unicode (it holds a lone surrogate such as \\ud800)';
const EMOJI = '\u{1F600}';

/**
 * Text that has no UTF-8 form (lone surrogates) or arrives as bytes that are not UTF-8 would reach
 * Redis as U+FFFD, merging distinct ids. Each is refused with a 400 naming the field, and nothing is
 * written; well-formed text of any script is kept exactly, its length counted in characters.
 */
describe('ids and texts must be well-formed Unicode', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ ADMIN_TOKEN: TOKEN });
  });
  afterAll(() => api.close());

  /** Every decision adds a stream entry, so unchanged keys and stream length mean nothing was written. */
  const snapshot = async () => ({ keys: await api.writtenKeys(), streamLength: await api.admin.xlen(api.config.stream.key) });

  const postBytes = (path: string, body: Buffer, contentType = 'application/json') =>
    fetch(`${api.base}${path}`, { method: 'POST', headers: { 'content-type': contentType }, body });

  it.each(['\ud800', '\udc00', '\udfff', `dev-\ud83d`, `\ude00-dev`])('refuses the device id %j, which Redis would store as U+FFFD', async (deviceId) => {
    const before = await snapshot();
    // JSON.stringify writes a lone surrogate as an escape (`"\ud800"`), exactly as a client would send it.
    const res = await api.post({ device_id: deviceId, ip: '10.0.0.1', transaction_id: 'tx' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: 'invalid_click',
      message: 'the click has invalid fields',
      issues: [{ path: 'device_id', message: `device_id ${LONE_SURROGATE}` }],
    });
    expect(await snapshot()).toEqual(before);
  });

  it('refuses lone-surrogate transaction ids, which would all be one transaction: no unlimited clean clicks for one device', async () => {
    const before = await snapshot();
    for (let unit = 0xd800; unit < 0xd80a; unit += 1) {
      const res = await api.post({ device_id: 'dev-surrogates', ip: '10.0.0.1', transaction_id: String.fromCharCode(unit) });
      expect(res.status).toBe(400);
      expect(((await res.json()) as ErrorAnswer).issues).toEqual([{ path: 'transaction_id', message: `transaction_id ${LONE_SURROGATE}` }]);
    }
    expect(await snapshot()).toEqual(before);
    // The device's real clicks are counted as usual.
    expect((await api.click('dev-surrogates', 'a')).fraud_type).toBe('clean');
    expect((await api.click('dev-surrogates', 'b')).fraud_type).toBe('clean');
    expect((await api.click('dev-surrogates', 'c')).fraud_type).toBe('click_spam');
  });

  it('keeps well-formed ids of any script apart and exact, in Redis too', async () => {
    const devices = [EMOJI, '\u{1F601}', 'ü', 'u\u0308', '設備'];
    const answers = [];
    for (const device of devices) answers.push(await api.click(device, `tx-${device}`));
    expect(answers.map((answer) => [answer.device_id, answer.fraud_type])).toEqual(devices.map((device) => [device, 'clean']));
    const entries = await api.admin.xrange(api.config.stream.key, answers[0]!.stream_id!, answers.at(-1)!.stream_id!);
    expect(entries.map(([, fields]) => fields[fields.indexOf('device_id') + 1])).toEqual(devices);
    expect(await api.admin.exists(`${api.config.keyPrefix}window:{${EMOJI}}`)).toBe(1);
  });

  it('counts the 128-character limit in characters: 128 emoji are accepted, 129 are not', async () => {
    const res = await api.post({ device_id: EMOJI.repeat(128), ip: '10.0.0.1', transaction_id: `${EMOJI}x`.repeat(64) });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { device_id: string }).device_id).toBe(EMOJI.repeat(128));

    const before = await snapshot();
    const over = await api.post({ device_id: EMOJI.repeat(129), ip: '10.0.0.1', transaction_id: 'x'.repeat(128) + EMOJI });
    expect(over.status).toBe(400);
    expect(((await over.json()) as ErrorAnswer).issues).toEqual([
      { path: 'device_id', message: 'device_id must be at most 128 characters' },
      { path: 'transaction_id', message: 'transaction_id must be at most 128 characters' },
    ]);
    expect(await snapshot()).toEqual(before);
  });

  it.each([
    ['a byte that is never UTF-8', Buffer.from([0xff])],
    ['a cut-off sequence', Buffer.from([0xe2, 0x82])],
    ['an overlong encoding of "/"', Buffer.from([0xc0, 0xaf])],
    ['a surrogate encoded as UTF-8 (CESU-8)', Buffer.from([0xed, 0xa0, 0x80])],
  ])('refuses a body with %s, which the JSON parser would read as U+FFFD', async (_, bad) => {
    const before = await snapshot();
    for (const path of ['/', '/batch']) {
      const click = (device: Buffer) => Buffer.concat([Buffer.from('{"device_id":"dev-'), device, Buffer.from('","ip":"10.0.0.1","transaction_id":"t"}')]);
      const body = path === '/' ? click(bad) : Buffer.concat([Buffer.from('{"clicks":['), click(bad), Buffer.from(']}')]);
      const res = await postBytes(path, body);
      expect(res.status, path).toBe(400);
      expect(await res.json()).toEqual({ error: 'invalid_utf8', message: 'body is not valid UTF-8' });
    }
    expect(await snapshot()).toEqual(before);
  });

  it('refuses a body in another charset with 415, since its decoder would replace what it cannot read too', async () => {
    const before = await snapshot();
    const body = Buffer.from(JSON.stringify({ device_id: 'd', ip: '10.0.0.1', transaction_id: 't' }), 'utf16le');
    const res = await postBytes('/', body, 'application/json; charset=utf-16le');
    expect(res.status).toBe(415);
    expect(await res.json()).toEqual({ error: 'unsupported_charset', message: 'unsupported charset "UTF-16LE": bodies must be UTF-8' });
    expect(await snapshot()).toEqual(before);
  });

  it('accepts UTF-8 with an explicit charset, raw or escaped', async () => {
    const raw = await postBytes('/', Buffer.from(JSON.stringify({ device_id: 'dev-ü', ip: '10.0.0.1', transaction_id: 't' })), 'application/json; charset=UTF-8');
    expect(raw.status).toBe(200);
    const escaped = await postBytes('/', Buffer.from('{"device_id":"dev-\\u00fc","ip":"10.0.0.1","transaction_id":"t2"}'));
    expect(((await escaped.json()) as { device_id: string }).device_id).toBe('dev-ü');
  });

  it('answers a lone surrogate inside a batch for that click alone, and decides the others', async () => {
    const res = await fetch(`${api.base}/batch`, {
      method: 'POST',
      body: JSON.stringify({
        clicks: [
          { device_id: 'dev-batch-u', ip: '10.0.0.1', transaction_id: 'ok-1' },
          { device_id: 'dev-batch-u', ip: '10.0.0.1', transaction_id: '\udbff' },
          { device_id: 'dev-batch-u', ip: '10.0.0.1', transaction_id: 'ok-2' },
        ],
      }),
    });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: Array<Record<string, unknown>> };
    expect(results.map((result) => result.fraud_type ?? result.error)).toEqual(['clean', 'invalid_click', 'clean']);
    expect(results[1]).toMatchObject({ index: 1, issues: [{ path: 'transaction_id', message: `transaction_id ${LONE_SURROGATE}` }] });
  });

  describe('the admin API', () => {
    const ban = (body: unknown) =>
      fetch(`${api.base}/admin/blacklist`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify(body) });

    it('refuses a reason or source with a lone surrogate, naming each, and changes nothing', async () => {
      const before = await snapshot();
      const res = await ban({ ip: '192.0.2.50', reason: 'bot \ud800 farm', source: '\udc00' });
      expect(res.status).toBe(400);
      expect(((await res.json()) as ErrorAnswer).issues).toEqual([
        { path: 'reason', message: `reason ${LONE_SURROGATE}` },
        { path: 'source', message: `source ${LONE_SURROGATE}` },
      ]);
      expect(await snapshot()).toEqual(before);
    });

    it('counts the reason and source limits in characters', async () => {
      const res = await ban({ ip: '192.0.2.51', reason: EMOJI.repeat(500), source: EMOJI.repeat(64) });
      expect(res.status).toBe(201);
      expect(await res.json()).toMatchObject({ reason: EMOJI.repeat(500), source: EMOJI.repeat(64) });
      const over = await ban({ ip: '192.0.2.52', reason: EMOJI.repeat(501), source: EMOJI.repeat(65) });
      expect(((await over.json()) as ErrorAnswer).issues).toEqual([
        { path: 'reason', message: 'reason must be at most 500 characters' },
        { path: 'source', message: 'source must be at most 64 characters' },
      ]);
    });

    it('holds the CLI to the same rules for the reason and source', async () => {
      const before = await snapshot();
      const long = await runCli(api, ['add', '192.0.2.54', '--reason', 'r'.repeat(501), '--source', ' ']);
      expect(long.code).toBe(1);
      expect(long.stderr.trim().split('\n')).toEqual(['error: reason must be at most 500 characters', 'error: source must not be empty']);
      expect(await snapshot()).toEqual(before);
      const emoji = await runCli(api, ['add', '192.0.2.54', '--reason', EMOJI.repeat(500)]);
      expect(emoji.code).toBe(0);
      expect(emoji.stdout).toContain(`"${EMOJI.repeat(500)}"  by cli`);
    });

    it('refuses a ban body that is not UTF-8', async () => {
      const res = await fetch(`${api.base}/admin/blacklist`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
        body: Buffer.concat([Buffer.from('{"ip":"192.0.2.53","reason":"'), Buffer.from([0xff]), Buffer.from('"}')]),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as ErrorAnswer).error).toBe('invalid_utf8');
      expect((await fetch(`${api.base}/admin/blacklist/192.0.2.53`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(404);
    });
  });
});
