/**
 * The service on a Redis Cluster of 3 masters (one replica each), next to one Redis: clicks/s, how
 * evenly the masters share the clicks' steps and the memory, what else runs per click, the cost of
 * REDIS_WAIT_REPLICAS=1, and the per-unit rates of the capacity model.
 */
import { readdirSync, readFileSync } from 'node:fs';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createRedisClient } from '../src/redis/connection.js';
import { addressHex } from '../src/domain/ip.js';
import { clickSource } from './clicks.js';
import { autocannonLoad, type Load } from './load.js';
import { CONNECTIONS, decidedRate, medianOfRatios, rates, ROUND_SECONDS, takingTurns } from './main-table.js';
import { startPrivateCluster, startServer, type RedisProgram, type Server } from './processes.js';
import { commandsBetween, commandStats, pipelinedRate, usedMemory, type CommandCount } from './redis-figures.js';
import { openStore, type OpenStore } from './store.js';
import { badOf, fmt, mb, median, medianLoad, ms, ratio, sum, type Row } from './table.js';

const MASTERS = 3;
const ROUNDS = 3;
/** A master's share of the device steps and of the memory may be this far from the mean. */
const SPREAD = 0.15;
/** The capacity model's example: API cores and masters. */
const MODEL = { processes: 32, masters: 6 };

export interface ClusterContext {
  program: RedisProgram;
  /** The main table's Redis, for the single-Redis figure taken in turns with the cluster's. */
  singleRedisUrl: string;
  apiEnv: Record<string, string>;
  log(line: string): void;
}

export interface ClusterResult {
  rows: Row[];
  header: string[];
  cells: string[][];
  model: string[];
}

interface Master {
  address: string;
  client: Redis;
  slots: Array<[number, number]>;
}

export async function clusterSection(ctx: ClusterContext): Promise<ClusterResult> {
  const { apiEnv, log } = ctx;
  log(`cluster: starting ${MASTERS} masters with a replica each...`);
  const cluster = await startPrivateCluster(ctx.program, MASTERS);
  const masters = await clusterMasters(cluster.nodes[0]!);
  const servers: Server[] = [];
  try {
    const nodes = cluster.nodes.join(',');
    const start = async (env: Record<string, string>) => {
      const server = await startServer('dist/main.js', { ...apiEnv, ROLE: 'api', ...env });
      servers.push(server);
      return server;
    };
    const apis = {
      single: await start({ REDIS_URL: ctx.singleRedisUrl }),
      cluster: await start({ REDIS_CLUSTER_NODES: nodes }),
      'cluster, REDIS_WAIT_REPLICAS=1': await start({ REDIS_CLUSTER_NODES: nodes, REDIS_WAIT_REPLICAS: '1' }),
    };
    type Api = keyof typeof apis;
    const blacklistKey = apiEnv.IP_CUCKOO_FILTER_NAME!;
    const blacklistNode = masterOf(masters, blacklistKey);
    const next = clickSource(20_000, { prefix: 'cdev' });
    const body = () => JSON.stringify(next());
    for (const api of Object.values(apis)) await autocannonLoad({ url: api.url, path: '/', body, seconds: 1, connections: CONNECTIONS });

    // Per master, what ran during the rounds of the cluster API alone (the others' rounds excluded).
    const ran = masters.map(() => new Map<string, CommandCount>());
    const clicksDecided: number[] = [];
    const memoryBefore = await Promise.all(masters.map((master) => usedMemory(master.client)));
    const loads = await takingTurns(Object.keys(apis) as Api[], ROUNDS, async (name) => {
      const measure = () => autocannonLoad({ url: apis[name].url, path: '/', body, seconds: ROUND_SECONDS, connections: CONNECTIONS });
      if (name !== 'cluster') return measure();
      const before = await Promise.all(masters.map((master) => commandStats(master.client)));
      const load = await measure();
      clicksDecided.push(load.count);
      const after = await Promise.all(masters.map((master) => commandStats(master.client)));
      masters.forEach((_, i) => addCounts(ran[i]!, commandsBetween(before[i]!, after[i]!)));
      return load;
    }, log);
    const memoryGrowth = (await Promise.all(masters.map((master) => usedMemory(master.client)))).map((memory, i) => memory - memoryBefore[i]!);
    const memoryAfter = await Promise.all(masters.map((master) => usedMemory(master.client)));

    // Per-unit ceilings, no HTTP: one master's decisions (not the blacklist's node), and the lookups on that node.
    const direct = await openStore({ ...apiEnv, REDIS_CLUSTER_NODES: nodes });
    const { keyspace, blacklist } = direct;
    let perMaster: number;
    let lookups: number;
    try {
      perMaster = median(await repeat(ROUNDS, () => masterScriptRate(direct, masters.find((master) => master !== blacklistNode)!)));
      lookups = median(await repeat(ROUNDS, () => lookupRate(direct, blacklistNode)));
    } finally {
      direct.close();
    }
    log(`  one master: ${fmt(perMaster)} clicks/s; blacklist lookups on its node: ${fmt(lookups)}/s`);

    // --- what it shows ---
    // INFO commandstats counts what scripts run too, by name: a lookup runs the blacklist's
    // CF.EXISTS (or SISMEMBER) once per click, a decision none, so the lookups are told apart from
    // the device's steps; what no script runs was sent by the API itself.
    const lookupName = blacklist.backend === 'cuckoo' ? 'cf.exists' : 'sismember';
    const inScripts = scriptCommands();
    const lookupsRun = ran.map((counts) => counts.get(lookupName)?.calls ?? 0);
    const decisions = ran.map((counts, i) => scriptsIn(counts) - lookupsRun[i]!);
    const meanDecisions = sum(decisions) / masters.length;
    const meanMemory = sum(memoryGrowth) / masters.length;
    const clicks = sum(clicksDecided);
    const cells = masters.map((master, i) => {
      const counts = [...ran[i]!];
      const scripted = sum(counts.filter(([name]) => inScripts.has(name)).map(([, count]) => count.calls));
      const others = counts.filter(([name]) => !isScript(name) && !inScripts.has(name));
      const otherCalls = sum(others.map(([, count]) => count.calls));
      return [
        `${master.address}${master === blacklistNode ? ' (blacklist)' : ''}`,
        String(keyspace.partitions.filter((partition) => owns(master, partition.stream)).length),
        `${fmt(decisions[i]!)} (${ratio(decisions[i]!, meanDecisions)} × mean)`,
        fmt((lookupsRun[i]! * 1000) / clicks),
        (scripted / scriptsIn(ran[i]!)).toFixed(1),
        `${mb(memoryGrowth[i]!)} (${ratio(memoryGrowth[i]!, meanMemory)} × mean), ${mb(memoryAfter[i]!)} in all`,
        `${((otherCalls * 1000) / clicks).toFixed(1)}${others.length ? ` (${others.sort((a, b) => b[1].calls - a[1].calls).slice(0, 3).map(([name]) => name).join(', ')})` : ''}`,
      ];
    });
    const header = [
      'master',
      'partitions',
      "device steps (decideClick)",
      'lookups per 1,000 clicks',
      'commands run inside scripts, per script',
      'memory added',
      'other commands per 1,000 clicks',
    ];

    const single = median(rates(loads.single));
    const onCluster = median(rates(loads.cluster));
    const waiting = loads['cluster, REDIS_WAIT_REPLICAS=1'];
    const evenCalls = decisions.every((calls) => Math.abs(calls / meanDecisions - 1) <= SPREAD);
    const evenMemory = memoryGrowth.every((memory) => Math.abs(memory / meanMemory - 1) <= SPREAD);
    const describe = (list: Load[]) => `${fmt(median(rates(list)))} clicks/s, p50 ${ms(medianLoad(list).p50)}, p99 ${ms(medianLoad(list).p99)}`;
    const rows: Row[] = [
      { figure: 'POST / on one Redis (in turns with the cluster)', value: describe(loads.single), bad: badOf(loads.single) },
      { figure: `POST / on ${MASTERS} masters`, value: describe(loads.cluster), bad: badOf(loads.cluster), ratio: `${medianOfRatios(loads.cluster, loads.single).toFixed(2)} × one Redis` },
      { figure: `POST / on ${MASTERS} masters, REDIS_WAIT_REPLICAS=1`, value: describe(waiting), bad: badOf(waiting), ratio: `${medianOfRatios(waiting, loads.cluster).toFixed(2)} × without` },
      { figure: "each master's share of the device steps", value: decisions.map((calls) => ratio(calls, meanDecisions)).join(', '), target: `within ±${SPREAD * 100}% of the mean`, met: evenCalls },
      { figure: "each master's share of the memory added", value: memoryGrowth.map((memory) => ratio(memory, meanMemory)).join(', '), target: `within ±${SPREAD * 100}% of the mean`, met: evenMemory },
    ];
    // The blacklist's node also runs its share of the device steps, so its own bound is lower than its lookups alone.
    const blacklistBound = (masters: number) => 1 / (1 / lookups + 1 / (masters * perMaster));
    const terms = [MODEL.processes * onCluster, MODEL.masters * perMaster, lookups];
    const model = [
      `capacity model: clicks/s ≈ min(API processes × ${fmt(onCluster)}, masters × ${fmt(perMaster)}, ${fmt(lookups)} lookups/s on the blacklist's node)`,
      `  per API process: ${fmt(onCluster)} clicks/s (POST / on the cluster above: one process sharing 2 cores with the load generator and ${MASTERS * 2} Redis servers; ${fmt(single)} on one Redis)`,
      `  per master: ${fmt(perMaster)} clicks/s (the check of devices in one master's partitions, ClickStore.decideMany, 4 × 500 in flight, no HTTP)`,
      `  lookups: ${fmt(lookups)}/s (lookupAddresses of one click, as a single click sends it, pipelined into the blacklist's node, no HTTP); a batch makes one lookup for all its clicks`,
      `  ${MODEL.processes} API cores and ${MODEL.masters} masters: min(${terms.map(fmt).join(', ')}) ≈ ${fmt(Math.min(...terms))} single clicks/s`,
      `  the blacklist's node runs 1/${MODEL.masters} of the device steps as well: 1 / (1/${fmt(lookups)} + 1/${fmt(MODEL.masters * perMaster)}) ≈ ${fmt(blacklistBound(MODEL.masters))} clicks/s is its own bound`,
    ];
    return { rows, header, cells, model };
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
    for (const master of masters) master.client.disconnect();
    await cluster.dispose();
  }
}

/** The masters and their slot ranges, from CLUSTER NODES. */
async function clusterMasters(seed: string): Promise<Master[]> {
  const [host, port] = seed.split(':');
  const probe = new Redis(Number(port), host!);
  try {
    const lines = ((await probe.call('CLUSTER', 'NODES')) as string).trim().split('\n');
    return lines
      .map((line) => line.split(' '))
      .filter((fields) => fields[2]!.split(',').includes('master'))
      .map((fields) => {
        const address = fields[1]!.split('@')[0]!;
        const [masterHost, masterPort] = [address.slice(0, address.lastIndexOf(':')), address.slice(address.lastIndexOf(':') + 1)];
        const slots = fields.slice(8).map((range) => range.split('-').map(Number)).map(([from, to]) => [from!, to ?? from!] as [number, number]);
        return { address, client: new Redis(Number(masterPort), masterHost), slots };
      })
      .sort((a, b) => a.slots[0]![0] - b.slots[0]![0]);
  } finally {
    probe.disconnect();
  }
}

function owns(master: Master, key: string): boolean {
  const slot = calculateSlot(key);
  return master.slots.some(([from, to]) => slot >= from && slot <= to);
}

function masterOf(masters: Master[], key: string): Master {
  return masters.find((master) => owns(master, key))!;
}

/** The commands the service's scripts run (every file of src/redis/commands), lower-case as INFO names them. */
function scriptCommands(): Set<string> {
  const commands = new URL('../src/redis/commands/', import.meta.url);
  const lua = ['', 'includes/'].flatMap((dir) => readdirSync(new URL(dir, commands)).filter((file) => file.endsWith('.lua')).map((file) => readFileSync(new URL(dir + file, commands), 'utf8')));
  return new Set(lua.flatMap((text) => [...text.matchAll(/redis\.p?call\(\s*['"]([\w.|]+)['"]/g)].map(([, name]) => name!.toLowerCase())));
}

function isScript(command: string): boolean {
  return command === 'evalsha' || command === 'eval';
}

function scriptsIn(counts: Map<string, CommandCount>): number {
  return sum([...counts].filter(([name]) => isScript(name)).map(([, count]) => count.calls));
}

function addCounts(total: Map<string, CommandCount>, more: Map<string, CommandCount>): void {
  for (const [name, { calls, usec }] of more) {
    const sofar = total.get(name) ?? { calls: 0, usec: 0 };
    total.set(name, { calls: sofar.calls + calls, usec: sofar.usec + usec });
  }
}

async function repeat(times: number, measure: () => Promise<number>): Promise<number[]> {
  const values: number[] = [];
  for (let i = 0; i < times; i++) values.push(await measure());
  return values;
}

/**
 * What one master decides per second: the service's own check (ClickStore.decideMany, batches of
 * 500, 4 in flight) of devices whose partitions that master holds, so that its scripts are the
 * limit (the batches' lookups are one command each, on the blacklist's node, another master).
 */
async function masterScriptRate(direct: OpenStore, master: Master): Promise<number> {
  const next = clickSource(1_000_000, { prefix: 'mdev' });
  const ownClick = () => {
    for (;;) {
      const click = next();
      if (owns(master, direct.keyspace.partitionOf(click.device_id).stream)) return click;
    }
  };
  return (await decidedRate(direct, 2, 4, 500, ownClick)).rate;
}

/** The lookup a single click makes on a cluster, one click a command, pipelined into the blacklist's node. */
async function lookupRate(direct: OpenStore, master: Master): Promise<number> {
  const client = createRedisClient({ url: `redis://${master.address}`, timeoutMs: 10_000, connectionName: 'bench-ceiling', logger: pino({ level: 'silent' }) });
  await client.connect();
  const next = clickSource(1_000_000, { prefix: 'ldev' });
  try {
    return await pipelinedRate(client, { seconds: 2, pipelines: 4, perPipeline: 500 }, (pipeline) => {
      const click = next();
      pipeline.lookupAddresses(...direct.listKeys, direct.blacklist.backend, ...direct.rules.args(), click.ip, addressHex(click.ip), click.device_id);
    });
  } finally {
    client.disconnect();
  }
}
