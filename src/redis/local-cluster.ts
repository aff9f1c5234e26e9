import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, startLocalRedis, type LocalRedisServer } from './local-server.js';

const run = promisify(execFile);

export interface LocalCluster {
  /** `host:port` of every node, masters first, for REDIS_CLUSTER_NODES. */
  nodes: string[];
  servers: LocalRedisServer[];
  /** The node serving `port` now, to kill or pause it. */
  server(port: number): LocalRedisServer;
  /** Brings a killed node back on its port and data, as a restarted machine would. */
  restart(port: number): Promise<void>;
  stop(): Promise<void>;
}

export interface LocalClusterOptions {
  dataDir: string;
  masters?: number;
  replicasPerMaster?: number;
  /** redis-server to run (with `args`, e.g. modules to load); redis-cli is taken from beside it, else PATH. */
  binary?: string;
  args?: string[];
  redisCli?: string;
  /** How long a master may be unreachable before its replica takes over. */
  nodeTimeoutMs?: number;
}

/**
 * A Redis Cluster on loopback from the same `redis-server` as everything else: `cluster-enabled
 * yes` nodes, joined with `redis-cli --cluster create` (slots split evenly over the masters, one
 * replica each by default). For the tests and the benchmark; starts in a few seconds.
 */
export async function startLocalCluster({
  dataDir,
  masters = 3,
  replicasPerMaster = 1,
  binary = 'redis-server',
  args = [],
  redisCli = 'redis-cli',
  nodeTimeoutMs = 1000,
}: LocalClusterOptions): Promise<LocalCluster> {
  const nodeArgs = (dir: string, busPort: number) => [
    '--cluster-enabled', 'yes',
    // Chosen free like the node's port: the default, port + 10000, may be another process's.
    '--cluster-port', String(busPort),
    '--cluster-config-file', join(dir, 'nodes.conf'),
    '--cluster-node-timeout', String(nodeTimeoutMs),
    // A master otherwise waits 5 s before it sends a new replica its data, and a replica that has
    // never synced cannot take over.
    '--repl-diskless-sync-delay', '0',
    ...args,
  ];
  const servers: LocalRedisServer[] = [];
  const busPorts = new Map<number, number>();
  try {
    for (let i = 0; i < masters * (1 + replicasPerMaster); i++) {
      const dir = join(dataDir, `node-${i}`);
      mkdirSync(dir, { recursive: true });
      const port = await freePort();
      let busPort = await freePort();
      while (busPort === port) busPort = await freePort();
      busPorts.set(port, busPort);
      servers.push(await startLocalRedis({ dataDir: dir, port, binary, args: nodeArgs(dir, busPort) }));
    }
    const nodes = servers.map((server) => `127.0.0.1:${server.port}`);
    await run(redisCli, ['--cluster', 'create', ...nodes, '--cluster-replicas', String(replicasPerMaster), '--cluster-yes']);
    await untilClusterOk(servers);
    const byPort = new Map(servers.map((server) => [server.port, server]));
    return {
      nodes,
      servers,
      server(port) {
        return byPort.get(port)!;
      },
      async restart(port) {
        const old = byPort.get(port)!;
        const restarted = await startLocalRedis({ dataDir: old.dataDir, port, binary, args: nodeArgs(old.dataDir, busPorts.get(port)!) });
        byPort.set(port, restarted);
        servers[servers.indexOf(old)] = restarted;
      },
      async stop() {
        await Promise.all([...byPort.values()].map((server) => server.stop()));
      },
    };
  } catch (error) {
    await Promise.all(servers.map((server) => server.kill()));
    throw error;
  }
}

/** Every node agrees the cluster is up (all slots served, every node known), and every replica has synced. */
async function untilClusterOk(servers: LocalRedisServer[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const server of servers) {
    const redis = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
    try {
      await redis.connect();
      for (;;) {
        const info = (await redis.call('CLUSTER', 'INFO')) as string;
        const known = Number(/cluster_known_nodes:(\d+)/.exec(info)?.[1]);
        const replication = await redis.info('replication');
        const synced = replication.includes('role:master') || replication.includes('master_link_status:up');
        if (info.includes('cluster_state:ok') && known === servers.length && synced) break;
        if (Date.now() > deadline) throw new Error(`the local cluster did not come up within ${timeoutMs} ms:\n${info}`);
        await new Promise((done) => setTimeout(done, 100));
      }
    } finally {
      redis.disconnect();
    }
  }
}
