import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CLICK_JSON_BYTES } from '../src/domain/click.js';
import { batchBodyLimit } from '../src/http/app.js';
import { startTestApi, type ClickAnswer, type TestApi } from './support/api.js';

/** The longest valid address: an IPv4-mapped IPv6 address written out in full (45 characters). */
const LONGEST_IP = '0000:0000:0000:0000:0000:ffff:255.255.255.255';
/** 80 emoji, U+1F600 to U+1F64F: each is 4 bytes of UTF-8, or 12 as the escape pair `\ud83d\ude00`. */
const emoji = (n: number) => String.fromCodePoint(0x1f600 + (n % 80));

/** A 128-character id of emoji only, unique for n below 6,400. */
const maximalId = (n: number) => emoji(Math.floor(n / 80)) + emoji(n) + emoji(0).repeat(126);

/**
 * JSON as the most expansive valid writer sends it: indented by 4 (JSON.stringify(batch, null, 4)),
 * every non-ASCII character as escapes (Python's json.dumps does so by default), and the ip's
 * characters escaped too.
 */
function mostExpansiveJson(body: unknown): string {
  const escape = (unit: string) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`;
  return JSON.stringify(body, null, 4)
    .replaceAll(LONGEST_IP, [...LONGEST_IP].map(escape).join(''))
    .replace(/[^\x00-\x7f]/g, escape);
}

describe('the /batch body limit fits the largest valid batch', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(() => api.close());

  const post = (body: string) => fetch(`${api.base}/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

  it('accepts and decides BATCH_MAX_CLICKS clicks whose ids are 128 emoji, however escaped', async () => {
    const maxClicks = api.config.http.batchMaxClicks;
    expect(maxClicks).toBe(1000);
    const clicks = Array.from({ length: maxClicks }, (_, n) => ({ device_id: maximalId(n), ip: LONGEST_IP, transaction_id: maximalId(n) }));
    const body = mostExpansiveJson({ clicks });
    // Far past the former limit of 512 bytes a click, and within the new one.
    expect(body.length).toBeGreaterThan(maxClicks * 3400);
    expect(body.length).toBeLessThanOrEqual(batchBodyLimit(maxClicks));
    const streamBefore = await api.admin.xlen(api.config.stream.key);

    const res = await post(body);
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: ClickAnswer[] };
    expect(results).toHaveLength(maxClicks);
    expect(results.every((result, n) => result.fraud_type === 'clean' && result.device_id === maximalId(n) && result.ip === '255.255.255.255')).toBe(true);
    expect(await api.admin.xlen(api.config.stream.key)).toBe(streamBefore + maxClicks);
  }, 60_000);

  it('refuses a body one byte over the limit with 413, deciding nothing', async () => {
    const limit = batchBodyLimit(api.config.http.batchMaxClicks);
    const click = JSON.stringify({ device_id: 'd', ip: '10.0.0.1', transaction_id: 't' });
    const padded = `{"clicks":[${click}]${' '.repeat(limit + 1 - click.length - 13)}}`;
    expect(Buffer.byteLength(padded)).toBe(limit + 1);
    const streamBefore = await api.admin.xlen(api.config.stream.key);
    const res = await post(padded);
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: 'body_too_large', message: `body must be at most ${Math.floor(limit / 1024)} KiB` });
    expect(await api.admin.xlen(api.config.stream.key)).toBe(streamBefore);
    // One byte less is read and decided.
    expect((await post(padded.slice(0, -2) + '}')).status).toBe(200);
  });

  it('allows each click the bytes of its fields at their limits in the longest escapes', () => {
    // 2 ids × 128 characters × 12 bytes, 64 ip characters × 6 bytes, names and punctuation, a comma, indentation.
    expect(MAX_CLICK_JSON_BYTES).toBe(3072 + 384 + 44 + 1 + 64);
    expect(batchBodyLimit(1000)).toBe(1000 * MAX_CLICK_JSON_BYTES + 1024);
  });
});
