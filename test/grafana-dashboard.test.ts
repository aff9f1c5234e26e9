import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SERIES, timeSeriesKey, seriesLabels, workerLagLabels, type Resolution } from '../src/stats/series.js';
import { redisStackMissing, redisStackUrl, sleep, startTestApi, type TestApi } from './support/api.js';
import { startTestWorker, type TestWorker } from './support/worker.js';
import { pairs } from './support/replies.js';

/**
 * The Fraud Stats dashboard (grafana/dashboards/fraud-stats.json): first its structure against the
 * provisioned data source and the labels the stream worker writes; then, on Redis Stack, every panel's
 * queries sent exactly as the Redis Data Source plugin's backend sends them, after a known burst of clicks.
 */

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

interface Target {
  refId?: string;
  datasource?: { type?: string; uid?: string };
  type?: string;
  command?: string;
  query?: string;
  keyName?: string;
  filter?: string;
  aggregation?: string;
  bucket?: unknown;
  legend?: string;
  value?: string;
  fill?: boolean;
  streaming?: boolean;
  tsGroupByLabel?: string;
  tsReducer?: string;
}
interface Transformation {
  id: string;
  options: Record<string, unknown>;
}
interface Panel {
  id?: unknown;
  type?: string;
  title?: string;
  description?: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  transformations?: Transformation[];
}
interface Dashboard {
  uid?: string;
  title?: string;
  refresh?: string;
  time?: { from: string; to: string };
  panels: Panel[];
}

const dashboard = JSON.parse(read('grafana/dashboards/fraud-stats.json')) as Dashboard;
const provisioned = (parse(read('grafana/provisioning/datasources/redis.yaml')) as { datasources: Array<{ type: string; uid: string }> })
  .datasources[0]!;

/** The app label the dashboard is written for (METRICS_APP_NAME's default); tests substitute their own. */
const DASHBOARD_APP = 'click-fraud';
/** Commands the plugin's backend dispatches on (pkg/query.go); everything else answers nothing. */
const PLUGIN_COMMANDS = ['ts.get', 'ts.info', 'ts.queryindex', 'ts.range', 'ts.mrange', 'ts.mget', 'xlen', 'xinfoStream', 'xrange', 'xrevrange'];
/** Panels select series by labels only (so the app label can be substituted), never by key name. */
const LABEL_COMMANDS = ['ts.mrange', 'ts.mget'];
const AGGREGATIONS = ['avg', 'count', 'max', 'min', 'range', 'sum', 'first', 'last', 'std.p', 'std.s', 'var.p', 'var.s'];
const PANEL_TYPES = ['timeseries', 'stat', 'gauge', 'bargauge', 'piechart', 'table'];
const RESOLUTION_MS: Record<Resolution, number> = { '1s': 1000, '1m': 60_000 };
const FRAUD_SHARE_PANEL = 'Fraud share';

type Labels = Record<string, string>;
const labelsOf = (flat: string[]): Labels => Object.fromEntries(pairs(flat));

/** The label sets of every series the worker writes for an app. */
function workerSeries(app: string): Labels[] {
  const resolutions: Resolution[] = ['1s', '1m'];
  return [...SERIES.flatMap((series) => resolutions.map((resolution) => labelsOf(seriesLabels(app, series, resolution)))), labelsOf(workerLagLabels(app))];
}

interface Term {
  label: string;
  values: string[];
}

/** A RedisTimeSeries filter made only of `label=value` and `label=(a,b)` terms. */
function parseFilter(filter: string): Term[] {
  return filter
    .trim()
    .split(/\s+/)
    .map((term) => {
      const match = /^([A-Za-z_][\w.-]*)=(?:\(([^()=!\s]+)\)|([^()=!\s,]+))$/.exec(term);
      if (!match) throw new Error(`filter term ${JSON.stringify(term)} is not label=value or label=(a,b)`);
      return { label: match[1]!, values: (match[2] ?? match[3]!).split(',') };
    });
}

const matches = (labels: Labels, terms: Term[]) => terms.every((term) => term.values.includes(labels[term.label] ?? ''));

const allTargets = () => dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel, target })));

describe('the Fraud Stats dashboard', () => {
  const known = workerSeries(DASHBOARD_APP);
  const knownValues = new Map<string, Set<string>>();
  for (const labels of known) {
    for (const [label, value] of Object.entries(labels)) knownValues.set(label, (knownValues.get(label) ?? new Set()).add(value));
  }

  it('is "Fraud Stats", with a stable uid, refreshed every 5 s over the last 15 minutes', () => {
    expect(dashboard.title).toBe('Fraud Stats');
    expect(dashboard.uid).toMatch(/^[\w-]{8,40}$/);
    expect(dashboard.refresh).toBe('5s');
    expect(dashboard.time).toEqual({ from: 'now-15m', to: 'now' });
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(6);
  });

  it('gives every panel a unique id, a place on the grid and the provisioned Redis data source', () => {
    expect(provisioned.type).toBe('redis-datasource');
    const ids = dashboard.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of dashboard.panels) {
      expect(Number.isInteger(panel.id), `${panel.title}: id`).toBe(true);
      expect(PANEL_TYPES, `${panel.title}: type`).toContain(panel.type);
      expect(panel.title).toBeTruthy();
      const grid = panel.gridPos!;
      expect(grid, `${panel.title}: gridPos`).toBeDefined();
      for (const n of [grid.x, grid.y, grid.w, grid.h]) expect(Number.isInteger(n) && n >= 0).toBe(true);
      expect(grid.w > 0 && grid.h > 0 && grid.x + grid.w <= 24, `${panel.title}: within the 24 columns`).toBe(true);
      expect(panel.datasource).toEqual({ type: provisioned.type, uid: provisioned.uid });
      expect(panel.targets?.length, `${panel.title}: targets`).toBeGreaterThan(0);
    }
  });

  it('writes every target as the plugin reads it', () => {
    for (const { panel, target } of allTargets()) {
      const where = `${panel.title} / ${target.refId}`;
      expect(target.refId, where).toMatch(/^[A-Z]$/);
      expect(target.datasource, where).toEqual({ type: provisioned.type, uid: provisioned.uid });
      expect(PLUGIN_COMMANDS, where).toContain(target.command);
      expect(LABEL_COMMANDS, `${where}: selects series by labels`).toContain(target.command);
      expect(target.keyName, `${where}: no key name`).toBeUndefined();
      // A non-empty query is run as a raw CLI command instead of `command`.
      expect(target.query, where).toBe('');
      expect(target.type, where).toBe('timeSeries');
      expect(target.streaming ?? false, where).toBe(false);
      if (target.command === 'ts.mrange') {
        // Always aggregate: without one, 2.2.x may send a stray bucket argument.
        expect(AGGREGATIONS, where).toContain(target.aggregation);
        expect(Number.isInteger(target.bucket) && (target.bucket as number) > 0, `${where}: bucket is a number of ms`).toBe(true);
      }
      expect(Boolean(target.tsGroupByLabel), `${where}: GROUPBY needs a reducer`).toBe(Boolean(target.tsReducer));
    }
    const refIds = dashboard.panels.map((panel) => (panel.targets ?? []).map((target) => target.refId));
    for (const ids of refIds) expect(new Set(ids).size).toBe(ids.length);
  });

  it('selects, in every filter, the app and only labels and values the worker writes', () => {
    for (const { panel, target } of allTargets()) {
      const where = `${panel.title} / ${target.refId}: ${target.filter}`;
      expect(target.filter, where).not.toMatch(/["']/);
      const terms = parseFilter(target.filter!);
      expect(terms.filter((term) => term.label === 'app'), where).toEqual([{ label: 'app', values: [DASHBOARD_APP] }]);
      expect(new Set(terms.map((term) => term.label)).size, `${where}: each label once`).toBe(terms.length);
      for (const term of terms) {
        expect([...knownValues.keys()], where).toContain(term.label);
        for (const value of term.values) expect([...knownValues.get(term.label)!], where).toContain(value);
      }
      const selected = known.filter((labels) => matches(labels, terms));
      expect(selected.length, `${where}: selects a series`).toBeGreaterThan(0);
      // One kind of series per query: never raw and per-minute series, or counts and lag, together.
      expect(new Set(selected.map((labels) => `${labels.metric}/${labels.resolution}`)).size, where).toBe(1);
      // The legend label names every frame (a missing one gives an empty name).
      for (const labels of selected) expect(labels[target.legend!], `${where}: legend ${target.legend}`).toBeDefined();
      const first = selected[0]!;
      if (first.metric === 'clicks') {
        expect(target.aggregation, `${where}: counts add up`).toBe('sum');
        expect((target.bucket as number) % RESOLUTION_MS[first.resolution as Resolution], `${where}: bucket is whole ${first.resolution} steps`).toBe(0);
      }
    }
  });

  it('covers verdicts per second, the total, totals, fraud share, per-minute sums and worker lag', () => {
    const selections = allTargets().map(({ panel, target }) => ({ panel, labels: known.filter((l) => matches(l, parseFilter(target.filter!))) }));
    const has = (test: (labels: Labels[]) => boolean, type?: string) =>
      selections.some(({ panel, labels }) => (type === undefined || panel.type === type) && test(labels));
    const types = (labels: Labels[]) => labels.map((l) => l.fraud_type).sort();
    const perSecond = (labels: Labels[]) => labels.every((l) => l.metric === 'clicks' && l.resolution === '1s');
    expect(has((l) => perSecond(l) && types(l).join() === 'clean,click_spam,ip_blacklist', 'timeseries')).toBe(true);
    expect(has((l) => perSecond(l) && types(l).join() === 'total', 'timeseries')).toBe(true);
    expect(has((l) => perSecond(l) && ['click_spam', 'clean', 'ip_blacklist'].every((t) => types(l).includes(t)), 'stat')).toBe(true);
    expect(has((l) => l.every((x) => x.metric === 'clicks' && x.resolution === '1m'), 'timeseries')).toBe(true);
    expect(has((l) => l.length === 1 && l[0]!.metric === 'worker_lag', 'timeseries')).toBe(true);
  });

  it('is queried with the commands the plugin sends (the Redis Stack tests below send these)', () => {
    const first = dashboard.panels[0]!.targets![0]!;
    expect(pluginCommand(first, 1_000, 2_000, 'other-app')).toEqual([
      'ts.mrange', '1000', 2_000, 'AGGREGATION', 'sum', 1000, 'WITHLABELS', 'FILTER',
      'app=other-app', 'metric=clicks', 'resolution=1s', 'fraud_type=(clean,ip_blacklist,click_spam)',
    ]);
  });

  it('computes the fraud share from fraud and total series, and says how', () => {
    const share = dashboard.panels.find((panel) => panel.title === FRAUD_SHARE_PANEL);
    expect(share?.type).toBe('stat');
    expect(share!.description).toMatch(/ip_blacklist \+ click_spam/);
    const transformations = share!.transformations ?? [];
    expect(transformations.map((t) => t.id)).toEqual(['reduce', 'rowsToFields', 'calculateField', 'calculateField']);
    // The names the transformations use are fraud types the panel's queries return, or their own aliases.
    const returned = new Set(
      share!.targets!.flatMap((target) => known.filter((l) => matches(l, parseFilter(target.filter!))).map((l) => l[target.legend!]!)),
    );
    expect([...returned].sort()).toEqual(['click_spam', 'ip_blacklist', 'total']);
    // Evaluated on 1 of each: (1 + 1) / 1.
    expect(evaluateTransformations(transformations, new Map([...returned].map((name) => [name, 1])))).toBe(2);
    for (const panel of dashboard.panels.filter((p) => p !== share)) expect(panel.transformations ?? [], panel.title).toEqual([]);
  });
});

/**
 * The Fraud share panel's transformations, on the sum of each frame over the range (the only ones it
 * uses): Reduce (series to rows, sum) → Rows to fields → Add field (reduce row: sum) → Add field (binary).
 */
function evaluateTransformations(transformations: Transformation[], frameSums: Map<string, number>): number | undefined {
  const fields = new Map<string, number>();
  let result: number | undefined;
  for (const { id, options } of transformations) {
    if (id === 'reduce') {
      expect(options).toMatchObject({ mode: 'seriesToRows', reducers: ['sum'] });
      for (const [name, sum] of frameSums) fields.set(name, sum);
    } else if (id === 'rowsToFields') {
      expect(options.mappings ?? []).toEqual([]);
    } else if (id === 'calculateField' && options.mode === 'reduceRow') {
      const reduce = options.reduce as { reducer: string; include: string[] };
      expect(reduce.reducer).toBe('sum');
      for (const name of reduce.include) expect([...fields.keys()], `reduceRow includes ${name}`).toContain(name);
      result = reduce.include.reduce((sum, name) => sum + fields.get(name)!, 0);
      fields.set(options.alias as string, result);
    } else if (id === 'calculateField' && options.mode === 'binary') {
      const binary = options.binary as { left: { matcher: { id: string; options: string } }; operator: string; right: { matcher: { id: string; options: string } } };
      const operand = (side: { matcher: { id: string; options: string } }) => {
        expect(side.matcher.id).toBe('byName');
        expect([...fields.keys()], `binary operand ${side.matcher.options}`).toContain(side.matcher.options);
        return fields.get(side.matcher.options)!;
      };
      const [left, right] = [operand(binary.left), operand(binary.right)];
      const operations: Record<string, (a: number, b: number) => number> = { '+': (a, b) => a + b, '-': (a, b) => a - b, '*': (a, b) => a * b, '/': (a, b) => a / b };
      expect(Object.keys(operations)).toContain(binary.operator);
      result = operations[binary.operator]!(left, right);
      fields.set(options.alias as string, result);
    } else {
      throw new Error(`transformation ${id} (${JSON.stringify(options)}) is not one the test evaluates`);
    }
  }
  return result;
}

interface Frame {
  /** As the plugin names it: the value of the legend label, else the key. */
  name: string;
  key: string;
  labels: Labels;
  rows: Array<[number, number]>;
}

/** The Redis command the plugin's backend sends for a target (pkg/redis-time-series.go), with another app label. */
function pluginCommand(target: Target, from: number, to: number, app: string): [string, ...Array<string | number>] {
  // The plugin splits the filter shell-style; the structure test keeps quotes out, so spaces it is.
  const filter = target.filter!.trim().split(/\s+/).map((term) => (term === `app=${DASHBOARD_APP}` ? `app=${app}` : term));
  switch (target.command) {
    case 'ts.mrange':
      return [
        target.command,
        String(from),
        to,
        ...(target.aggregation ? ['AGGREGATION', target.aggregation, target.bucket as number] : []),
        'WITHLABELS',
        'FILTER',
        ...filter,
        ...(target.tsGroupByLabel ? ['GROUPBY', target.tsGroupByLabel, 'REDUCE', target.tsReducer!] : []),
      ];
    case 'ts.mget':
      return [target.command, 'WITHLABELS', 'FILTER', ...filter];
    default:
      throw new Error(`no label-selecting command: ${target.command}`);
  }
}

async function runTarget(redis: Redis, target: Target, from: number, to: number, app: string): Promise<Frame[]> {
  const [command, ...args] = pluginCommand(target, from, to, app);
  type Reply = Array<[string, Array<[string, string]>, Array<[number, string]> | [number, string]]>;
  const reply = (await redis.call(command, ...args)) as Reply;
  return reply.map(([key, rawLabels, samples]) => {
    const labels = Object.fromEntries(rawLabels);
    // ts.mget answers one [timestamp, value] pair, ts.mrange a list of them.
    const rows = (command === 'ts.mget' ? [samples] : samples) as Array<[number, string]>;
    return {
      key,
      labels,
      name: target.legend ? (labels[target.legend] ?? '') : key,
      rows: rows.filter((row) => row.length === 2).map(([ts, value]) => [Number(ts), Number(value)] as [number, number]),
    };
  });
}

const sum = (frame: Frame) => frame.rows.reduce((total, [, value]) => total + value, 0);

describe.skipIf(!redisStackUrl)(
  `the Fraud Stats dashboard's queries against the worker's series (Redis Stack)${redisStackUrl ? '' : ` — skipped: ${redisStackMissing}`}`,
  () => {
    const app = `dash-${randomUUID().slice(0, 8)}`;
    const BLACKLISTED_IP = '203.0.113.66';
    let api: TestApi;
    let worker: TestWorker | undefined;
    /**
     * Sends the panels' queries. The plugin's client is radix v3 (go.mod: mediocregopher/radix/v3,
     * whose protocol package is resp2; RESP3 came with radix v4): it never sends HELLO 3.
     * ioredis 6 defaults to RESP3, where TS.MRANGE answers a map (key -> [labels map, aggregators,
     * samples]) that its "legacy" mapping flattens into a differently nested array; protocol 2 gets
     * the reply the plugin parses.
     */
    let pluginRedis: Redis;
    /** Decisions per fraud type, as the API answered them, and `total`. */
    const decided: Record<string, number> = { clean: 0, ip_blacklist: 0, click_spam: 0, total: 0 };
    let from = 0;
    let to = 0;

    beforeAll(async () => {
      api = await startTestApi({ METRICS_APP_NAME: app }, redisStackUrl);
      pluginRedis = new Redis(redisStackUrl!, { protocol: 2 });
      worker = await startTestWorker(api.config, redisStackUrl!);
      await api.admin.call('CF.ADDNX', api.config.blacklist.key, BLACKLISTED_IP);

      // 3 devices × 4 clicks (threshold 2: 2 clean, then 2 click_spam each) and 3 clicks from a
      // blacklisted address: 6 clean, 6 click_spam, 3 ip_blacklist.
      const devices = ['dev-a', 'dev-b', 'dev-c'];
      const answers = (
        await Promise.all([
          ...devices.map(async (device) => {
            const mine = [];
            for (let i = 0; i < 4; i++) mine.push(await api.click(device, `${device}-t${i}`, '10.0.0.1'));
            return mine;
          }),
          Promise.all(['bl-1', 'bl-2', 'bl-3'].map((device) => api.click(device, `${device}-t0`, BLACKLISTED_IP))),
        ])
      ).flat();
      for (const answer of answers) {
        decided[answer.fraud_type] = (decided[answer.fraud_type] ?? 0) + 1;
        decided.total = (decided.total ?? 0) + 1;
      }
      expect(decided).toEqual({ clean: 6, ip_blacklist: 3, click_spam: 6, total: 15 });
      await worker.drained();

      // A window around the burst, in whole minutes, as a dashboard's time range would be.
      const minute = (ms: number) => Math.floor(ms / 60_000) * 60_000;
      const times = answers.map((answer) => answer.ts);
      const lastBucket = minute(Math.max(...times, Date.now()));
      // A per-minute compaction bucket is only written once a later sample arrives, and the plugin
      // does not ask for the open bucket (no LATEST). So close the burst's minutes: add a 0 to each
      // per-second series in the next minute, as the worker would (ON_DUPLICATE SUM). Sums are unchanged.
      const closing = lastBucket + 60_000;
      for (const series of SERIES) {
        await api.admin.call('TS.ADD', timeSeriesKey(api.config.keyPrefix, series, '1s'), closing, 0, 'ON_DUPLICATE', 'SUM');
      }
      from = minute(Math.min(...times)) - 60_000;
      to = closing + 59_999;
    });

    afterAll(async () => {
      pluginRedis?.disconnect();
      await worker?.stop();
      if (api) {
        const keys = await api.writtenKeys();
        if (keys.length > 0) await api.admin.del(...keys);
        await api.close();
      }
    });

    it.each(
      dashboard.panels.flatMap((panel) =>
        (panel.targets ?? [])
          .filter((target) => parseFilter(target.filter!).some((term) => term.label === 'metric' && term.values.includes('clicks')))
          .map((target) => [`${panel.title} / ${target.refId}`, target] as const),
      ),
    )('%s: each fraud type sums to its decisions', async (_, target) => {
      const frames = await runTarget(pluginRedis, target, from, to, app);
      const selected = parseFilter(target.filter!).find((term) => term.label === 'fraud_type')!.values;
      expect(frames.map((frame) => frame.name).sort()).toEqual([...selected].sort());
      for (const frame of frames) {
        expect(frame.labels.app).toBe(app);
        expect(sum(frame), `${frame.name} (${frame.key})`).toBe(decided[frame.name]);
      }
    });

    it('Fraud share: the panel gives fraud ÷ total of the burst', async () => {
      const panel = dashboard.panels.find((p) => p.title === FRAUD_SHARE_PANEL)!;
      const frames = (await Promise.all(panel.targets!.map((target) => runTarget(pluginRedis, target, from, to, app)))).flat();
      const frameSums = new Map(frames.map((frame) => [frame.name, sum(frame)]));
      expect(evaluateTransformations(panel.transformations!, frameSums)).toBeCloseTo((3 + 6) / 15, 10);
    });

    it('Worker lag: the series exists and reads 0 once the worker has drained the stream', async () => {
      const targets = dashboard.panels.flatMap((panel) =>
        (panel.targets ?? []).filter((target) => parseFilter(target.filter!).some((term) => term.label === 'metric' && term.values.includes('worker_lag'))),
      );
      expect(targets.length).toBeGreaterThan(0);
      for (const target of targets) {
        // One sample a second: the one after the drain may still be on its way.
        let latest: number | undefined;
        for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(250)) {
          const frames = await runTarget(pluginRedis, target, from, Date.now() + 1000, app);
          expect(frames).toHaveLength(1);
          expect(frames[0]!.name).toBe('worker_lag');
          latest = frames[0]!.rows.at(-1)?.[1];
          if (latest === 0) break;
        }
        expect(latest).toBe(0);
      }
    });
  },
);
