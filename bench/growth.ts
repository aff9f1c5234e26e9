/**
 * How a click's cost grows with the work Redis holds: active devices, blacklisted addresses (cuckoo
 * filter and set), and the spam threshold (clicks kept per device); and what the rules beyond the
 * seed two cost (ip_flood and device_farm keep a window per address). Each case starts from an empty
 * private Redis, preloads its state inside Redis (RESTORE of one dumped key per device, CF.INSERT or
 * SADD of 10,000 addresses a call), then measures POST / at full load.
 */
import { Redis } from 'ioredis';
import { parseConfig } from '../src/config.js';
import { createKeyspace } from '../src/redis/keyspace.js';
import { blacklistedIp, clickSource } from './clicks.js';
import { autocannonLoad, type Load } from './load.js';
import { CONNECTIONS, rates, ROUND_SECONDS } from './main-table.js';
import { startServer } from './processes.js';
import { hasBloom, mainThreadCpuUs, usedMemory } from './redis-figures.js';
import { badOf, fmt, mb, median, medianLoad, ms, type Row, verdictOf } from './table.js';

const ROUNDS = 2;
/**
 * The window of the growth cases. Preloaded clicks must stay in their devices' windows (and the
 * keys alive) while a case runs, about 10 s; the cost of a click does not depend on the window's
 * length, only on what it holds, which the threshold sets.
 */
const WINDOW_SECONDS = 60;
const PRELOAD_CHUNK = 10_000;
/**
 * A case's Redis CPU per click may be this many times the baseline's and still count as flat. The
 * cost is judged by CPU time, not by clicks/s: the cases run one after the other, minutes apart, on
 * a machine whose speed drifts by more than that between them (the rate is shown beside it).
 */
const FLAT_REDIS_CPU = 1.3;

interface GrowthCase {
  name: string;
  devices: number;
  backend: 'cuckoo' | 'set';
  addresses: number;
  threshold: number;
  /** RULES for the API, when the case turns more rules on (see domain/rules.ts). */
  rules?: Record<string, unknown>;
  /** `flat`: its cost must stay that of the baseline. `cost`: more work by design, its cost is what it shows. */
  expect: 'flat' | 'cost';
}

export interface GrowthContext {
  redisUrl: string;
  namespace: string;
  apiEnv: Record<string, string>;
  log(line: string): void;
}

export interface GrowthResult {
  header: string[];
  cells: string[][];
  rows: Row[];
}

/** What a case measured. */
interface Measured {
  load: Load;
  loads: Load[];
  redisUsPerClick: number;
  memory: number;
  bytesPerDevice: number;
  blacklistBytes: number;
}

export async function growthSection(ctx: GrowthContext): Promise<GrowthResult> {
  const { log } = ctx;
  const admin = new Redis(ctx.redisUrl);
  const bloom = await hasBloom(admin);
  const filter = bloom ? 'cuckoo' : 'set';
  const base: GrowthCase = { name: 'baseline', devices: 10_000, backend: filter, addresses: 10, threshold: 2, expect: 'flat' };
  const cases: GrowthCase[] = [
    base,
    { ...base, name: '100,000 devices', devices: 100_000 },
    { ...base, name: '1,000,000 devices', devices: 1_000_000 },
    ...(bloom ? [{ ...base, name: '1,000,000 addresses (cuckoo filter)', addresses: 1_000_000 }] : []),
    ...(bloom ? [{ ...base, name: 'set blacklist', backend: 'set' as const }] : []),
    { ...base, name: '1,000,000 addresses (set)', backend: 'set', addresses: 1_000_000 },
    { ...base, name: 'threshold 100', threshold: 100 },
    // Every click comes from a new address here, so each opens an address window of its own: the most they can cost.
    { ...base, name: 'ip_flood and device_farm on', rules: { ip_flood: { mode: 'enforce' }, device_farm: { mode: 'enforce' } }, expect: 'cost' },
    { ...base, name: 'ip_flood and device_farm in shadow', rules: { ip_flood: { mode: 'shadow' }, device_farm: { mode: 'shadow' } }, expect: 'cost' },
  ];
  try {
    const results: Array<[GrowthCase, Measured]> = [];
    for (const growthCase of cases) {
      log(`growth: ${growthCase.name} (${fmt(growthCase.devices)} devices, ${fmt(growthCase.addresses)} addresses in the ${growthCase.backend}, threshold ${growthCase.threshold})`);
      results.push([growthCase, await measureCase(ctx, admin, growthCase)]);
    }
    const [, baseline] = results[0]!;
    const rows: Row[] = [];
    const cells = results.map(([growthCase, measured]) => {
      const rateRatio = measured.load.rate / baseline.load.rate;
      const timeRatio = measured.redisUsPerClick / baseline.redisUsPerClick;
      const row: Row = {
        figure: `growth: ${growthCase.name}`,
        value: `${fmt(measured.load.rate)} clicks/s, Redis ${measured.redisUsPerClick.toFixed(1)} µs/click`,
        bad: badOf(measured.loads),
        ...(growthCase.expect === 'flat' ? { target: 'flat', met: timeRatio <= FLAT_REDIS_CPU } : { target: 'its cost' }),
      };
      rows.push(row);
      return [
        growthCase.name,
        fmt(growthCase.devices),
        `${fmt(growthCase.addresses)} (${growthCase.backend})`,
        String(growthCase.threshold),
        `${fmt(measured.load.rate)} (${rateRatio.toFixed(2)})`,
        ms(measured.load.p99),
        `${measured.redisUsPerClick.toFixed(1)} (${timeRatio.toFixed(2)})`,
        mb(measured.memory),
        fmt(measured.bytesPerDevice),
        `${fmt(measured.blacklistBytes / growthCase.addresses)} (${mb(measured.blacklistBytes)})`,
        `${fmt(badOf(measured.loads).failed)} / ${fmt(badOf(measured.loads).errors)}`,
        growthCase.expect === 'cost' ? `${signed(measured.redisUsPerClick - baseline.redisUsPerClick)} µs of Redis CPU` : verdictOf(row) === 'met' ? 'flat' : verdictOf(row),
      ];
    });
    const header = [
      'case',
      'active devices',
      'blacklist',
      'threshold',
      'clicks/s (× baseline)',
      'p99',
      'Redis CPU µs per click (× baseline)',
      'Redis memory',
      'bytes per active device',
      'bytes per blacklisted address (the blacklist)',
      'non-2xx / errors',
      `flat (≤ ${FLAT_REDIS_CPU} × Redis CPU), or what the rules cost`,
    ];
    return { header, cells, rows };
  } finally {
    admin.disconnect();
  }
}

async function measureCase(ctx: GrowthContext, admin: Redis, growthCase: GrowthCase): Promise<Measured> {
  const { namespace, apiEnv } = ctx;
  await admin.flushall();
  const blacklistKey = apiEnv.IP_CUCKOO_FILTER_NAME!;
  const api = await startServer('dist/main.js', {
    ...apiEnv,
    REDIS_URL: ctx.redisUrl,
    ROLE: 'api',
    BLACKLIST_BACKEND: growthCase.backend,
    CLICK_SPAM_THRESHOLD: String(growthCase.threshold),
    CLICK_SPAM_WINDOW_IN_SEC: String(WINDOW_SECONDS),
    ...(growthCase.rules ? { RULES: JSON.stringify(growthCase.rules) } : {}),
  });
  try {
    const keyspace = createKeyspace({ keyPrefix: namespace, blacklistKey, streamKey: apiEnv.DECISION_STREAM_NAME!, deadLetterKey: apiEnv.DEAD_LETTER_STREAM_NAME!, partitions: 1, cluster: false });
    const memoryBefore = await usedMemory(admin);
    await preloadDevices(admin, keyspace.partitions[0]!, growthCase, namespace);
    const memoryDevices = await usedMemory(admin);
    const blacklistBytes = await preloadBlacklist(admin, blacklistKey, growthCase, apiEnv);
    const memory = await usedMemory(admin);

    const next = clickSource(growthCase.devices, { prefix: 'gdev', order: 'random' });
    const body = () => JSON.stringify(next());
    await autocannonLoad({ url: api.url, path: '/', body, seconds: 1, connections: CONNECTIONS });
    const cpuBefore = await mainThreadCpuUs(admin);
    const loads: Load[] = [];
    for (let round = 0; round < ROUNDS; round++) loads.push(await autocannonLoad({ url: api.url, path: '/', body, seconds: ROUND_SECONDS, connections: CONNECTIONS }));
    // All that Redis did for the clicks (reading them, the scripts, the answers), over the clicks decided.
    const decided = loads.reduce((sum, round) => sum + round.count, 0);
    const redisUsPerClick = ((await mainThreadCpuUs(admin)) - cpuBefore) / decided;
    const load = { ...medianLoad(loads), rate: median(rates(loads)) };
    ctx.log(`  ${fmt(load.rate)} clicks/s, p99 ${ms(load.p99)}, Redis ${redisUsPerClick.toFixed(1)} µs per click, ${mb(memory)}`);
    return { load, loads, redisUsPerClick, memory, bytesPerDevice: (memoryDevices - memoryBefore) / growthCase.devices, blacklistBytes };
  } finally {
    await api.stop();
  }
}

/** One RESTORE script call per chunk of devices: the server copies one dumped window and verdicts hash into each device's keys. */
const RESTORE_DEVICES = `
for i = 1, #KEYS, 2 do
  redis.call('RESTORE', KEYS[i], ARGV[3], ARGV[1])
  redis.call('RESTORE', KEYS[i + 1], ARGV[3], ARGV[2])
end
return #KEYS / 2`;

/**
 * Every device with `threshold` clicks in its window, the most it holds before its clicks are spam:
 * its window and verdicts as the check script writes them.
 */
async function preloadDevices(admin: Redis, partition: ReturnType<typeof createKeyspace>['partitions'][number], { devices, threshold }: GrowthCase, namespace: string): Promise<void> {
  const now = Date.now();
  const [windowTemplate, verdictsTemplate] = [`${namespace}template:window`, `${namespace}template:verdicts`];
  for (let k = 0; k < threshold; k++) {
    const ts = now - k;
    await admin.zadd(windowTemplate, ts, `pre-${k}`);
    // As includes/decideClick.lua writes a verdict: ts, fraud type, stream id, allowlisted, reason, shadow, rules version.
    await admin.hset(verdictsTemplate, `pre-${k}`, [ts, 'clean', `${ts}-0`, 0, '', '', 1].join('\t'));
  }
  const [windowDump, verdictsDump] = [await admin.dumpBuffer(windowTemplate), await admin.dumpBuffer(verdictsTemplate)];
  await admin.del(windowTemplate, verdictsTemplate);
  const calls: Array<Promise<unknown>> = [];
  for (let from = 0; from < devices; from += PRELOAD_CHUNK) {
    const keys: string[] = [];
    for (let device = from; device < Math.min(devices, from + PRELOAD_CHUNK); device++) keys.push(partition.window(`gdev-${device}`), partition.verdicts(`gdev-${device}`));
    calls.push(admin.eval(RESTORE_DEVICES, keys.length, ...keys, windowDump!, verdictsDump!, WINDOW_SECONDS * 1000));
    if (calls.length >= 4) await Promise.all(calls.splice(0));
  }
  await Promise.all(calls);
}

/**
 * The blacklist made again from nothing and filled, as the API makes it (a cuckoo filter reserved
 * with the API's settings: its memory is set by its capacity, not by what it holds). Answers the
 * memory it takes.
 */
async function preloadBlacklist(admin: Redis, key: string, { backend, addresses }: GrowthCase, apiEnv: Record<string, string>): Promise<number> {
  await admin.del(key);
  const before = await usedMemory(admin);
  if (backend === 'cuckoo') {
    const parsed = parseConfig(apiEnv);
    if (!parsed.ok) throw new Error(parsed.problems.join('\n'));
    const { capacity, bucketSize, expansion } = parsed.config.blacklist;
    await admin.call('CF.RESERVE', key, capacity, 'BUCKETSIZE', bucketSize, 'EXPANSION', expansion);
  }
  for (let from = 0; from < addresses; from += PRELOAD_CHUNK) {
    const ips = Array.from({ length: Math.min(PRELOAD_CHUNK, addresses - from) }, (_, i) => blacklistedIp(from + i));
    await (backend === 'cuckoo' ? admin.call('CF.INSERT', key, 'NOCREATE', 'ITEMS', ...ips) : admin.sadd(key, ...ips));
  }
  return (await usedMemory(admin)) - before;
}

/** `+9.0` or `−2.1`: a difference, signed either way. */
function signed(n: number): string {
  return `${n < 0 ? '−' : '+'}${Math.abs(n).toFixed(1)}`;
}
