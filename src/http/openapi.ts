import { z } from 'zod';
import { createDocument, type ZodOpenApiObject, type ZodOpenApiOperationObject } from 'zod-openapi';
import { banRequestSchema } from '../domain/ban.js';
import { clickSchema } from '../domain/click.js';
import { ipField } from '../domain/ip.js';
import { FRAUD_TYPES } from '../domain/verdict.js';
import { pageSchema } from './admin-routes.js';
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

const counts = { clean: z.int().min(0), ip_blacklist: z.int().min(0), click_spam: z.int().min(0), total: z.int().min(0) };

const stats = z
  .strictObject({
    from: z.int(),
    to: z.int(),
    bucket_ms: z.int(),
    backend: z.enum(['timeseries', 'hash']),
    buckets: z.array(z.strictObject({ ts: z.int().meta({ description: 'start of the bucket, unix ms' }), ...counts })).meta({ description: 'only buckets with clicks' }),
    totals: z.strictObject(counts),
    stream: z.strictObject({
      length: z.int().min(0),
      pending: z.int().min(0).meta({ description: 'delivered to a worker, not yet counted' }),
      lag: z.int().min(0).nullable().meta({ description: 'not yet delivered to any worker; null when Redis cannot tell' }),
      dead_letters: z.int().min(0),
    }),
  })
  .meta({ id: 'Stats' });

const readiness = z
  .strictObject({
    ready: z.boolean(),
    status: z.enum(['ready', 'redis_not_answering', 'redis_unavailable']),
    error: z.string().optional(),
    redis: z.strictObject({ url: z.string().meta({ description: 'password masked' }), version: z.string() }),
    blacklist: z.strictObject({ backend: z.enum(['cuckoo', 'set']), key: z.string(), add_command: z.string() }),
    stats: z.strictObject({ backend: z.enum(['timeseries', 'hash']) }),
    clicks: z.strictObject({ in_flight: z.int().min(0), max_in_flight: z.int().min(1), redis_hung: z.boolean() }),
  })
  .meta({ id: 'Readiness' });

const text = z.string();

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

const REDIS_UNAVAILABLE = error('redis_unavailable', 'the click could not be decided because Redis is unavailable; retry with the same transaction_id');
const UNAUTHORIZED = error('unauthorized', 'the admin API needs Authorization: Bearer <ADMIN_TOKEN>');
const ADMIN_DISABLED = error('admin_disabled', 'the admin API is off: set ADMIN_TOKEN to turn it on');
const ADMIN_REDIS_UNAVAILABLE = error('redis_unavailable', 'the blacklist could not be changed or read because Redis is unavailable');
const INVALID_IP = error('invalid_ip', 'ip must be an IPv4 or IPv6 address', [{ path: 'ip', message: 'ip must be an IPv4 or IPv6 address' }]);
const TS = 1795316035550;
const clean = { transaction_id: '3e4fad5fs', device_id: '111-000-000', ip: '198.51.100.7', status: 'clean', fraud_type: 'clean', ts: TS, stream_id: `${TS}-0`, duplicate: false };
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
        'Decides in one Redis round trip whether an ad click is clean or fraud (ip_blacklist, click_spam), and records every decision in a Redis stream. Every body is read as JSON whatever its Content-Type (tracking pixels post text/plain).',
    },
    tags: [
      { name: 'clicks', description: 'deciding clicks' },
      { name: 'operations', description: 'health, readiness and counts' },
      { name: 'blacklist', description: 'the admin API: needs ADMIN_TOKEN, sent as a bearer token' },
      { name: 'pages', description: 'the pages for people, and this document' },
    ],
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' } } },
    paths: {
      '/': {
        post: {
          tags: ['clicks'],
          summary: 'Decide one click',
          description:
            'Checks, in this order: the IP blacklist (ip_blacklist), then whether the device already has CLICK_SPAM_THRESHOLD clicks in the last CLICK_SPAM_WINDOW_IN_SEC seconds (click_spam); otherwise clean. The click is counted and streamed either way. Posting the same (device_id, transaction_id) again within the window answers the original decision with duplicate: true.',
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
                  ip_blacklist: { ...clean, transaction_id: 'a1', device_id: '222', ip: '203.0.113.66', status: 'fraud', fraud_type: 'ip_blacklist' },
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
                  ...(i === 2 ? { status: 'fraud', fraud_type: 'click_spam' } : {}),
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
                redis: { url: 'redis://127.0.0.1:6379', version: '7.0.15' },
                blacklist: { backend: 'set', key: 'ip_cf', add_command: 'SADD ip_cf <ip>' },
                stats: { backend: 'hash' },
                clicks: { in_flight: 0, max_in_flight: 10_000, redis_hung: false },
              },
            }),
            503: answer('Redis is down, or has the click connection hung', readiness, {
              redis_unavailable: {
                ready: false,
                status: 'redis_unavailable',
                error: "Stream isn't writeable and enableOfflineQueue options is false",
                redis: { url: 'redis://127.0.0.1:6379', version: '7.0.15' },
                blacklist: { backend: 'set', key: 'ip_cf', add_command: 'SADD ip_cf <ip>' },
                stats: { backend: 'hash' },
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
                totals: { clean: 2, ip_blacklist: 1, click_spam: 1, total: 4 },
                stream: { length: 4, pending: 0, lag: 0, dead_letters: 0 },
              },
            }),
            400: failure('a parameter is malformed, or the range too long for the bucket', {
              invalid_query: error('invalid_query', 'the stats query has invalid parameters', [{ path: 'bucket', message: 'bucket must be at least 1000 ms' }]),
            }),
            503: failure('Redis is unavailable; or stats_busy (with Retry-After): too many reads of statistics wait already', {
              redis_unavailable: error('redis_unavailable', 'the stats could not be read because Redis is unavailable'),
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
            path: withExamples(z.object({ ip: ipField }), { blocked: { ip: '203.0.113.9' }, not_blacklisted: { ip: '192.0.2.1' }, invalid_ip: { ip: '1.1.1' } }),
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
            path: withExamples(z.object({ ip: ipField }), { unblock: { ip: '203.0.113.9' }, not_blacklisted: { ip: '192.0.2.1' }, invalid_ip: { ip: '1.1.1' } }),
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
              invalid_last_event_id: error('invalid_last_event_id', 'Last-Event-ID must be a stream id such as 1795316035551-0'),
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
