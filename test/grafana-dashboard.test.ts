import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import type { DataFrame, DataTransformerConfig, Field, FieldConfigSource } from '@grafana/data';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../src/config.js';
import { RULES, type RuleName } from '../src/domain/rules.js';
import { FRAUD_TYPES } from '../src/domain/verdict.js';
import type { Partition } from '../src/redis/keyspace.js';
import { SERIES, seriesLabels, shadowSeries, workerLagLabels, zeroCounts, type Resolution, type SeriesName } from '../src/stats/series.js';
import { redisStackClusterUrl, redisStackMissing, redisStackUrl, sleep, startTestApi, type ClickAnswer, type TestApi } from './support/api.js';
import { startTestWorker, type TestWorker } from './support/worker.js';
import { pairs } from './support/replies.js';
import { grafana, transform } from './support/grafana-data.js';
import { tsMRangeCommand, tsMRangeFrames, type PluginTarget, type TsMRangeReply } from './support/grafana-plugin.js';

/**
 * The Fraud Stats dashboard (grafana/dashboards/fraud-stats.json): first its structure against the
 * provisioned data source and the labels the stream worker writes; then, on Redis Stack with several
 * partitions (a single server, and a cluster), every panel's queries sent exactly as the Redis Data
 * Source plugin's backend sends them after known clicks that get every verdict and every shadow hit
 * the rules can give (set through the admin API), the replies made into frames as
 * the plugin makes them, and those frames named, matched by the colour overrides and transformed by
 * Grafana's own code (@grafana/data).
 */

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

interface Panel {
  id?: unknown;
  type?: string;
  title?: string;
  description?: string;
  gridPos?: { x: number; y: number; w: number; h: number };
  datasource?: { type?: string; uid?: string };
  targets?: PluginTarget[];
  transformations?: DataTransformerConfig[];
  /** The panel's own relative time range, which replaces the dashboard's (Query options → Relative time). */
  timeFrom?: string;
  hideTimeOverride?: boolean;
  fieldConfig?: FieldConfigSource;
  options?: { reduceOptions?: { calcs: string[] } };
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
/** Panels select series by labels only (so the app label can be substituted), with TS.MRANGE, whose frames the tests below build. */
const LABEL_COMMAND = 'ts.mrange';
const AGGREGATIONS = ['avg', 'count', 'max', 'min', 'range', 'sum', 'first', 'last', 'std.p', 'std.s', 'var.p', 'var.s'];
const PANEL_TYPES = ['timeseries', 'stat', 'gauge', 'bargauge', 'piechart', 'table'];
const RESOLUTION_MS: Record<Resolution, number> = { '1s': 1000, '1m': 60_000 };
const FRAUD_SHARE_PANEL = 'Fraud share';
/** Every verdict the rule set can give, and every shadow series: what the panels must show, whatever the rules. */
const VERDICTS = [...FRAUD_TYPES].sort();
const SHADOWS = RULES.map(shadowSeries).sort();
/**
 * Most points one query may return per series. Grafana asks for about one point per pixel of a panel's
 * width (maxDataPoints), but the plugin ignores that and answers every bucket of the range, every 5 s
 * refresh: the buckets and time ranges must keep to a panel's width by themselves.
 */
const MAX_POINTS_PER_SERIES = 1_500;

type Labels = Record<string, string>;
const labelsOf = (flat: string[]): Labels => Object.fromEntries(pairs(flat));

/**
 * The partitions the structure tests model the worker's series of: several, as on a cluster (12 by
 * default) or with DECISION_STREAM_PARTITIONS set, where each partition has series of its own.
 */
const PARTITIONS = [0, 1, 2];

/** The label sets of every series the worker writes for an app, in every partition. */
function workerSeries(app: string): Labels[] {
  const resolutions: Resolution[] = ['1s', '1m'];
  return PARTITIONS.flatMap((partition) => [
    ...SERIES.flatMap((series) => resolutions.map((resolution) => labelsOf(seriesLabels(app, series, resolution, partition)))),
    labelsOf(workerLagLabels(app, partition)),
  ]);
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

const known = workerSeries(DASHBOARD_APP);
/** The worker's series a target selects. */
const selectedBy = (target: PluginTarget) => known.filter((labels) => matches(labels, parseFilter(target.filter!)));

/**
 * The lines a target must draw: one per value of its legend label (a verdict, or the lag) among the
 * series it selects, whatever the number of partitions; never one per partition.
 */
const linesOf = (target: PluginTarget) => [...new Set(selectedBy(target).map((labels) => labels[target.legend!]!))];

const allTargets = () => dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel, target })));

/** The filter as the plugin splits it (shell-style; the structure test keeps quotes out, so spaces), for another app. */
const filterFor = (target: PluginTarget, app: string) =>
  target.filter!.trim().split(/\s+/).map((term) => (term === `app=${DASHBOARD_APP}` ? `app=${app}` : term));

describe('the Fraud Stats dashboard', () => {
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
      expect(target.command, `${where}: selects series by labels`).toBe(LABEL_COMMAND);
      expect(target.keyName, `${where}: no key name`).toBeUndefined();
      // A non-empty query is run as a raw CLI command instead of `command`.
      expect(target.query, where).toBe('');
      expect(target.type, where).toBe('timeSeries');
      expect(target.streaming ?? false, where).toBe(false);
      // Always aggregate: without one, 2.2.x sends the bucket as a stray argument.
      expect(AGGREGATIONS, where).toContain(target.aggregation);
      expect(Number.isInteger(target.bucket) && (target.bucket as number) > 0, `${where}: bucket is a number of ms`).toBe(true);
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
      const selected = selectedBy(target);
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

  it("adds every partition's series up into one line per legend value (GROUPBY the legend label, REDUCE sum)", () => {
    for (const { panel, target } of allTargets()) {
      const where = `${panel.title} / ${target.refId}: ${target.filter}`;
      // A grouped reply carries no label but the group's (and __reducer__, __source__): any other
      // legend label would name every line '', and any other value label its field.
      expect(target.tsGroupByLabel, `${where}: grouped by its legend label`).toBe(target.legend);
      expect(['', target.legend], `${where}: value label`).toContain(target.value ?? '');
      // Counts add up over partitions, and so do the lags: decisions waiting in all the streams.
      expect(target.tsReducer, where).toBe('sum');
      for (const line of linesOf(target)) {
        // Each line adds up the same series of every partition, and nothing else.
        const series = selectedBy(target).filter((labels) => labels[target.tsGroupByLabel!] === line);
        const withoutPartition = new Set(series.map(({ partition, ...rest }) => JSON.stringify(rest)));
        expect(withoutPartition.size, `${where}: ${line} is one series`).toBe(1);
        expect(series.map((labels) => Number(labels.partition)).sort(), `${where}: ${line} in every partition`).toEqual(PARTITIONS);
      }
    }
  });

  it('covers every verdict per second and per minute, the total, totals, fraud share, shadow hits and worker lag', () => {
    const selections = allTargets().map(({ panel, target }) => ({ panel, labels: selectedBy(target), lines: linesOf(target) }));
    const has = (test: (labels: Labels[], lines: string[]) => boolean, type?: string) =>
      selections.some(({ panel, labels, lines }) => (type === undefined || panel.type === type) && test(labels, lines));
    const types = (labels: Labels[]) => [...new Set(labels.map((l) => l.fraud_type))].sort().join();
    const perSecond = (labels: Labels[]) => labels.every((l) => l.metric === 'clicks' && l.resolution === '1s');
    const perMinute = (labels: Labels[]) => labels.every((l) => l.metric === 'clicks' && l.resolution === '1m');
    expect(has((l) => perSecond(l) && types(l) === VERDICTS.join(), 'timeseries')).toBe(true);
    expect(has((l) => perSecond(l) && types(l) === 'total', 'timeseries')).toBe(true);
    expect(has((l) => perSecond(l) && types(l) === [...VERDICTS, 'total'].sort().join(), 'stat')).toBe(true);
    expect(has((l) => perMinute(l) && types(l) === VERDICTS.join(), 'timeseries')).toBe(true);
    expect(has((l) => perSecond(l) && types(l) === SHADOWS.join(), 'timeseries')).toBe(true);
    expect(has((l, lines) => l.every((x) => x.metric === 'worker_lag') && lines.length === 1, 'timeseries')).toBe(true);
  });

  it('selects verdicts and shadow hits by their kind, never by a list of rules, so that a new rule needs no change', () => {
    const ruleSeries = new Set<string>([...RULES, ...SHADOWS]);
    for (const { panel, target } of allTargets()) {
      const listed = parseFilter(target.filter!).flatMap((term) => (term.label === 'fraud_type' ? term.values : []));
      expect(listed.filter((value) => ruleSeries.has(value)), `${panel.title} / ${target.refId}: ${target.filter}`).toEqual([]);
    }
  });

  it(`asks for at most ${MAX_POINTS_PER_SERIES} points per series, whatever time range a viewer picks`, () => {
    const defaults = parseConfig({});
    if (!defaults.ok) throw new Error(defaults.problems.join('\n'));
    const { retentionMs, minuteRetentionMs } = defaults.config.stats;
    for (const { panel, target } of allTargets()) {
      // Nothing older than the worker keeps is answered, whatever the range.
      const kept = selectedBy(target)[0]!.resolution === '1m' ? minuteRetentionMs : retentionMs;
      // A panel's own time range replaces the dashboard's; without one, a viewer may pick any range.
      const span = panel.timeFrom ? Math.min(grafana.rangeUtil.intervalToMs(panel.timeFrom), kept) : kept;
      const points = Math.floor(span / (target.bucket as number)) + 1;
      expect.soft(points, `${panel.title} / ${target.refId}: ${span} ms in buckets of ${target.bucket} ms`).toBeLessThanOrEqual(MAX_POINTS_PER_SERIES);
    }
  });

  it('says on each panel with a time range of its own which range it shows, in its header and description', () => {
    for (const panel of dashboard.panels.filter((p) => p.timeFrom !== undefined)) {
      expect(panel.hideTimeOverride ?? false, panel.title).toBe(false);
      const { display } = grafana.rangeUtil.describeTextRange(panel.timeFrom!);
      expect(panel.description?.toLowerCase(), panel.title).toContain(display.toLowerCase());
    }
  });

  it('is queried with the commands the plugin sends (the Redis Stack tests below send these)', () => {
    const first = dashboard.panels[0]!.targets![0]!;
    expect(tsMRangeCommand(first, 1_000, 2_000, filterFor(first, 'other-app'))).toEqual([
      'ts.mrange', '1000', 2_000, 'AGGREGATION', 'sum', 1000, 'WITHLABELS', 'FILTER',
      'app=other-app', 'metric=clicks', 'resolution=1s', 'kind=verdict',
      'GROUPBY', 'fraud_type', 'REDUCE', 'sum',
    ]);
  });

  it('computes the fraud share as (total − clean) ÷ total with transformations Grafana has, and says how', () => {
    const share = dashboard.panels.find((panel) => panel.title === FRAUD_SHARE_PANEL);
    expect(share?.type).toBe('stat');
    expect(share!.description).toContain('fraud = total − clean');
    expect(share!.transformations?.length).toBeGreaterThan(0);
    for (const { id } of share!.transformations!) expect(grafana.standardTransformersRegistry.getIfExists(id), id).toBeDefined();
    // Clean and all clicks: every fraud verdict is in the difference, whichever rule gave it.
    const returned = share!.targets!.flatMap(linesOf);
    expect(returned.sort()).toEqual(['clean', 'total']);
    for (const panel of dashboard.panels.filter((p) => p !== share)) expect(panel.transformations ?? [], panel.title).toEqual([]);
  });
});

/** The value fields of a panel's frames (every field but time). */
const valueFields = (frames: DataFrame[]) =>
  frames.flatMap((frame) => frame.fields.filter((field) => field.type !== grafana.FieldType.time).map((field) => ({ field, frame })));

/** The name Grafana shows for a field: in the legend, the stat panel, and the one `byName` overrides match. */
const displayName = (field: Field, frame: DataFrame, frames: DataFrame[]) => grafana.getFieldDisplayName(field, frame, frames);

/** One of Grafana's reducers (the legend's and the stat panel's calculations) over a field. */
const reduce = (field: Field, reducer: string): number => grafana.reduceField({ field, reducers: [reducer] })[reducer] as number;

/** The key of a partition's series with these labels, as the worker names it (keyspace.ts). */
const keyOf = (partition: Partition, labels: Labels) =>
  labels.metric === 'worker_lag' ? partition.workerLag : partition.timeSeries(labels.fraud_type as SeriesName, labels.resolution as Resolution);

/** A reply in one order: each master of a cluster lists the series, and the ones a group reduced (`__source__`), in an order of its own. */
const comparable = (reply: TsMRangeReply) =>
  reply
    .map(([key, labels, samples]) => [key, labels.map(([label, value]) => [label, label === '__source__' ? value.split(',').sort().join() : value]), samples] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/**
 * The Redis Stack servers the queries run against, each with several partitions, so that every
 * verdict has one series per partition: the single server with DECISION_STREAM_PARTITIONS=4, and the
 * cluster with the default (`auto`, 12 partitions over its masters).
 */
/** The admin token of the test APIs, which set the rules and blacklist through the admin API. */
const ADMIN_TOKEN = 'dashboard-admin-token-0123456789';
/** Blacklisted for each phase of clicks below (a phase's clicks must not count towards another's windows). */
const BLACKLISTED_IPS = ['203.0.113.66', '203.0.113.67'];
const BLACKLISTED_RANGE = '198.51.100.0/24';

const stackServers: Array<{ name: string; url: string | undefined; env: Record<string, string>; partitions: number; missing: string }> = [
  { name: 'Redis Stack, DECISION_STREAM_PARTITIONS=4', url: redisStackUrl, env: { DECISION_STREAM_PARTITIONS: '4' }, partitions: 4, missing: redisStackMissing },
  {
    name: 'Redis Stack Cluster, DECISION_STREAM_PARTITIONS=auto',
    url: redisStackClusterUrl,
    env: {},
    partitions: 12,
    missing: 'no Redis Stack cluster: no Redis Stack in .cache/redis-stack, and REDIS_STACK_CLUSTER_NODES is not set',
  },
];

for (const server of stackServers) {
  describe.skipIf(!server.url)(
    `the Fraud Stats dashboard's queries against the worker's series (${server.name})${server.url ? '' : ` — skipped: ${server.missing}`}`,
    () => {
      const app = `dash-${randomUUID().slice(0, 8)}`;
      let api: TestApi;
      let worker: TestWorker | undefined;
      /**
       * Send the panels' queries: to the server, or to every master of the cluster. The plugin's
       * cluster client sends TS.MRANGE to the master of the slot of its first argument (radix v3's
       * FlatCmd takes that for the key), which is the range start: so any master may be asked, and
       * each must answer for the whole cluster.
       *
       * The plugin's client is radix v3 (go.mod: mediocregopher/radix/v3, whose protocol package is
       * resp2; RESP3 came with radix v4): it never sends HELLO 3. ioredis 6 defaults to RESP3, where
       * TS.MRANGE answers a map (key -> [labels map, aggregators, samples]) that its "legacy" mapping
       * flattens into a differently nested array; protocol 2 gets the reply the plugin parses.
       */
      let pluginClients: Redis[] = [];
      /** What the worker should count in each series: the API's answers by verdict, their shadow hits, and `total`. */
      const decided: Record<string, number> = zeroCounts();
      let from = 0;
      let to = 0;

      /** A target's TS.MRANGE over [start, end] as the plugin sends it; every master's reply must be the same. */
      async function query(target: PluginTarget, start: number, end: number): Promise<TsMRangeReply> {
        const [command, ...args] = tsMRangeCommand(target, start, end, filterFor(target, app));
        const [reply, ...others] = (await Promise.all(pluginClients.map((client) => client.call(command, ...args)))) as TsMRangeReply[];
        for (const other of others) expect(comparable(other), `${target.filter}: every master answers the same`).toEqual(comparable(reply!));
        return reply!;
      }

      /** What a panel draws from over [start, end]: its queries' frames, in the order of its targets, through its transformations. */
      async function panelFrames(panel: Panel, start: number, end: number): Promise<DataFrame[]> {
        const frames = await Promise.all(panel.targets!.map(async (target) => tsMRangeFrames(target, await query(target, start, end))));
        return transform(panel.transformations ?? [], frames.flat());
      }

      beforeAll(async () => {
        api = await startTestApi({ METRICS_APP_NAME: app, ADMIN_TOKEN, ...server.env }, server.url);
        expect(api.keyspace.partitions).toHaveLength(server.partitions);
        worker = await startTestWorker(api.config, server.url!);
        pluginClients =
          api.admin instanceof Cluster
            ? api.admin.nodes('master').map((node) => new Redis({ host: node.options.host, port: node.options.port, protocol: 2 }))
            : [new Redis(server.url!, { protocol: 2 })];

        const adminApi = async (method: string, path: string, body: unknown) => {
          const res = await fetch(`${api.base}/admin/${path}`, {
            method,
            headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
            body: JSON.stringify(body),
          });
          expect(res.status, `${method} /admin/${path}: ${await res.clone().text()}`).toBeLessThan(300);
          return (await res.json()) as { version?: number };
        };
        for (const ip of BLACKLISTED_IPS) await adminApi('POST', 'blacklist', { ip, reason: 'dashboard test' });
        await adminApi('POST', 'blacklist', { ip: BLACKLISTED_RANGE, reason: 'dashboard test' });

        const answers: ClickAnswer[] = [];
        let probes = 0;
        /** Puts a rule set, then clicks (each a device and address of its own) until this API judges by it. */
        const useRules = async (rules: unknown) => {
          const { version } = await adminApi('PUT', 'rules', rules);
          for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(50)) {
            const answer = await api.click(`probe-${probes}`, 'p', `10.200.0.${probes++}`);
            answers.push(answer);
            if (answer.rules_version === version) return;
          }
          throw new Error(`rule set v${version} never came into force`);
        };
        /** `count` devices, each in a partition of its own: so each verdict below is counted in several partitions' series. */
        const spread = (prefix: string, count: number) => {
          const byPartition = new Map<number, string>();
          for (let i = 0; byPartition.size < count; i++) {
            const device = `${prefix}-${i}`;
            const { index } = api.keyspace.partitionOf(device);
            if (!byPartition.has(index)) byPartition.set(index, device);
          }
          return [...byPartition.values()];
        };
        /** Clicks one after another, where their order decides the verdicts; each group runs beside the others. */
        const inTurn = async (clicks: Array<[device: string, ip: string]>) => {
          for (const [device, ip] of clicks) answers.push(await api.click(device, `${device}-t${Math.random()}`, ip));
        };
        /**
         * One hit of every rule, each in 3 partitions, on addresses and devices of phase `p` alone:
         * - 3 devices × 4 clicks, each from an address of its own: 2 clean, then 2 click_spam each;
         * - 3 clicks from a blacklisted address, and 3 from addresses in a blacklisted range;
         * - a flood: 4 devices click twice each from one address: its clicks 6 to 8 are over 5
         *   (ip_flood), by 4 devices (not a farm) of 2 clicks each (not click spam);
         * - 3 farms: 5 devices click once each from one address: the fifth is over 4 devices
         *   (device_farm), with 5 clicks (not a flood).
         */
        const everyRule = (p: number) => {
          const flood = spread(`flood${p}`, 4);
          const farmLast = spread(`farm${p}`, 3);
          return Promise.all([
            ...spread(`dev${p}`, 3).map((device, i) => inTurn(Array.from({ length: 4 }, () => [device, `10.${p}.0.${i}`] as [string, string]))),
            ...spread(`bl${p}`, 3).map((device) => inTurn([[device, BLACKLISTED_IPS[p - 1]!]])),
            ...spread(`range${p}`, 3).map((device, i) => inTurn([[device, `198.51.100.${p * 10 + i}`]])),
            inTurn([...flood, ...flood].map((device) => [device, `100.64.${p}.1`])),
            ...farmLast.map((last, f) => inTurn([...[0, 1, 2, 3].map((i) => `farm${p}-${f}-${i}`), last].map((device) => [device, `100.65.${p}.${f}`]))),
          ]);
        };

        // Phase 1: every rule enforced, so every verdict is given. Phase 2: every rule in shadow
        // mode, so every click is clean and every rule's hits are shadow hits.
        const thresholds = { click_spam: { threshold: 2, window_sec: 10 }, ip_flood: { threshold: 5, window_sec: 60 }, device_farm: { threshold: 4, window_sec: 60 } };
        await useRules({
          click_spam: { mode: 'enforce', ...thresholds.click_spam },
          ip_flood: { mode: 'enforce', ...thresholds.ip_flood },
          device_farm: { mode: 'enforce', ...thresholds.device_farm },
        });
        await everyRule(1);
        await useRules({
          ip_blacklist: { mode: 'shadow' },
          ip_range: { mode: 'shadow' },
          click_spam: { mode: 'shadow', ...thresholds.click_spam },
          ip_flood: { mode: 'shadow', ...thresholds.ip_flood },
          device_farm: { mode: 'shadow', ...thresholds.device_farm },
        });
        await everyRule(2);

        for (const answer of answers) {
          decided[answer.fraud_type] = (decided[answer.fraud_type] ?? 0) + 1;
          decided.total = (decided.total ?? 0) + 1;
          for (const hit of answer.shadow ?? []) decided[shadowSeries(hit.rule as RuleName)]! += 1;
        }
        // Each phase: 41 clicks, 23 of them clean in phase 1; and the probes, all clean with no hits.
        expect(decided).toEqual({
          ...zeroCounts(),
          clean: 23 + 41 + probes,
          ip_blacklist: 3,
          ip_range: 3,
          click_spam: 6,
          ip_flood: 3,
          device_farm: 3,
          total: 2 * 41 + probes,
          shadow_ip_blacklist: 3,
          shadow_ip_range: 3,
          shadow_click_spam: 6,
          shadow_ip_flood: 3,
          shadow_device_farm: 3,
        });
        await worker.drained();

        // A window around the burst, in whole minutes, as a dashboard's time range would be.
        const minute = (ms: number) => Math.floor(ms / 60_000) * 60_000;
        const times = answers.map((answer) => answer.ts);
        const lastBucket = minute(Math.max(...times, Date.now()));
        // A per-minute compaction bucket is only written once a later sample arrives, and the plugin
        // does not ask for the open bucket (no LATEST). So close the burst's minutes: add a 0 to each
        // per-second series of every partition in the next minute, as the worker would (ON_DUPLICATE
        // SUM). Sums are unchanged.
        const closing = lastBucket + 60_000;
        for (const partition of api.keyspace.partitions) {
          for (const series of SERIES) await api.admin.call('TS.ADD', partition.timeSeries(series, '1s'), closing, 0, 'ON_DUPLICATE', 'SUM');
        }
        from = minute(Math.min(...times)) - 60_000;
        to = closing + 59_999;
      });

      afterAll(async () => {
        for (const client of pluginClients) client.disconnect();
        await worker?.stop();
        if (api) {
          // One key at a time: on a cluster they are in many slots.
          await Promise.all((await api.writtenKeys()).map((key) => api.admin.del(key)));
          await api.close();
        }
      });

      it.each(dashboard.panels.map((panel) => [panel.title!, panel] as const))(
        '%s: each line adds up its series of every partition, and nothing else',
        async (_, panel) => {
          for (const target of panel.targets!) {
            const reply = await query(target, from, to);
            // What each line of the reply was reduced from (RedisTimeSeries' __source__), by its name.
            const sources = Object.fromEntries(
              reply.map(([, labelPairs]) => {
                const labels = Object.fromEntries(labelPairs);
                return [labels[target.legend!] ?? '', labels.__source__?.split(',').sort()];
              }),
            );
            // The model's partition 0 stands for each: every partition has the same series.
            const seriesOf = (line: string) => selectedBy(target).filter((labels) => labels.partition === '0' && labels[target.legend!] === line);
            const expected = linesOf(target).map((line) => [line, seriesOf(line).flatMap((labels) => api.keyspace.partitions.map((p) => keyOf(p, labels))).sort()]);
            expect(sources, `${target.refId}: ${target.filter}`).toEqual(Object.fromEntries(expected));
          }
        },
      );

      it.each(dashboard.panels.map((panel) => [panel.title!, panel] as const))(
        '%s: shows one series per line, by its name, and each colour override matches one of them',
        async (_, panel) => {
          const frames = await panelFrames(panel, from, to);
          const fields = valueFields(frames);
          const names = fields.map(({ field, frame }) => displayName(field, frame, frames));
          // A transformed panel shows the one value its transformations compute, named like the panel;
          // the others one series per line (a verdict, or the lag), named by its legend label.
          const expected = panel.transformations?.length ? [panel.title!] : panel.targets!.flatMap(linesOf);
          expect.soft(names.sort()).toEqual(expected.sort());

          const overrides = panel.fieldConfig?.overrides ?? [];
          const colours = overrides.map(({ matcher, properties }) => {
            expect(matcher.id, 'overrides match by name').toBe(grafana.FieldMatcherID.byName);
            const match = grafana.fieldMatchers.get(matcher.id).get(matcher.options);
            const matched = fields.filter(({ field, frame }) => match(field, frame, frames));
            expect(matched, `override ${JSON.stringify(matcher.options)} matches one series`).toHaveLength(1);
            return JSON.stringify(properties.find((property) => property.id === 'color')?.value);
          });
          // The series an override names each keep a colour of their own; a series none names (a rule
          // added later) is drawn in Grafana's default colours, with no change to the dashboard.
          expect(new Set(colours).size, 'one colour per override').toBe(colours.length);
        },
      );

      it.each(
        dashboard.panels
          .filter((panel) => !panel.transformations?.length && panel.targets!.every((target) => selectedBy(target).every((l) => l.metric === 'clicks')))
          .map((panel) => [panel.title!, panel] as const),
      )('%s: shows every series of the kinds it selects, each adding up to its decisions', async (_, panel) => {
        const frames = await panelFrames(panel, from, to);
        // What the panel shows for a series over the range: the stat panel's calculation, or the legend's sum.
        const calculation = panel.options?.reduceOptions?.calcs[0] ?? 'sum';
        const shown = valueFields(frames).map(({ field, frame }) => [displayName(field, frame, frames), reduce(field, calculation)]);
        // Every verdict the rule set can give, or every shadow series, whatever the panel's filter lists.
        const kinds = new Set(panel.targets!.flatMap((target) => selectedBy(target).map((labels) => labels.kind)));
        const expected = [...kinds].flatMap((kind) => (kind === 'verdict' ? VERDICTS : kind === 'shadow' ? SHADOWS : ['total']));
        expect(shown.sort()).toEqual(expected.map((series) => [series, decided[series]]).sort());
      });

      it('Fraud share: the panel shows (total − clean) ÷ total of the clicks, every fraud type counted, and "no clicks" over a range without any', async () => {
        const panel = dashboard.panels.find((p) => p.title === FRAUD_SHARE_PANEL)!;
        const calculation = panel.options!.reduceOptions!.calcs[0]!;
        /** What the stat shows: its calculation over the transformed field, formatted with the panel's unit, decimals and mappings. */
        const shown = async (start: number, end: number) => {
          const fields = valueFields(await panelFrames(panel, start, end));
          expect(fields).toHaveLength(1);
          const share = fields[0];
          const value = reduce(share!.field, calculation);
          const display = grafana.getDisplayProcessor({ field: { ...share!.field, config: panel.fieldConfig!.defaults }, theme: grafana.createTheme() });
          return { value, text: grafana.formattedValueToString(display(value)) };
        };
        const clicks = await shown(from, to);
        // Every fraud verdict counts, whichever rule gave it (each gave some, above).
        const fraud = RULES.reduce((sum, rule) => sum + decided[rule]!, 0);
        expect(clicks.value).toBeCloseTo(fraud / decided.total!, 10);
        expect(clicks.text).toBe(`${((100 * fraud) / decided.total!).toFixed(1)}%`);
        expect((await shown(from - 3_600_000, from - 1)).text).toBe('no clicks');
      });

      it('Worker lag: one series, which reads 0 once the worker has drained every stream', async () => {
        const panel = dashboard.panels.find((p) => p.targets!.some((target) => selectedBy(target).some((labels) => labels.metric === 'worker_lag')))!;
        // One sample a second per partition: the ones after the drain may still be on their way.
        let latest: number | undefined;
        for (const deadline = Date.now() + 5000; Date.now() < deadline; await sleep(250)) {
          const fields = valueFields(await panelFrames(panel, from, Date.now() + 1000));
          expect(fields).toHaveLength(1);
          latest = fields[0]!.field.values.at(-1) as number | undefined;
          if (latest === 0) break;
        }
        expect(latest).toBe(0);
      });
    },
  );
}
