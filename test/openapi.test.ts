import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalIp } from '../src/domain/ip.js';
import { startLocalRedis, type LocalRedisServer } from '../src/redis/local-server.js';
import { redisStackUrl, startTestApi, type TestApi } from './support/api.js';

/**
 * The OpenAPI document against the service itself: every request example is sent to a real API
 * (on a real Redis), and every answer must have a documented status, content type and schema, and
 * match the response example of the same name. What an example cannot express (a missing token,
 * Redis down, a body too large to show) is provoked by the scenarios below. In the end every
 * documented status and example must have been seen.
 */

const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;
if (!hasRedisServer) console.log('[tests] skipping the OpenAPI test: it needs redis-server on PATH for an API whose Redis is down');

interface MediaType {
  schema: unknown;
  examples?: Record<string, { value: unknown }>;
}
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  examples?: Record<string, { value: string }>;
}
interface Operation {
  security?: unknown[];
  parameters?: Parameter[];
  requestBody?: { content: Record<string, MediaType> };
  responses: Record<string, { content?: Record<string, MediaType> }>;
}
type Document = { paths: Record<string, Record<string, Operation>> };

const TOKEN = 'openapi-test-token-0123456789';
const VIEWER_PASSWORD = 'openapi-viewer-password';
const VIEWER = { authorization: `Basic ${Buffer.from(`viewer:${VIEWER_PASSWORD}`).toString('base64')}` };
/** Fields whose values differ from run to run; the others of an example must be the service's own. */
const COMPARED = ['error', 'status', 'fraud_type', 'duplicate', 'ready', 'blocked', 'already_blocked', 'replaced', 'unblocked', 'entry_removed', 'backend', 'reason', 'source'];

describe.skipIf(!hasRedisServer)('the OpenAPI document', () => {
  let api: TestApi;
  /** No ADMIN_TOKEN, MAX_EVENT_STREAMS=0, and the read-only views behind VIEWER_PASSWORD. */
  let off: TestApi;
  /** Its Redis is killed once it has started. */
  let down: TestApi;
  let downRedis: LocalRedisServer;
  let downDir: string;
  let doc: Document;
  let ajv: Ajv2020;
  /** `METHOD path status example` (or without example) of every answer checked. */
  const seen = new Set<string>();

  beforeAll(async () => {
    // The backends of the examples, whatever modules the test Redis has.
    const backends = { BLACKLIST_BACKEND: 'set', STATS_BACKEND: 'hash', OFFENDERS_BACKEND: 'zset' };
    api = await startTestApi({ ...backends, ADMIN_TOKEN: TOKEN });
    off = await startTestApi({ ...backends, MAX_EVENT_STREAMS: '0', VIEWER_PASSWORD });
    downDir = mkdtempSync(join(tmpdir(), 'click-fraud-openapi-'));
    downRedis = await startLocalRedis({ dataDir: downDir });
    down = await startTestApi({ ADMIN_TOKEN: TOKEN, REDIS_TIMEOUT_MS: '200' }, downRedis.url);
    await downRedis.kill();
    doc = (await (await fetch(`${api.base}/openapi.json`)).json()) as Document;
    // The document is one schema resource, so that its "#/components/schemas/..." references resolve.
    ajv = new Ajv2020({ strict: false, validateSchema: false, allErrors: true });
    ajv.addSchema(doc as object, 'openapi.json');
  });
  afterAll(async () => {
    // The test client of `down` would wait for its Redis forever: it goes first.
    down?.admin.disconnect();
    await Promise.all([api?.close(), off?.close(), down?.service.close()]);
    await downRedis?.stop();
    rmSync(downDir, { recursive: true, force: true });
  });

  const operation = (method: string, path: string) => {
    const op = doc.paths[path]?.[method.toLowerCase()];
    if (!op) throw new Error(`${method} ${path} is not documented`);
    return op;
  };
  const pointer = (...parts: string[]) => `openapi.json#/${parts.map((part) => part.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`;

  /** Checks one answer against the document, and against the named example when there is one. */
  async function check(method: string, path: string, res: Response, example?: string): Promise<void> {
    const status = String(res.status);
    const text = await res.text();
    const response = operation(method, path).responses[status];
    const shown = text.slice(0, 500);
    expect(response, `${method} ${path} answered ${status}, which is not documented: ${shown}`).toBeDefined();
    const type = (res.headers.get('content-type') ?? '').split(';')[0]!;
    const media = response!.content?.[type];
    expect(media, `${method} ${path} ${status} answered ${type}, which is not documented`).toBeDefined();
    const body = type === 'application/json' ? JSON.parse(text) : text;
    const validate = ajv.getSchema(pointer('paths', path, method.toLowerCase(), 'responses', status, 'content', type, 'schema'))!;
    expect(validate(body), `${method} ${path} ${status}: ${ajv.errorsText(validate.errors)}\n${shown}`).toBe(true);
    if (example !== undefined) {
      const documented = media!.examples?.[example];
      expect(documented, `${method} ${path} ${status} has no example "${example}"`).toBeDefined();
      expectLike(body, documented!.value, `${method} ${path} ${status} example ${example}`);
    }
    seen.add(`${method} ${path} ${status}${example === undefined ? '' : ` ${example}`}`);
  }

  function expectLike(actual: unknown, example: unknown, where: string): void {
    if (typeof example !== 'object' || example === null) return expect(actual, where).toEqual(example);
    const [real, shown] = [actual as Record<string, unknown>, example as Record<string, unknown>];
    expect(Object.keys(real).sort(), `${where}: the fields`).toEqual(Object.keys(shown).sort());
    for (const key of COMPARED) if (key in shown) expect(real[key], `${where}: ${key}`).toEqual(shown[key]);
    if (Array.isArray(shown.issues)) {
      const paths = (issues: unknown) => (issues as Array<{ path: string }>).map((i) => i.path);
      expect(paths(real.issues), `${where}: issues`).toEqual(paths(shown.issues));
    }
    if (Array.isArray(shown.results)) {
      const [results, expected] = [real.results as unknown[], shown.results as unknown[]];
      expect(results, `${where}: results`).toHaveLength(expected.length);
      expected.forEach((item, i) => expectLike(results[i], item, `${where}: result ${i}`));
    }
  }

  /** Sends the request example `name` of an operation: its body, path, query and header values. */
  function send(base: string, method: string, path: string, name: string): Promise<Response> {
    const op = operation(method, path);
    let url = path;
    const query = new URLSearchParams();
    const headers: Record<string, string> = op.security ? { authorization: `Bearer ${TOKEN}` } : {};
    for (const param of op.parameters ?? []) {
      const value = param.examples?.[name]?.value;
      if (value === undefined) continue;
      if (param.in === 'path') url = url.replace(`{${param.name}}`, encodeURIComponent(value));
      else if (param.in === 'query') query.set(param.name, value);
      else headers[param.name] = value;
    }
    const body = op.requestBody?.content['application/json']?.examples?.[name]?.value;
    return fetch(`${base}${url}${query.size > 0 ? `?${query}` : ''}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  }

  function requestExamples(op: Operation): string[] {
    const names = Object.keys(op.requestBody?.content['application/json']?.examples ?? {});
    for (const param of op.parameters ?? []) names.push(...Object.keys(param.examples ?? {}));
    return [...new Set(names)];
  }

  /** The status whose answer has the example `name`: exactly one. */
  function statusOf(op: Operation, name: string): string {
    const statuses = Object.entries(op.responses)
      .filter(([, response]) => Object.values(response.content ?? {}).some((media) => media.examples?.[name] !== undefined))
      .map(([status]) => status);
    expect(statuses, `the answer to example "${name}"`).toHaveLength(1);
    return statuses[0]!;
  }

  it('answers every request example as documented, in the order of the document', async () => {
    // What the examples assume about Redis: the address of the ip_blacklist click is blocked.
    const listed = operation('POST', '/').requestBody!.content['application/json']!.examples!.ip_blacklist!.value as { ip: string };
    await api.block(canonicalIp(listed.ip)!);
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [lower, op] of Object.entries(item)) {
        const method = lower.toUpperCase();
        const names = requestExamples(op);
        if (names.length === 0) {
          if (path === '/events') continue; // a stream that does not end: a scenario below
          // A request with nothing to vary: its answer is the one example of its status, if any.
          const res = await send(api.base, method, path, '');
          const examples = Object.values(op.responses[String(res.status)]?.content ?? {}).flatMap((media) => Object.keys(media.examples ?? {}));
          await check(method, path, res, examples.length === 1 ? examples[0] : undefined);
          continue;
        }
        for (const name of names) {
          const res = await send(api.base, method, path, name);
          expect(String(res.status), `${method} ${path} example ${name}`).toBe(statusOf(op, name));
          await check(method, path, res, name);
        }
      }
    }
  });

  it('answers what the examples cannot show as documented', async () => {
    const post = (base: string, path: string, body: string, headers: Record<string, string> = {}) => fetch(`${base}${path}`, { method: 'POST', headers, body });
    const click = JSON.stringify({ device_id: 'scenario', ip: '10.0.0.9', transaction_id: 'text' });
    await check('POST', '/', await post(api.base, '/', click, { accept: 'text/plain' }), 'text_plain');
    await check('POST', '/', await post(api.base, '/', '{'), 'invalid_json');
    await check('POST', '/', await post(api.base, '/', JSON.stringify({ device_id: 'x'.repeat(17 * 1024) })), 'body_too_large');
    await check('POST', '/', await post(api.base, '/', click, { 'content-encoding': 'x-unknown' }), 'unsupported_encoding');
    await check('GET', '/', await fetch(`${api.base}/`, { headers: { accept: 'application/json' } }), 'not_acceptable');
    const withInvalid = operation('POST', '/batch').responses['200']!.content!['application/json']!.examples!.with_invalid_click!.value as { results: Array<{ transaction_id?: string }> };
    expect(withInvalid.results).toHaveLength(2);
    await check(
      'POST',
      '/batch',
      await post(api.base, '/batch', JSON.stringify({ clicks: [{ device_id: 'd2', ip: '10.0.0.2', transaction_id: 'a' }, { device_id: 'd2', ip: '1.1.1', transaction_id: 'b' }] })),
      'with_invalid_click',
    );
    const tooMany = Array.from({ length: api.config.http.batchMaxClicks + 1 }, (_, i) => ({ device_id: 'd', ip: '10.0.0.1', transaction_id: `t${i}` }));
    await check('POST', '/batch', await post(api.base, '/batch', JSON.stringify({ clicks: tooMany })), 'batch_too_large');

    // Redis down.
    await check('POST', '/', await post(down.base, '/', click), 'redis_unavailable');
    await check('POST', '/batch', await post(down.base, '/batch', JSON.stringify({ clicks: [JSON.parse(click)] })), 'redis_unavailable');
    await check('GET', '/readyz', await fetch(`${down.base}/readyz`), 'redis_unavailable');
    await check('GET', '/stats', await fetch(`${down.base}/stats`), 'redis_unavailable');
    await check('GET', '/offenders', await fetch(`${down.base}/offenders`), 'redis_unavailable');

    // The read-only views without the viewer password, where there is one.
    for (const path of ['/stats', '/offenders']) await check('GET', path, await fetch(`${off.base}${path}`), 'viewer_unauthorized');

    // The admin API: no token, turned off, Redis down.
    const admin = [
      ['POST', '/admin/blacklist', '/admin/blacklist', JSON.stringify({ ip: '203.0.113.10', reason: 'scenario' })],
      ['GET', '/admin/blacklist', '/admin/blacklist', undefined],
      ['GET', '/admin/blacklist/{ip}', '/admin/blacklist/203.0.113.10', undefined],
      ['DELETE', '/admin/blacklist/{ip}', '/admin/blacklist/203.0.113.10', undefined],
      ['POST', '/admin/allowlist', '/admin/allowlist', JSON.stringify({ device_id: 'scenario', reason: 'scenario' })],
      ['GET', '/admin/allowlist/addresses', '/admin/allowlist/addresses', undefined],
      ['GET', '/admin/allowlist/devices', '/admin/allowlist/devices', undefined],
      ['DELETE', '/admin/allowlist/addresses/{value}', '/admin/allowlist/addresses/203.0.113.10', undefined],
      ['DELETE', '/admin/allowlist/devices/{value}', '/admin/allowlist/devices/scenario', undefined],
      ['GET', '/admin/rules', '/admin/rules', undefined],
      ['PUT', '/admin/rules', '/admin/rules', JSON.stringify({})],
      ['DELETE', '/admin/rules', '/admin/rules', undefined],
    ] as const;
    for (const [method, path, url, body] of admin) {
      const request = (base: string, token?: string) => fetch(`${base}${url}`, { method, body, headers: token ? { authorization: `Bearer ${token}` } : {} });
      await check(method, path, await request(api.base), 'unauthorized');
      await check(method, path, await request(api.base, 'not-the-admin-token-at-all'), 'unauthorized');
      await check(method, path, await request(off.base, TOKEN), 'admin_disabled');
      await check(method, path, await request(down.base, TOKEN), 'redis_unavailable');
    }

    // An allowlist entry given again replaces its reason.
    const allowAgain = () => fetch(`${api.base}/admin/allowlist`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ device_id: 'twice', reason: 'again' }) });
    await allowAgain();
    await check('POST', '/admin/allowlist', await allowAgain());

    // The event stream: it opens, and is refused where the feed is off.
    const abort = new AbortController();
    const stream = await fetch(`${api.base}/events`, { signal: abort.signal });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    abort.abort();
    seen.add('GET /events 200');
    await check('GET', '/events', await fetch(`${off.base}/events`, { headers: VIEWER }), 'too_many_event_streams');
  });

  it.skipIf(!redisStackUrl)('answers 507 when the cuckoo filter is full (Redis Stack)', async () => {
    const full = await startTestApi({ ADMIN_TOKEN: TOKEN, BLACKLIST_BACKEND: 'cuckoo', IP_CUCKOO_FILTER_CAPACITY: '2', IP_CUCKOO_FILTER_BUCKET_SIZE: '1', IP_CUCKOO_FILTER_EXPANSION: '0' }, redisStackUrl);
    try {
      let res: Response | undefined;
      // A filter of two one-place buckets is full after a handful of addresses; 64 is far past that.
      for (let i = 1; i <= 64 && res?.status !== 507; i++) {
        res = await fetch(`${full.base}/admin/blacklist`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ ip: `192.0.2.${i}`, reason: 'filling' }) });
        if (res.status !== 507) expect(res.status).toBe(201);
      }
      await check('POST', '/admin/blacklist', res!, 'blacklist_full');
    } finally {
      await full.close();
    }
  });

  it('was seen answering every documented status and example', () => {
    const documented: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [lower, op] of Object.entries(item)) {
        for (const [status, response] of Object.entries(op.responses)) {
          const examples = Object.values(response.content ?? {}).flatMap((media) => Object.keys(media.examples ?? {}));
          const keys = examples.length === 0 ? [`${lower.toUpperCase()} ${path} ${status}`] : examples.map((name) => `${lower.toUpperCase()} ${path} ${status} ${name}`);
          documented.push(...keys.filter((key) => redisStackUrl || !key.endsWith(' 507 blacklist_full')));
        }
      }
    }
    expect(documented.filter((key) => !seen.has(key))).toEqual([]);
  });

  it('shows request examples that are answered 2xx in the shape of the request schema', () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [lower, op] of Object.entries(item)) {
        for (const [name, example] of Object.entries(op.requestBody?.content['application/json']?.examples ?? {})) {
          if (!statusOf(op, name).startsWith('2')) continue;
          const validate = ajv.getSchema(pointer('paths', path, lower, 'requestBody', 'content', 'application/json', 'schema'))!;
          expect(validate(example.value), `${lower} ${path} example ${name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
        }
      }
    }
  });
});
