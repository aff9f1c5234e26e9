import { z } from 'zod';
import { createDocument, type ZodOpenApiObject, type ZodOpenApiOperationObject } from 'zod-openapi';
import { banRequestSchema } from '../domain/ban.js';
import { clickSchema } from '../domain/click.js';
import { RULES, ruleSetSchema } from '../domain/rules.js';
import { FRAUD_TYPES } from '../domain/verdict.js';
import { SERIES, seriesKind, seriesLabel, zeroCounts } from '../stats/series.js';
import { allowRequestSchema, pageSchema } from './admin-routes.js';
import { querySchema as offendersQuerySchema } from './offenders-route.js';
import { querySchema as statsQuerySchema } from './stats-route.js';

/**
 * The OpenAPI 3.1 document of the API. Requests are described by the very zod schemas that
 * validate them (src/domain, and the query schemas of the routes); answers by the strict schemas
 * below, so that a field the service answers but this document does not name is a test failure.
 *
 * Examples have names: a request example named N is answered by the response example named N,
 * and test/openapi.test.ts sends every request example, in the order of this document (they form
 * one session: the address blocked by `block` is the one `blocked` reads and `unblock` removes),
 * and checks the answer against the documented status, schema and example.
 */

// --- answers ------------------------------------------------------------------------------------

const issue = z.strictObject({ path: z.string().meta({ description: 'the field, or (body)/(query) for the whole' }), message: z.string() });

const errorBody = z
  .strictObject({
    error: z.string().meta({ description: 'a stable code, such as invalid_click or redis_unavailable' }),
    message: z.string().meta({ description: 'what went wrong, for a person' }),
    issues: z.array(issue).optional().meta({ description: 'every problem with the request, one per field' }),
  })
  .meta({ id: 'Error' });

const ruleHit = z
  .strictObject({
    rule: z.enum(RULES),
    observed: z.union([z.int(), z.string()]).meta({ description: 'clicks or devices counted in the window (this click included), or the matching address or range' }),
    limit: z.int().optional().meta({ description: "the rule's threshold" }),
    window_sec: z.number().optional(),
  })
  .meta({ id: 'RuleHit', description: 'a rule that fired, with what it saw against its limit' });

const decision = z
  .strictObject({
    transaction_id: z.string(),
    device_id: z.string(),
    ip: z.string().meta({ description: 'the canonical form of the address: dotted IPv4, or compressed lower-case IPv6' }),
    status: z.enum(['clean', 'fraud']),
    fraud_type: z.enum(FRAUD_TYPES),
    ts: z.int().meta({ description: 'decision time in ms, from the Redis server clock' }),
    stream_id: z.string().nullable().meta({ description: "the decision's entry in the decision stream; null when degraded" }),
    duplicate: z.boolean().meta({ description: 'true when this (device_id, transaction_id) was already decided in the window: the original decision' }),
    reason: ruleHit.optional().meta({ description: 'for a fraud verdict: the rule that gave it' }),
    shadow: z.array(ruleHit).optional().meta({ description: 'rules in shadow mode that fired: recorded, not enforced' }),
    allowlisted: z.literal(true).optional().meta({ description: 'the address, a range holding it, or the device is on the allowlist, which wins over every rule' }),
    rules_version: z.int().min(1).optional().meta({ description: 'the version of the rule set that judged it (absent when degraded)' }),
    degraded: z.literal(true).optional().meta({ description: 'FAIL_MODE=open and Redis failed: let through, counted nowhere' }),
  })
  .meta({ id: 'Decision' });

const batchItemError = z
  .strictObject({ index: z.int().min(0), error: z.string(), message: z.string(), issues: z.array(issue).optional() })
  .meta({ id: 'BatchItemError', description: 'a click of the batch that was not decided, by its position' });

const ban = z
  .strictObject({
    ip: z.string(),
    reason: z.string(),
    source: z.string().meta({ description: 'who or what added it: admin-api, cli, import:<file>, or what the request said' }),
    added_at: z.int().meta({ description: 'unix ms' }),
    expires_at: z.int().nullable().meta({ description: 'unix ms; null for a ban without end' }),
  })
  .meta({ id: 'Ban' });

/** Every series: each verdict, all clicks, and each rule's shadow hits. */
const counts = Object.fromEntries(SERIES.map((series) => [series, z.int().min(0)]));
const SERIES_INFO = SERIES.map((name) => ({ name, kind: seriesKind(name), label: seriesLabel(name) }));

const stats = z
  .strictObject({
    from: z.int(),
    to: z.int(),
    bucket_ms: z.int(),
    backend: z.enum(['timeseries', 'hash']),
    buckets: z
      .array(z.strictObject({ ts: z.int().meta({ description: 'start of the bucket, unix ms' }), ...z.strictObject(counts).partial().shape }))
      .meta({ description: 'only buckets with clicks, and in each only the series with counts' }),
    totals: z.strictObject(counts),
    series: z.array(z.strictObject({ name: z.enum(SERIES), kind: z.enum(['verdict', 'total', 'shadow']), label: z.string() })).meta({ description: 'what each series counts, for people' }),
    stream: z.strictObject({
      length: z.int().min(0),
      pending: z.int().min(0).meta({ description: 'delivered to a worker, not yet counted' }),
      lag: z.int().min(0).nullable().meta({ description: 'not yet delivered to any worker; null when Redis cannot tell' }),
      dead_letters: z.int().min(0),
    }),
  })
  .meta({ id: 'Stats' });

/** A device or an address, by its fraud clicks over the range. */
const offender = (id: Record<string, z.ZodString>) =>
  z.strictObject({
    ...id,
    fraud: z.int().min(1).meta({ description: 'fraud clicks over the range, every verdict but clean' }),
    verdicts: z.strictObject(Object.fromEntries(RULES.map((rule) => [rule, z.int().min(1)]))).partial().meta({ description: 'its fraud clicks per verdict' }),
  });

const offenders = z
  .strictObject({
    from: z.int().meta({ description: 'start of the first whole minute read, unix ms' }),
    to: z.int().meta({ description: 'end of the last whole minute read, unix ms' }),
    limit: z.int().min(1),
    backend: z.enum(['topk', 'zset']).meta({ description: 'topk: RedisBloom Top-K; zset: sorted sets (plain Redis)' }),
    devices: z.array(offender({ device_id: z.string() })).meta({ description: 'most fraud clicks first, ties by id' }),
    addresses: z.array(offender({ ip: z.string() })).meta({ description: 'most fraud clicks first, ties by address' }),
  })
  .meta({ id: 'Offenders' });

const readiness = z
  .strictObject({
    ready: z.boolean(),
    status: z.enum(['ready', 'redis_not_answering', 'redis_unavailable']),
    error: z.string().optional(),
    redis: z.strictObject({
      url: z.string().meta({ description: 'password masked; redis-cluster://… for a cluster' }),
      version: z.string(),
      cluster: z.boolean(),
      partitions: z.int().min(1).meta({ description: 'DECISION_STREAM_PARTITIONS in effect' }),
    }),
    blacklist: z.strictObject({
      backend: z.enum(['cuckoo', 'set']),
      key: z.string(),
      add_command: z.string(),
      non_canonical: z
        .strictObject({
          found: z.int().min(0),
          examples: z.array(z.strictObject({ raw: z.string(), canonical: z.string().nullable() })),
          scanned: z.int().min(0),
          complete: z.boolean(),
          checked_at: z.int().meta({ description: 'unix ms' }),
        })
        .optional()
        .meta({ description: 'set members that block nothing (not the canonical spelling), from a bounded look at start' }),
    }),
    stats: z.strictObject({ backend: z.enum(['timeseries', 'hash']) }),
    offenders: z.strictObject({ backend: z.enum(['topk', 'zset']) }),
    clicks: z.strictObject({
      in_flight: z.int().min(0),
      max_in_flight: z.int().min(1),
      redis_hung: z.boolean(),
      wait_replicas: z.int().min(1).optional().meta({ description: 'REDIS_WAIT_REPLICAS, when set' }),
      unreplicated: z.int().min(0).optional().meta({ description: 'decisions fewer replicas acknowledged in time, since start' }),
    }),
  })
  .meta({ id: 'Readiness' });

const allowEntry = z
  .strictObject({ kind: z.enum(['address', 'range', 'device']), value: z.string(), reason: z.string(), added_at: z.int().meta({ description: 'unix ms' }) })
  .meta({ id: 'AllowEntry' });
const allowPage = z.strictObject({ items: z.array(allowEntry), next_cursor: z.string().nullable().meta({ description: 'null after the last page' }) });

const versionedRules = z
  .strictObject({
    version: z.int().min(1),
    source: z.enum(['environment', 'admin']).meta({ description: 'environment: seeded from RULES and CLICK_SPAM_*; admin: set through the admin API or CLI' }),
    updated_at: z.int(),
    rules: ruleSetSchema,
  })
  .meta({ id: 'RuleSet' });

const text = z.string();
const blacklistTarget = z.string().meta({ description: 'an address in any spelling, or a range (203.0.113.0/24, its slash as %2F)' });

// --- helpers --------------------------------------------------------------------------------------

type Examples = Record<string, unknown>;

const named = (examples: Examples) => Object.fromEntries(Object.entries(examples).map(([name, value]) => [name, { value }]));
const json = (schema: z.ZodType, examples: Examples = {}) => ({ 'application/json': { schema, examples: named(examples) } });
const answer = (description: string, schema: z.ZodType, examples: Examples = {}) => ({ description, content: json(schema, examples) });
const failure = (description: string, examples: Examples) => answer(description, errorBody, examples);
const error = (code: string, message: string, issues?: Array<{ path: string; message: string }>) => ({ error: code, message, ...(issues ? { issues } : {}) });

/** Gives each parameter of `schema` the values that the named examples give it. */
function withExamples<T extends z.ZodRawShape>(schema: z.ZodObject<T>, examples: Record<string, Record<string, string>>): z.ZodObject<T> {
  const shape = Object.fromEntries(
    Object.entries(schema.shape).map(([field, fieldSchema]) => {
      const values = Object.entries(examples).filter(([, params]) => field in params);
      if (values.length === 0) return [field, fieldSchema];
      return [field, (fieldSchema as z.ZodType).meta({ param: { examples: Object.fromEntries(values.map(([name, params]) => [name, { value: params[field] }])) } })];
    }),
  );
  return z.object(shape) as unknown as z.ZodObject<T>;
}

const VIEWER_UNAUTHORIZED = failure('VIEWER_PASSWORD is set, and the request has no or a wrong one (HTTP basic auth, user viewer)', {
  viewer_unauthorized: error('unauthorized', 'this view needs the viewer password (HTTP basic auth, user "viewer")'),
});
const REDIS_UNAVAILABLE = error('redis_unavailable', 'the click could not be decided because Redis is unavailable; retry with the same transaction_id');
const UNAUTHORIZED = error('unauthorized', 'the admin API needs Authorization: Bearer <ADMIN_TOKEN>');
const ADMIN_DISABLED = error('admin_disabled', 'the admin API is off: set ADMIN_TOKEN to turn it on');
const ADMIN_REDIS_UNAVAILABLE = error('redis_unavailable', 'the blacklist could not be changed or read because Redis is unavailable');
const INVALID_IP_MESSAGE = 'ip must be an IPv4 or IPv6 address, or a range such as 203.0.113.0/24 (with its slash as %2F)';
const INVALID_IP = error('invalid_ip', INVALID_IP_MESSAGE, [{ path: 'ip', message: INVALID_IP_MESSAGE }]);
const TS = 1795316035550;
const clean = { transaction_id: '3e4fad5fs', device_id: '111-000-000', ip: '198.51.100.7', status: 'clean', fraud_type: 'clean', ts: TS, stream_id: `${TS}-0`, duplicate: false, rules_version: 1 };
const blockedBan = { ip: '203.0.113.9', reason: 'bot farm', source: 'admin-api', added_at: TS, expires_at: TS + 3_600_000 };

/** Every admin operation answers these besides its own. */
const adminFailures = {
  401: failure('no or a wrong bearer token: nothing changed', { unauthorized: UNAUTHORIZED }),
  404: failure('admin_disabled: ADMIN_TOKEN is not set. For one address: not_found, it is not blacklisted', { admin_disabled: ADMIN_DISABLED }),
  503: failure('Redis is unavailable', { redis_unavailable: ADMIN_REDIS_UNAVAILABLE }),
};
const adminOperation = (operation: ZodOpenApiOperationObject): ZodOpenApiOperationObject => ({
  tags: ['blacklist'],
  security: [{ bearer: [] }],
  ...operation,
  responses: { ...adminFailures, ...operation.responses },
});

// --- the document ---------------------------------------------------------------------------------

export interface OpenApiOptions {
  version: string;
  /** BATCH_MAX_CLICKS. */
  batchMaxClicks: number;
}

export function openApiDocument({ version, batchMaxClicks }: OpenApiOptions): ReturnType<typeof createDocument> {
  const document: ZodOpenApiObject = {
    openapi: '3.1.0',
    info: {
      title: 'click-fraud-api',
      version,
      description:
        'Decides in one Redis round trip whether an ad click is clean or fraud (by detection rules: ip_blacklist, ip_range, click_spam, ip_flood, device_farm), and records every decision in a Redis stream. Every body is read as JSON whatever its Content-Type (tracking pixels post text/plain).',
    },
    tags: [
      { name: 'clicks', description: 'deciding clicks' },
      { name: 'operations', description: 'health, readiness and counts' },
      { name: 'blacklist', description: 'the admin API: needs ADMIN_TOKEN, sent as a bearer token' },
      { name: 'allowlist', description: 'the admin API: addresses, ranges and devices that win over every rule' },
      { name: 'rules', description: 'the admin API: the rule set in force, changed live' },
      { name: 'pages', description: 'the pages for people, and this document' },
    ],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' } } },
    paths: {
      '/': {
        post: {
          tags: ['clicks'],
          summary: 'Decide one click',
          description:
            'Judges the click by the rule set in force (GET /admin/rules), in this order: the allowlist wins over all (clean, allowlisted); then ip_blacklist, ip_range, click_spam, ip_flood, device_farm; the first rule in enforce mode that fires gives the verdict, with its reason; rules in shadow mode that fire are listed in shadow. With the default rules: the IP blacklist, then whether the device already has CLICK_SPAM_THRESHOLD clicks in the last CLICK_SPAM_WINDOW_IN_SEC seconds. The click is counted and streamed either way. Posting the same (device_id, transaction_id) again within the window answers the original decision with duplicate: true.',
          requestBody: {
            required: true,
            content: json(clickSchema, {
              clean: { device_id: '111-000-000', ip: '198.51.100.7', transaction_id: '3e4fad5fs' },
              ip_blacklist: { device_id: '222', ip: '::ffff:203.0.113.66', transaction_id: 'a1' },
              invalid_click: { device_id: '', ip: '1.1.1', transaction_id: 'x' },
            }),
          },
          responses: {
            200: {
              description: 'the decision: JSON, or the bare fraud_type for a client that asks for text/plain',
              content: {
                ...json(decision, {
                  clean,
                  ip_blacklist: {
                    ...clean,
                    transaction_id: 'a1',
                    device_id: '222',
                    ip: '203.0.113.66',
                    status: 'fraud',
                    fraud_type: 'ip_blacklist',
                    reason: { rule: 'ip_blacklist', observed: '203.0.113.66' },
                  },
                }),
                'text/plain': { schema: z.enum(FRAUD_TYPES), examples: named({ text_plain: 'clean' }) },
              },
            },
            400: failure('a field is missing, of the wrong type, empty or too long (every problem listed), or the body is not JSON', {
              invalid_click: error('invalid_click', 'the click has invalid fields', [
                { path: 'device_id', message: 'device_id must not be empty' },
                { path: 'ip', message: 'ip must be an IPv4 or IPv6 address' },
              ]),
              invalid_json: error('invalid_json', 'body is not valid JSON: Unexpected end of JSON input'),
            }),
            413: failure('the body is over 16 KiB', { body_too_large: error('body_too_large', 'body must be at most 16 KiB') }),
            415: failure('a Content-Encoding the API cannot read', { unsupported_encoding: error('unsupported_encoding', 'unsupported content encoding "x-unknown"') }),
            503: failure('Redis is down or slower than REDIS_TIMEOUT_MS: retry with the same transaction_id', { redis_unavailable: REDIS_UNAVAILABLE }),
          },
        },
        get: {
          tags: ['pages'],
          summary: 'The live page',
          description: 'For browsers (Accept: text/html): the decisions as they happen.',
          responses: {
            200: { description: 'the page', content: { 'text/html': { schema: text } } },
            406: failure('the client does not accept HTML', {
              not_acceptable: error('not_acceptable', 'GET / is the live page (text/html); post clicks to POST /, follow decisions at GET /events'),
            }),
          },
        },
      },
      '/batch': {
        post: {
          tags: ['clicks'],
          summary: 'Decide a batch of clicks',
          description: `Decides every click as POST / would, in order (clicks of one device see each other), in one Redis round trip, and answers one result per click in the same order. A click with invalid fields gets a BatchItemError with its index, and the others are still decided. At most ${batchMaxClicks} clicks (BATCH_MAX_CLICKS).`,
          requestBody: {
            required: true,
            content: json(z.object({ clicks: z.array(clickSchema).max(batchMaxClicks) }), {
              same_device: {
                clicks: ['a', 'b', 'c'].map((transaction_id) => ({ device_id: 'd1', ip: '10.0.0.1', transaction_id })),
              },
              invalid_batch: { click: [] },
            }),
          },
          responses: {
            200: answer('one result per click, in order', z.strictObject({ results: z.array(z.union([decision, batchItemError])) }), {
              same_device: {
                results: ['a', 'b', 'c'].map((transaction_id, i) => ({
                  ...clean,
                  transaction_id,
                  device_id: 'd1',
                  ip: '10.0.0.1',
                  stream_id: `${TS}-${i}`,
                  ...(i === 2 ? { status: 'fraud', fraud_type: 'click_spam', reason: { rule: 'click_spam', observed: 3, limit: 2, window_sec: 10 } } : {}),
                })),
              },
              with_invalid_click: {
                results: [
                  { ...clean, transaction_id: 'a', device_id: 'd2', ip: '10.0.0.2' },
                  { index: 1, error: 'invalid_click', message: 'the click has invalid fields', issues: [{ path: 'ip', message: 'ip must be an IPv4 or IPv6 address' }] },
                ],
              },
            }),
            400: failure('no clicks array, or the body is not JSON', {
              invalid_batch: error('invalid_batch', 'body must be a JSON object with a clicks array', [{ path: 'clicks', message: 'clicks must be an array of clicks' }]),
            }),
            413: failure('more clicks than BATCH_MAX_CLICKS (nothing decided), or a body over BATCH_MAX_CLICKS × 512 bytes', {
              batch_too_large: error('batch_too_large', `a batch holds at most ${batchMaxClicks} clicks`, [
                { path: 'clicks', message: `clicks must hold at most ${batchMaxClicks} clicks, not ${batchMaxClicks + 1}` },
              ]),
            }),
            503: failure('Redis could decide none of the clicks', { redis_unavailable: REDIS_UNAVAILABLE }),
          },
        },
      },
      '/metrics': {
        get: {
          tags: ['operations'],
          summary: 'Prometheus metrics',
          description:
            'Decisions by verdict, shadow hits by rule, clicks Redis did not decide by kind, requests by route and status class with their durations, open event streams, the stream worker\'s counts and lag, and the process\'s own (CPU, memory, event loop); with API_PROCESSES > 1, every API process\'s added up. No device id or address appears.',
          responses: { 200: { description: 'the Prometheus text format, version 0.0.4', content: { 'text/plain': { schema: z.string() } } } },
        },
      },
      '/healthz': {
        get: {
          tags: ['operations'],
          summary: 'Liveness',
          responses: { 200: answer('the process runs', z.strictObject({ status: z.literal('ok'), version: z.string() }), { ok: { status: 'ok', version } }) },
        },
      },
      '/readyz': {
        get: {
          tags: ['operations'],
          summary: 'Readiness',
          description: 'Whether Redis answers, with the backends in use and the clicks waiting for Redis in this process.',
          responses: {
            200: answer('ready', readiness, {
              ready: {
                ready: true,
                status: 'ready',
                redis: { url: 'redis://127.0.0.1:6379', version: '7.0.15', cluster: false, partitions: 1 },
                blacklist: { backend: 'set', key: 'ip_cf', add_command: 'SADD ip_cf <ip>', non_canonical: { found: 0, examples: [], scanned: 0, complete: true, checked_at: TS } },
                stats: { backend: 'hash' },
                offenders: { backend: 'zset' },
                clicks: { in_flight: 0, max_in_flight: 10_000, redis_hung: false },
              },
            }),
            503: answer('Redis is down, or has the click connection hung', readiness, {
              redis_unavailable: {
                ready: false,
                status: 'redis_unavailable',
                error: "Stream isn't writeable and enableOfflineQueue options is false",
                redis: { url: 'redis://127.0.0.1:6379', version: '7.0.15', cluster: false, partitions: 1 },
                blacklist: { backend: 'set', key: 'ip_cf', add_command: 'SADD ip_cf <ip>', non_canonical: { found: 0, examples: [], scanned: 0, complete: true, checked_at: TS } },
                stats: { backend: 'hash' },
                offenders: { backend: 'zset' },
                clicks: { in_flight: 0, max_in_flight: 10_000, redis_hung: false },
              },
            }),
          },
        },
      },
      '/stats': {
        get: {
          tags: ['operations'],
          summary: 'Counts per fraud type in time buckets',
          description:
            'Counts by the stream workers, per bucket and over the range, and how far the workers are behind. A range holds at most 10,000 buckets, and at most 31 days in whole minutes on RedisTimeSeries (1 day in finer buckets), 1 day in whole minutes on plain Redis (1 hour in finer buckets).',
          requestParams: {
            query: withExamples(statsQuerySchema, { per_minute: { bucket: '60000' }, invalid_query: { bucket: '500' } }),
          },
          responses: {
            200: answer('the counts', stats, {
              per_minute: {
                from: TS - 900_000,
                to: TS,
                bucket_ms: 60_000,
                backend: 'hash',
                buckets: [{ ts: 1795316820000, clean: 2, ip_blacklist: 1, click_spam: 1, total: 4 }],
                totals: { ...zeroCounts(), clean: 2, ip_blacklist: 1, click_spam: 1, total: 4 },
                series: SERIES_INFO,
                stream: { length: 4, pending: 0, lag: 0, dead_letters: 0 },
              },
            }),
            400: failure('a parameter is malformed, or the range too long for the bucket', {
              invalid_query: error('invalid_query', 'the stats query has invalid parameters', [{ path: 'bucket', message: 'bucket must be at least 1000 ms' }]),
            }),
            401: VIEWER_UNAUTHORIZED,
            503: failure('Redis is unavailable; or stats_busy (with Retry-After): too many reads of statistics wait already', {
              redis_unavailable: error('redis_unavailable', 'the stats could not be read because Redis is unavailable'),
            }),
          },
        },
      },
      '/offenders': {
        get: {
          tags: ['operations'],
          summary: 'Top offenders: the devices and addresses with most fraud clicks',
          description:
            'Adds up every minute that overlaps [from, to] (by default the last 15 minutes; at most 60), over every partition, and answers the limit (10 by default, at most 100) heaviest devices and addresses, each with its clicks per verdict. The stream workers keep each minute\'s heaviest fraud sources (a RedisBloom Top-K, or a sorted set on plain Redis) in the step that counts each decision, so each is counted once.',
          requestParams: {
            query: withExamples(offendersQuerySchema, { top_offenders: { limit: '2' }, invalid_query: { limit: '0' } }),
          },
          responses: {
            200: answer('the heaviest devices and addresses', offenders, {
              top_offenders: {
                from: 1795316160000,
                to: 1795317119999,
                limit: 2,
                backend: 'zset',
                devices: [
                  { device_id: '111-000-000', fraud: 3, verdicts: { click_spam: 3 } },
                  { device_id: '222', fraud: 1, verdicts: { ip_blacklist: 1 } },
                ],
                addresses: [
                  { ip: '198.51.100.7', fraud: 3, verdicts: { click_spam: 3 } },
                  { ip: '203.0.113.66', fraud: 1, verdicts: { ip_blacklist: 1 } },
                ],
              },
            }),
            400: failure('a parameter is malformed, from is after to, or the range is over 60 minutes', {
              invalid_query: error('invalid_query', 'the offenders query has invalid parameters', [{ path: 'limit', message: 'limit must be a whole number from 1 to 100' }]),
            }),
            401: VIEWER_UNAUTHORIZED,
            503: failure('Redis is unavailable; or stats_busy (with Retry-After): too many reads of statistics wait already', {
              redis_unavailable: error('redis_unavailable', 'the offenders could not be read because Redis is unavailable'),
            }),
          },
        },
      },
      '/admin/blacklist': {
        post: adminOperation({
          summary: 'Block an address',
          description: 'Adds the address to the blacklist and records why, by whom, and until when (ttl: seconds, or 90s, 15m, 1h, 7d; at most 365 days; none: no end).',
          requestBody: {
            required: true,
            content: json(banRequestSchema, {
              block: { ip: '203.0.113.9', reason: 'bot farm', ttl: '1h' },
              replace: { ip: '203.0.113.9', reason: 'bot farm, confirmed', ttl: 7200 },
              invalid_ban: { ip: '203.0.113.9', reason: '', ttl: '2y' },
            }),
          },
          responses: {
            201: answer('a new record', ban.extend({ blocked: z.literal(true), already_blocked: z.boolean(), replaced: z.boolean() }), {
              block: { ...blockedBan, blocked: true, already_blocked: false, replaced: false },
            }),
            200: answer('the record replaced', ban.extend({ blocked: z.literal(true), already_blocked: z.boolean(), replaced: z.boolean() }), {
              replace: { ...blockedBan, reason: 'bot farm, confirmed', expires_at: TS + 7_200_000, blocked: true, already_blocked: true, replaced: true },
            }),
            400: failure('a field is invalid', {
              invalid_ban: error('invalid_ban', 'the ban has invalid fields', [
                { path: 'reason', message: 'reason must not be empty' },
                { path: 'ttl', message: 'ttl must be a duration from 1 second to 365 days, such as 3600, "90s", "15m", "1h" or "7d"' },
              ]),
            }),
            507: failure('the cuckoo filter is full (its EXPANSION is 0, or it has 32 sub-filters)', {
              blacklist_full: error('blacklist_full', 'the blacklist cuckoo filter is full'),
            }),
          },
        }),
        get: adminOperation({
          summary: 'List recorded bans, newest first',
          requestParams: { query: withExamples(pageSchema, { first_page: { offset: '0', limit: '50' }, invalid_query: { limit: '0' } }) },
          responses: {
            200: answer('a page of bans', z.strictObject({ items: z.array(ban), total: z.int().min(0), offset: z.int().min(0), limit: z.int().min(1) }), {
              first_page: { items: [{ ...blockedBan, reason: 'bot farm, confirmed', expires_at: TS + 7_200_000 }], total: 1, offset: 0, limit: 50 },
            }),
            400: failure('offset or limit is not a whole number in range', {
              invalid_query: error('invalid_query', 'the page has invalid parameters', [{ path: 'limit', message: 'limit must be a whole number from 1 to 500' }]),
            }),
          },
        }),
      },
      '/admin/blacklist/{ip}': {
        get: adminOperation({
          summary: 'Whether an address is blocked, and why',
          description: 'entry is null for an address blocked outside the registry (redis-cli).',
          requestParams: {
            path: withExamples(z.object({ ip: blacklistTarget }), { blocked: { ip: '203.0.113.9' }, not_blacklisted: { ip: '192.0.2.1' }, invalid_ip: { ip: '1.1.1' } }),
          },
          responses: {
            200: answer('blocked, or recorded', z.strictObject({ ip: z.string(), blocked: z.boolean(), entry: ban.nullable() }), {
              blocked: { ip: '203.0.113.9', blocked: true, entry: { ...blockedBan, reason: 'bot farm, confirmed', expires_at: TS + 7_200_000 } },
            }),
            400: failure('not an address', { invalid_ip: INVALID_IP }),
            404: failure('not blacklisted; or admin_disabled', {
              not_blacklisted: error('not_found', '192.0.2.1 is not blacklisted'),
              admin_disabled: ADMIN_DISABLED,
            }),
          },
        }),
        delete: adminOperation({
          summary: 'Unblock an address and forget its record',
          requestParams: {
            path: withExamples(z.object({ ip: blacklistTarget }), { unblock: { ip: '203.0.113.9' }, not_blacklisted: { ip: '192.0.2.1' }, invalid_ip: { ip: '1.1.1' } }),
          },
          responses: {
            200: answer('unblocked', z.strictObject({ ip: z.string(), unblocked: z.boolean(), entry_removed: z.boolean() }), {
              unblock: { ip: '203.0.113.9', unblocked: true, entry_removed: true },
            }),
            400: failure('not an address', { invalid_ip: INVALID_IP }),
            404: failure('not blacklisted; or admin_disabled', {
              not_blacklisted: error('not_found', '192.0.2.1 is not blacklisted'),
              admin_disabled: ADMIN_DISABLED,
            }),
          },
        }),
      },
      '/admin/allowlist': {
        post: adminOperation({
          tags: ['allowlist'],
          summary: 'Allowlist an address, a range or a device',
          description: 'Give ip (an address or a range) or device_id, with a reason. Its clicks are then clean, marked allowlisted, whatever the rules say; they are still recorded and counted.',
          requestBody: {
            required: true,
            content: json(allowRequestSchema, {
              allow_address: { ip: '198.51.100.77', reason: 'QA rig' },
              allow_device: { device_id: 'qa-phone-1', reason: 'QA device' },
              invalid_allow: { ip: '1.1.1', reason: 'office' },
            }),
          },
          responses: {
            201: answer('a new entry', allowEntry.extend({ replaced: z.boolean() }), {
              allow_address: { kind: 'address', value: '198.51.100.77', reason: 'QA rig', added_at: TS, replaced: false },
              allow_device: { kind: 'device', value: 'qa-phone-1', reason: 'QA device', added_at: TS, replaced: false },
            }),
            200: answer('the entry replaced (a new reason)', allowEntry.extend({ replaced: z.boolean() })),
            400: failure('a field is invalid, or neither or both of ip and device_id are given', {
              invalid_allow: error('invalid_allow', 'the allowlist entry has invalid fields', [
                { path: 'ip', message: 'ip must be an IPv4 or IPv6 address, or a range such as 203.0.113.0/24' },
              ]),
            }),
          },
        }),
      },
      '/admin/allowlist/addresses': {
        get: adminOperation({
          tags: ['allowlist'],
          summary: 'Allowlisted addresses and ranges, a page at a time',
          requestParams: { query: z.object({ cursor: z.string().optional().meta({ description: 'the next_cursor of the page before' }) }) },
          responses: {
            200: answer('a page', allowPage, {
              addresses: { items: [{ kind: 'address', value: '198.51.100.77', reason: 'QA rig', added_at: TS }], next_cursor: null },
            }),
          },
        }),
      },
      '/admin/allowlist/devices': {
        get: adminOperation({
          tags: ['allowlist'],
          summary: 'Allowlisted devices, a page at a time',
          requestParams: { query: z.object({ cursor: z.string().optional().meta({ description: 'the next_cursor of the page before' }) }) },
          responses: {
            200: answer('a page', allowPage, {
              devices: { items: [{ kind: 'device', value: 'qa-phone-1', reason: 'QA device', added_at: TS }], next_cursor: null },
            }),
          },
        }),
      },
      '/admin/allowlist/addresses/{value}': {
        delete: adminOperation({
          tags: ['allowlist'],
          summary: 'Take an address or range off the allowlist',
          requestParams: {
            path: withExamples(z.object({ value: blacklistTarget }), {
              remove_address: { value: '198.51.100.77' },
              not_allowlisted: { value: '192.0.2.1' },
              invalid_ip: { value: '1.1.1' },
            }),
          },
          responses: {
            200: answer('removed', z.strictObject({ value: z.string(), removed: z.literal(true) }), { remove_address: { value: '198.51.100.77', removed: true } }),
            400: failure('not an address or range', {
              invalid_ip: error('invalid_ip', 'an address, or a range such as 203.0.113.0/24 (with its slash as %2F)', [
                { path: 'ip', message: 'an address, or a range such as 203.0.113.0/24 (with its slash as %2F)' },
              ]),
            }),
            404: failure('not on the allowlist; or admin_disabled', { not_allowlisted: error('not_found', '192.0.2.1 is not on the allowlist'), admin_disabled: ADMIN_DISABLED }),
          },
        }),
      },
      '/admin/allowlist/devices/{value}': {
        delete: adminOperation({
          tags: ['allowlist'],
          summary: 'Take a device off the allowlist',
          requestParams: { path: withExamples(z.object({ value: z.string() }), { remove_device: { value: 'qa-phone-1' }, device_not_allowlisted: { value: 'nobody' } }) },
          responses: {
            200: answer('removed', z.strictObject({ value: z.string(), removed: z.literal(true) }), { remove_device: { value: 'qa-phone-1', removed: true } }),
            404: failure('not on the allowlist; or admin_disabled', { device_not_allowlisted: error('not_found', 'nobody is not on the allowlist'), admin_disabled: ADMIN_DISABLED }),
          },
        }),
      },
      '/admin/rules': {
        get: adminOperation({
          tags: ['rules'],
          summary: 'The rule set in force',
          responses: {
            200: answer('the rule set, its version and where it came from', versionedRules, {
              current: { version: 1, source: 'environment', updated_at: TS, rules: ruleSetSchema.parse({}) },
            }),
          },
        }),
        put: adminOperation({
          tags: ['rules'],
          summary: 'Replace the rule set',
          description:
            'A whole rule set: every rule it leaves out takes its default. Stored as the next version; in force in every API process within about a second. An invalid one is refused with every problem named, and the rules in force stay.',
          requestBody: {
            required: true,
            content: json(ruleSetSchema, {
              shadow_flood: { ip_flood: { mode: 'shadow', threshold: 50, window_sec: 10 } },
              invalid_rules: { click_spam: { threshold: 0 } },
            }),
          },
          responses: {
            200: answer('stored', versionedRules, {
              shadow_flood: { version: 2, source: 'admin', updated_at: TS, rules: ruleSetSchema.parse({ ip_flood: { mode: 'shadow', threshold: 50, window_sec: 10 } }) },
            }),
            400: failure('the rule set is invalid: nothing changed', {
              invalid_rules: error('invalid_rules', 'the rule set has invalid fields; the rules in force are unchanged', [
                { path: 'click_spam.threshold', message: 'threshold must be at least 1' },
              ]),
            }),
          },
        }),
        delete: adminOperation({
          tags: ['rules'],
          summary: "Back to the environment's rule set",
          responses: {
            200: answer('stored as the next version', versionedRules, {
              reset: { version: 3, source: 'environment', updated_at: TS, rules: ruleSetSchema.parse({}) },
            }),
          },
        }),
      },
      '/events': {
        get: {
          tags: ['clicks'],
          summary: 'The decisions as server-sent events',
          description:
            'Each decision is an event: decision, with the stream id as id: and the decision as JSON in data:. A client that reconnects with Last-Event-ID (or last_event_id) gets what it missed first (at most 10,000; else an event: skipped).',
          requestParams: {
            header: withExamples(z.object({ 'last-event-id': z.string().optional().meta({ description: 'resume after this stream id' }) }), {
              invalid_last_event_id: { 'last-event-id': 'yesterday' },
            }),
            query: z.object({ last_event_id: z.string().optional().meta({ description: 'the same, for clients that cannot set the header' }) }),
          },
          responses: {
            200: { description: 'the event stream; it does not end', content: { 'text/event-stream': { schema: text } } },
            400: failure('Last-Event-ID is not a stream id', {
              invalid_last_event_id: error('invalid_last_event_id', 'Last-Event-ID must be the id of an event this feed sent (a stream id such as 1795316035551-0)'),
            }),
            503: failure('MAX_EVENT_STREAMS streams are open already (or it is 0: the feed is off), the server is shutting down, or Redis is unavailable', {
              too_many_event_streams: error('too_many_event_streams', 'the live feed is turned off on this server (MAX_EVENT_STREAMS=0)'),
            }),
          },
        },
      },
      '/openapi.json': {
        get: { tags: ['pages'], summary: 'This document', responses: { 200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: z.looseObject({ openapi: z.literal('3.1.0') }) } } } } },
      },
      '/docs': {
        get: { tags: ['pages'], summary: 'This document as a page', responses: { 200: { description: 'the page', content: { 'text/html': { schema: text } } } } },
      },
    },
  };
  return createDocument(document);
}
