import { z } from 'zod';
import { parseRuleSet, type RuleSet } from './domain/rules.js';
import type { BlacklistBackend } from './redis/blacklist.js';
import type { OffendersBackend } from './redis/offenders.js';

/**
 * Every setting, its default, and what it means. The README's settings table mirrors this list;
 * `test/readme.test.ts` keeps the two in step.
 */
export const SETTINGS = {
  ROLE: { default: 'all', doc: '`all`: the API and one stream worker in one process. `api` or `worker`: only that one (`npm run worker` is `ROLE=worker`).' },
  PORT: { default: '5000', doc: 'HTTP port of the API.' },
  HOST: { default: '0.0.0.0', doc: 'Interface the API listens on.' },
  API_PROCESSES: { default: '1', doc: 'API processes (node:cluster) sharing the port, each with its own Redis connection; `auto` is one per core. The stream worker runs once, in the primary.' },
  BATCH_MAX_CLICKS: { default: '1000', doc: 'Most clicks one `POST /batch` may carry.' },
  HTTP_REQUEST_TIMEOUT_MS: { default: '30000', doc: 'Longest a client may take to send a whole request, headers and body; past it the API answers 408 and closes the connection. Responses are not limited by it: the `/events` stream stays open.' },
  HTTP_HEADERS_TIMEOUT_MS: { default: '10000', doc: 'Longest a client may take to send the request headers (at most HTTP_REQUEST_TIMEOUT_MS).' },
  REDIS_URL: { default: undefined, secret: true, doc: 'Redis to use, e.g. `redis://:password@host:6379/0` (`rediss://` for TLS). Wins over REDIS_HOST/REDIS_PORT.' },
  REDIS_CLUSTER_NODES: { default: undefined, secret: true, doc: 'A Redis Cluster instead of one server: some of its nodes, comma-separated, as `host:port` or `redis://[user:password@]host:port` (`rediss://` for TLS; the first one\'s credentials apply to all). Wins over REDIS_URL.' },
  REDIS_HOST: { default: undefined, doc: 'Redis host, as in the reference article (used when REDIS_URL is not set).' },
  REDIS_PORT: { default: undefined, doc: 'Redis port with REDIS_HOST (6379 when only the host is given).' },
  REDIS_DATA_DIR: { default: '.redis-data', doc: 'With no Redis configured, `npm start` runs a private `redis-server` with its data (AOF) in this folder, and records there (`private-redis.json`) where it listens: the worker, the blacklist CLI and the bench use that Redis when no Redis is configured.' },
  REDIS_PRIVATE_PORT: { default: '6379', doc: 'Port of that private Redis when it is free; when it is taken, a free port, which the start-up log names. `0`: always a free port.' },
  REDIS_SERVER_BIN: { default: undefined, doc: 'Server program of that private Redis (a name on PATH or a path). Unset: `redis-stack-server` (Redis Stack, with the modules) when on PATH, else `redis-server`.' },
  REDIS_TIMEOUT_MS: { default: '250', doc: 'Longest a click waits for Redis before it is answered 503 (or degraded, see FAIL_MODE); a batch waits this plus 1 ms for each of its clicks and each click already waiting in the process. A check that reaches Redis later records nothing.' },
  REDIS_WAIT_REPLICAS: { default: '0', doc: 'Opt-in durability: after each check, `WAIT` until this many replicas of its master have it (at most REDIS_WAIT_TIMEOUT_MS). 0: no wait; replication is asynchronous, so a decision acknowledged just before its master dies can be lost with it.' },
  REDIS_WAIT_TIMEOUT_MS: { default: '100', doc: 'Longest a check waits for REDIS_WAIT_REPLICAS replicas; a decision that fewer acknowledged stands (answered 200) and is counted in `/readyz` as `unreplicated`.' },
  REDIS_MAX_IN_FLIGHT: { default: '10000', doc: 'Most clicks one API process has waiting for Redis at once; past it, and while Redis is not answering, clicks are answered 503 at once instead of queued.' },
  CLICK_SPAM_THRESHOLD: { default: '2', doc: 'A click is `click_spam` when its device already has this many clicks inside the window.' },
  CLICK_SPAM_WINDOW_IN_SEC: { default: '10', doc: 'Length of the sliding window per device, in seconds (decimals allowed).' },
  RULES: { default: undefined, doc: 'The rule set to start with, as JSON (see [Detection rules](#detection-rules)), e.g. `{"ip_flood":{"mode":"shadow","threshold":50,"window_sec":10}}`; rules it leaves out keep their defaults, and CLICK_SPAM_THRESHOLD and CLICK_SPAM_WINDOW_IN_SEC give click_spam\'s unless it sets them. A rule set set through the admin API or CLI takes its place until reset.' },
  BLACKLIST_BACKEND: { default: 'auto', doc: '`auto`: a cuckoo filter where RedisBloom is loaded, else a set. `cuckoo` or `set` force one (`cuckoo` refuses to start without RedisBloom).' },
  IP_CUCKOO_FILTER_NAME: { default: 'ip_cf', doc: 'Key of the IP blacklist: a cuckoo filter with RedisBloom, a set without it.' },
  IP_CUCKOO_FILTER_CAPACITY: { default: '1000000', doc: 'Capacity given to `CF.RESERVE` when the API creates the filter.' },
  IP_CUCKOO_FILTER_BUCKET_SIZE: { default: '2', doc: 'Cuckoo filter bucket size (1-255): its false-positive rate is at most 2 × bucket size / 256 (1.6% at 2).' },
  IP_CUCKOO_FILTER_EXPANSION: { default: '1', doc: 'Growth when the filter fills: each new sub-filter holds capacity × expansion^n (up to 32 sub-filters). 0 refuses additions once full.' },
  ADMIN_TOKEN: { default: undefined, secret: true, doc: 'Bearer token of the admin API (`/admin/blacklist`); unset, the admin API is off.' },
  VIEWER_PASSWORD: { default: undefined, secret: true, doc: 'Password of the read-only views that show every click (`GET /` live page, `/events`, `/stats`, `/offenders`): HTTP basic auth with the user name `viewer`; at least 12 characters. Unset, those views are open. Clicks, `/healthz`, `/readyz` and the admin API never ask for it.' },
  BAN_SWEEP_INTERVAL_MS: { default: '1000', doc: 'How often a worker ends the temporary bans that are due.' },
  DECISION_STREAM_NAME: { default: 'fraud:decisions', doc: 'Stream every decision is appended to (with several partitions, each has its own: `<name>:{<partition tag>}`).' },
  DECISION_STREAM_PARTITIONS: { default: 'auto', doc: 'Partitions of the decisions (a device always goes to the same one; each has its own stream, device keys and counters in one cluster slot). `auto`: 1 on a single Redis, 12 on a cluster; on a cluster, a multiple of the number of masters spreads them evenly. Change it only with the workers drained.' },
  DECISION_STREAM_MAXLEN: { default: '1000000', doc: 'Approximate cap of the decision stream (`XADD MAXLEN ~`).' },
  KEY_PREFIX: { default: 'fraud:', doc: 'Prefix of every key the service names itself (windows, counters, the ban registry).' },
  WORKER_GROUP: { default: 'counters', doc: 'Consumer group the stream workers share; each decision is counted by one of them.' },
  WORKER_CONSUMER: { default: undefined, doc: 'This worker\'s consumer name in the group (default: `<hostname>-<pid>`). Keep it stable across restarts to resume its own pending entries at once.' },
  WORKER_BATCH_SIZE: { default: '500', doc: 'Decisions a worker reads and counts per round trip (`XREADGROUP COUNT`).' },
  WORKER_BLOCK_MS: { default: '1000', doc: 'How long an idle worker waits for new decisions per read (`XREADGROUP BLOCK`).' },
  WORKER_CLAIM_IDLE_MS: { default: '30000', doc: 'A decision left pending this long by a worker (one that died, say) is claimed by another (`XAUTOCLAIM`).' },
  WORKER_MAX_DELIVERIES: { default: '5', doc: 'A decision that fails this many deliveries moves to the dead-letter stream instead of blocking the group.' },
  WORKER_METRICS_PORT: { default: undefined, doc: 'With ROLE=worker, the port on which the worker answers `GET /metrics` for Prometheus (on HOST). Unset: no such port. A worker beside the API (ROLE=all) is in the API\'s `/metrics`.' },
  DEAD_LETTER_STREAM_NAME: { default: 'fraud:decisions:dead', doc: 'Stream of decisions that could not be counted, each with the reason.' },
  STATS_BACKEND: { default: 'auto', doc: '`auto`: RedisTimeSeries where loaded, else plain Redis hashes. `timeseries` or `hash` force one (`timeseries` refuses to start without the module).' },
  STATS_RETENTION_SEC: { default: '86400', doc: 'How long per-second counts are kept.' },
  STATS_MINUTE_RETENTION_SEC: { default: '2592000', doc: 'How long the per-minute sums (RedisTimeSeries compaction) are kept.' },
  OFFENDERS_BACKEND: { default: 'auto', doc: 'Store of the top offenders (`GET /offenders`): `auto`: RedisBloom Top-K where loaded, else sorted sets. `topk` or `zset` force one (`topk` refuses to start without RedisBloom).' },
  OFFENDERS_RETENTION_SEC: { default: '86400', doc: 'How long each minute\'s top offenders are kept.' },
  METRICS_APP_NAME: { default: 'click-fraud', doc: 'Value of the `app` label on every time series; the Grafana dashboard selects series by it.' },
  MAX_EVENT_STREAMS: { default: '100', doc: 'Most live-page event streams (`GET /events`) one API process keeps open; past it a new one is refused with 503 `too_many_event_streams`; 0 turns the live feed off.' },
  FAIL_MODE: { default: 'closed', doc: '`closed`: answer 503 when Redis fails. `open`: answer `clean` with `"degraded": true` and count the click nowhere.' },
  LOG_LEVEL: { default: 'info', doc: 'pino level: fatal, error, warn, info, debug, trace or silent.' },
  SHUTDOWN_TIMEOUT_MS: { default: '10000', doc: 'On SIGTERM/SIGINT, longest wait for in-flight requests before connections are cut.' },
} as const satisfies Record<string, { default: string | undefined; doc: string; secret?: true }>;

type SettingName = keyof typeof SETTINGS;

/**
 * A setting's value as a problem report may show it. A secret (a token, a URL that can carry a
 * password) is never printed, not even a wrong one, which may be the right one mistyped or pasted
 * into the wrong variable: only its length.
 */
function shownValue(name: string, value: string | undefined): string {
  const secret = (SETTINGS as Record<string, { secret?: true }>)[name]?.secret === true;
  if (!secret || value === undefined) return JSON.stringify(value);
  return `${[...value].length} characters, not shown: ${name} is secret`;
}

const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const positiveSeconds = z
  .string()
  .trim()
  .regex(/^-?\d+(\.\d+)?$/, 'must be a number of seconds')
  .transform(Number)
  .pipe(z.number().min(0.001, 'must be more than 0').max(86_400, 'must be at most 86400 (one day)'));

const redisUrl = z
  .string()
  .trim()
  .refine((text) => URL.canParse(text) && /^rediss?:$/.test(new URL(text).protocol), 'must be a redis:// or rediss:// URL');

/** The service puts its own hash tags into key names; a brace in a configured name would displace them. */
const noBraces = (text: string) => !/[{}]/.test(text);
const keyName = z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters').refine(noBraces, 'must not contain { or }');

/** `host:port` or a redis:// URL per node; all of them as one `redis-cluster://` address (see connection.ts). */
const clusterNodes = z
  .string()
  .trim()
  .transform((text, ctx) => {
    const nodes = text.split(',').map((node) => node.trim()).filter(Boolean);
    const urls = nodes.map((node) => (/^rediss?:\/\//.test(node) ? node : `redis://${node}`));
    if (nodes.length === 0 || !urls.every((url) => URL.canParse(url) && new URL(url).port !== '')) {
      ctx.issues.push({ code: 'custom', input: text, message: 'must be host:port or redis://host:port entries, comma-separated' });
      return z.NEVER;
    }
    const [first] = urls.map((url) => new URL(url));
    const credentials = first!.password ? `${first!.username}:${first!.password}@` : first!.username ? `${first!.username}@` : '';
    const scheme = first!.protocol === 'rediss:' ? 'rediss-cluster' : 'redis-cluster';
    return `${scheme}://${credentials}${urls.map((url) => new URL(url).host).join(',')}`;
  });

const envSchema = z.object({
  ROLE: z.enum(['all', 'api', 'worker'], 'must be all, api or worker'),
  PORT: wholeNumber(0, 65_535),
  HOST: z.string().min(1),
  API_PROCESSES: z.union([z.literal('auto'), wholeNumber(1, 256)], 'must be auto or a whole number from 1 to 256'),
  BATCH_MAX_CLICKS: wholeNumber(1, 10_000),
  HTTP_REQUEST_TIMEOUT_MS: wholeNumber(100, 3_600_000),
  HTTP_HEADERS_TIMEOUT_MS: wholeNumber(100, 3_600_000),
  REDIS_URL: redisUrl.optional(),
  REDIS_CLUSTER_NODES: clusterNodes.optional(),
  REDIS_HOST: z.string().trim().min(1).optional(),
  REDIS_PORT: wholeNumber(1, 65_535).optional(),
  REDIS_DATA_DIR: z.string().min(1),
  REDIS_PRIVATE_PORT: wholeNumber(0, 65_535),
  REDIS_SERVER_BIN: z.string().trim().min(1).optional(),
  REDIS_TIMEOUT_MS: wholeNumber(1, 60_000),
  REDIS_WAIT_REPLICAS: wholeNumber(0, 16),
  REDIS_WAIT_TIMEOUT_MS: wholeNumber(1, 60_000),
  REDIS_MAX_IN_FLIGHT: wholeNumber(1, 1_000_000),
  CLICK_SPAM_THRESHOLD: wholeNumber(1, 100_000),
  CLICK_SPAM_WINDOW_IN_SEC: positiveSeconds,
  RULES: z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.issues.push({ code: 'custom', input: text, message: 'must be a JSON object of rules' });
        return z.NEVER;
      }
    })
    .optional(),
  BLACKLIST_BACKEND: z.enum(['auto', 'cuckoo', 'set'], 'must be auto, cuckoo or set'),
  IP_CUCKOO_FILTER_NAME: keyName,
  IP_CUCKOO_FILTER_CAPACITY: wholeNumber(1, 4_294_967_295),
  IP_CUCKOO_FILTER_BUCKET_SIZE: wholeNumber(1, 255),
  IP_CUCKOO_FILTER_EXPANSION: wholeNumber(0, 32_768),
  ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  VIEWER_PASSWORD: z.string().min(12, 'must be at least 12 characters').optional(),
  BAN_SWEEP_INTERVAL_MS: wholeNumber(10, 3_600_000),
  DECISION_STREAM_NAME: keyName,
  DECISION_STREAM_PARTITIONS: z.union([z.literal('auto'), wholeNumber(1, 1024)], 'must be auto or a whole number from 1 to 1024'),
  DECISION_STREAM_MAXLEN: wholeNumber(1, Number.MAX_SAFE_INTEGER),
  KEY_PREFIX: z.string().max(256, 'must be at most 256 characters').refine(noBraces, 'must not contain { or }'),
  WORKER_GROUP: keyName,
  WORKER_CONSUMER: keyName.optional(),
  WORKER_BATCH_SIZE: wholeNumber(1, 10_000),
  WORKER_BLOCK_MS: wholeNumber(1, 60_000),
  WORKER_CLAIM_IDLE_MS: wholeNumber(1, 86_400_000),
  WORKER_MAX_DELIVERIES: wholeNumber(1, 1000),
  WORKER_METRICS_PORT: wholeNumber(0, 65_535).optional(),
  DEAD_LETTER_STREAM_NAME: keyName,
  STATS_BACKEND: z.enum(['auto', 'timeseries', 'hash'], 'must be auto, timeseries or hash'),
  STATS_RETENTION_SEC: wholeNumber(60, 31_536_000),
  STATS_MINUTE_RETENTION_SEC: wholeNumber(60, 315_360_000),
  OFFENDERS_BACKEND: z.enum(['auto', 'topk', 'zset'], 'must be auto, topk or zset'),
  OFFENDERS_RETENTION_SEC: wholeNumber(60, 31_536_000),
  METRICS_APP_NAME: z.string().regex(/^[\w.-]{1,64}$/, 'must be 1-64 letters, digits, ".", "-" or "_"'),
  MAX_EVENT_STREAMS: wholeNumber(0, 100_000),
  FAIL_MODE: z.enum(['closed', 'open'], 'must be closed or open'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'must be one of fatal, error, warn, info, debug, trace, silent'),
  SHUTDOWN_TIMEOUT_MS: wholeNumber(0, 600_000),
} satisfies Record<SettingName, z.ZodType>).check((ctx) => {
  // Node refuses a headers timeout longer than the request timeout, and it could never fire.
  const { HTTP_HEADERS_TIMEOUT_MS: headers, HTTP_REQUEST_TIMEOUT_MS: request } = ctx.value;
  if (headers > request) {
    ctx.issues.push({ code: 'custom', input: headers, path: ['HTTP_HEADERS_TIMEOUT_MS'], message: `must be at most HTTP_REQUEST_TIMEOUT_MS (${request})` });
  }
});

export type Role = 'all' | 'api' | 'worker';
export type StatsBackend = 'timeseries' | 'hash';

export interface Config {
  role: Role;
  http: {
    port: number;
    host: string;
    /** Processes serving the API; 'auto': one per core. */
    processes: number | 'auto';
    batchMaxClicks: number;
    /** Longest a client may take to send a whole request. */
    requestTimeoutMs: number;
    /** Longest a client may take to send the request headers. */
    headersTimeoutMs: number;
  };
  redis: {
    /**
     * Where Redis is (a RedisAddress: a redis:// URL, or a redis-cluster:// list of seed nodes).
     * Undefined: no Redis was configured, so `npm start` runs a private one.
     */
    url: string | undefined;
    dataDir: string;
    /** Port of the private Redis when free; 0: any free port. */
    privatePort: number;
    /** Undefined: redis-stack-server when on PATH, else redis-server. */
    serverBin: string | undefined;
    timeoutMs: number;
    /** Clicks waiting for Redis at once, per API process. */
    maxInFlight: number;
    /** Replicas each check waits for (WAIT), or undefined for none. */
    waitReplicas: { count: number; timeoutMs: number } | undefined;
  };
  /** The rule set the environment gives (see domain/rules.ts); what runs is the one in Redis, seeded from it. */
  rules: RuleSet;
  blacklist: { backend: 'auto' | BlacklistBackend; key: string; capacity: number; bucketSize: number; expansion: number };
  admin: {
    /** Undefined: the admin API is off. */
    token: string | undefined;
    banSweepIntervalMs: number;
  };
  stream: { key: string; maxLen: number; partitions: number | 'auto' };
  keyPrefix: string;
  worker: {
    group: string;
    /** Undefined: `<hostname>-<pid>`. */
    consumer: string | undefined;
    batchSize: number;
    blockMs: number;
    claimIdleMs: number;
    maxDeliveries: number;
    deadLetterKey: string;
    /** With ROLE=worker, where it serves GET /metrics; undefined: nowhere. */
    metricsPort: number | undefined;
  };
  stats: {
    backend: 'auto' | StatsBackend;
    retentionMs: number;
    minuteRetentionMs: number;
    appName: string;
  };
  /** The top offenders (see redis/offenders.ts). */
  offenders: { backend: 'auto' | OffendersBackend; retentionMs: number };
  /** The live page's event streams. */
  live: { maxEventStreams: number };
  /** The read-only views (live page, /events, /stats). */
  viewer: {
    /** Undefined: the views are open. */
    password: string | undefined;
  };
  failMode: 'closed' | 'open';
  logLevel: z.output<typeof envSchema>['LOG_LEVEL'];
  shutdownTimeoutMs: number;
}

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] };

/** Reads the settings from an environment (normally `process.env`); an empty value counts as unset. */
export function parseConfig(env: Record<string, string | undefined>): ConfigResult {
  const input: Record<string, string | undefined> = {};
  for (const [name, setting] of Object.entries(SETTINGS)) {
    const value = env[name];
    input[name] = value === undefined || value === '' ? setting.default : value;
  }
  const parsed = envSchema.safeParse(input);
  if (!parsed.success) {
    return {
      ok: false,
      problems: parsed.error.issues.map((issue) => {
        const name = String(issue.path[0]);
        return `${name} ${issue.message} (got ${shownValue(name, input[name])})`;
      }),
    };
  }
  const e = parsed.data;
  const given = (e.RULES ?? {}) as Record<string, unknown>;
  const clickSpam = (typeof given.click_spam === 'object' && given.click_spam !== null ? given.click_spam : {}) as Record<string, unknown>;
  const rules = parseRuleSet(
    typeof e.RULES === 'object' && e.RULES !== null && !Array.isArray(e.RULES)
      ? { ...given, click_spam: { threshold: e.CLICK_SPAM_THRESHOLD, window_sec: e.CLICK_SPAM_WINDOW_IN_SEC, ...clickSpam } }
      : e.RULES ?? { click_spam: { threshold: e.CLICK_SPAM_THRESHOLD, window_sec: e.CLICK_SPAM_WINDOW_IN_SEC } },
  );
  if (!rules.ok) return { ok: false, problems: rules.problems.map((problem) => `RULES ${problem.path}: ${problem.message}`) };
  const seed = rules.rules;
  return {
    ok: true,
    config: {
      role: e.ROLE,
      http: {
        port: e.PORT,
        host: e.HOST,
        processes: e.API_PROCESSES,
        batchMaxClicks: e.BATCH_MAX_CLICKS,
        requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
        headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      },
      redis: {
        url: e.REDIS_CLUSTER_NODES ?? e.REDIS_URL ?? redisUrlFromHostPort(e.REDIS_HOST, e.REDIS_PORT),
        dataDir: e.REDIS_DATA_DIR,
        privatePort: e.REDIS_PRIVATE_PORT,
        serverBin: e.REDIS_SERVER_BIN,
        timeoutMs: e.REDIS_TIMEOUT_MS,
        maxInFlight: e.REDIS_MAX_IN_FLIGHT,
        waitReplicas: e.REDIS_WAIT_REPLICAS === 0 ? undefined : { count: e.REDIS_WAIT_REPLICAS, timeoutMs: e.REDIS_WAIT_TIMEOUT_MS },
      },
      rules: seed,
      blacklist: {
        backend: e.BLACKLIST_BACKEND,
        key: e.IP_CUCKOO_FILTER_NAME,
        capacity: e.IP_CUCKOO_FILTER_CAPACITY,
        bucketSize: e.IP_CUCKOO_FILTER_BUCKET_SIZE,
        expansion: e.IP_CUCKOO_FILTER_EXPANSION,
      },
      admin: { token: e.ADMIN_TOKEN, banSweepIntervalMs: e.BAN_SWEEP_INTERVAL_MS },
      stream: { key: e.DECISION_STREAM_NAME, maxLen: e.DECISION_STREAM_MAXLEN, partitions: e.DECISION_STREAM_PARTITIONS },
      keyPrefix: e.KEY_PREFIX,
      worker: {
        group: e.WORKER_GROUP,
        consumer: e.WORKER_CONSUMER,
        batchSize: e.WORKER_BATCH_SIZE,
        blockMs: e.WORKER_BLOCK_MS,
        claimIdleMs: e.WORKER_CLAIM_IDLE_MS,
        maxDeliveries: e.WORKER_MAX_DELIVERIES,
        deadLetterKey: e.DEAD_LETTER_STREAM_NAME,
        metricsPort: e.WORKER_METRICS_PORT,
      },
      stats: {
        backend: e.STATS_BACKEND,
        retentionMs: e.STATS_RETENTION_SEC * 1000,
        minuteRetentionMs: e.STATS_MINUTE_RETENTION_SEC * 1000,
        appName: e.METRICS_APP_NAME,
      },
      offenders: { backend: e.OFFENDERS_BACKEND, retentionMs: e.OFFENDERS_RETENTION_SEC * 1000 },
      live: { maxEventStreams: e.MAX_EVENT_STREAMS },
      viewer: { password: e.VIEWER_PASSWORD },
      failMode: e.FAIL_MODE,
      logLevel: e.LOG_LEVEL,
      shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    },
  };
}

function redisUrlFromHostPort(host: string | undefined, port: number | undefined): string | undefined {
  if (host === undefined && port === undefined) return undefined;
  const url = new URL('redis://localhost:6379');
  if (host !== undefined) url.hostname = host;
  if (port !== undefined) url.port = String(port);
  return url.toString();
}
