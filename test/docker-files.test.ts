import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig, SETTINGS } from '../src/config.js';

/**
 * Keeps Dockerfile, docker-compose.yml and the Grafana provisioning consistent with each other and
 * with the service's settings. Needs no Docker: the files are only read.
 */

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');
const exists = (path: string) => existsSync(new URL(`../${path}`, import.meta.url));

interface ComposeService {
  image?: string;
  build?: string | { context?: string };
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: Array<string | { target?: number; published?: number | string }>;
  volumes?: Array<string | { type?: string; source?: string; target?: string; read_only?: boolean }>;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
}

const packageJson = JSON.parse(read('package.json')) as { devDependencies: Record<string, string> };
const compose = parse(read('docker-compose.yml')) as { services: Record<string, ComposeService>; volumes?: Record<string, unknown> };
const services = compose.services;
const dockerfile = read('Dockerfile');
const datasources = parse(read('grafana/provisioning/datasources/redis.yaml')) as {
  datasources: Array<{ type: string; uid: string; url: string; jsonData?: { client?: string } }>;
};
const providers = parse(read('grafana/provisioning/dashboards/fraud.yaml')) as {
  providers: Array<{ type?: string; options: { path: string } }>;
};

function environment(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const at = entry.indexOf('=');
        return at === -1 ? [entry, ''] : [entry.slice(0, at), entry.slice(at + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([name, value]) => [name, value === null ? '' : String(value)]));
}

/** Short-syntax volumes, `source:target[:mode]`, as objects. */
function volumes(service: ComposeService): Array<{ source: string; target: string; readOnly: boolean }> {
  return (service.volumes ?? []).map((volume) => {
    if (typeof volume !== 'string') {
      return { source: volume.source ?? '', target: volume.target ?? '', readOnly: volume.read_only === true };
    }
    const [source = '', target = '', mode = ''] = volume.split(':');
    return { source, target, readOnly: mode.split(',').includes('ro') };
  });
}

/** `published:target` port mappings (short or long syntax). */
function ports(service: ComposeService): Array<{ published: number; target: number }> {
  return (service.ports ?? []).map((port) => {
    if (typeof port !== 'string') return { published: Number(port.published), target: Number(port.target) };
    const parts = port.split('/')[0]!.split(':');
    return { published: Number(parts.at(-2)), target: Number(parts.at(-1)) };
  });
}

const dependsOnHealthy = (service: ComposeService, on: string) =>
  !Array.isArray(service.depends_on) && service.depends_on?.[on]?.condition === 'service_healthy';

/** Dockerfile instructions, continuation lines joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\r?\n/g, ' ')
  .split(/\r?\n/)
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'))
  .map((line) => {
    const [keyword = '', ...rest] = line.split(/\s+/);
    return { keyword: keyword.toUpperCase(), args: rest.join(' ') };
  });
const stages: Array<typeof instructions> = [];
for (const instruction of instructions) {
  if (instruction.keyword === 'FROM') stages.push([]);
  stages.at(-1)?.push(instruction);
}
const runtime = stages.at(-1) ?? [];

describe('docker-compose.yml', () => {
  const settingNames = new Set<string>(Object.keys(SETTINGS));

  it('has the redis, api, worker and grafana services', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'grafana', 'redis', 'worker']);
  });

  it('runs Redis Stack 7.4 with its data (append-only file) on a named volume, and a ping health check', () => {
    const redis = services.redis!;
    expect(redis.image).toMatch(/^redis\/redis-stack-server:7\.4(\.\d+)?(-v\d+)?$/);
    expect(environment(redis).REDIS_ARGS).toMatch(/--appendonly yes/);
    const data = volumes(redis).find((volume) => volume.target === '/data');
    expect(data, 'a volume on /data').toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(data!.source);
    expect(JSON.stringify(redis.healthcheck?.test)).toMatch(/redis-cli.*ping/);
  });

  it.each(['api', 'worker'])('sets only known settings on %s, with valid values', (name) => {
    const env = environment(services[name]!);
    for (const variable of Object.keys(env)) {
      expect(settingNames.has(variable) || variable === 'NODE_ENV', `${variable} is a setting in SETTINGS`).toBe(true);
    }
    const parsed = parseConfig(env);
    expect(parsed.ok ? [] : parsed.problems).toEqual([]);
  });

  it('runs one API and one worker from the same image, with valid roles, after Redis is healthy', () => {
    const api = services.api!;
    const worker = services.worker!;
    expect(environment(api).ROLE).toBe('api');
    expect(environment(worker).ROLE).toBe('worker');
    expect(api.image).toBeDefined();
    expect(worker.image).toBe(api.image);
    for (const service of [api, worker]) {
      expect(service.build === '.' || (typeof service.build === 'object' && service.build.context === '.')).toBe(true);
      expect(dependsOnHealthy(service, 'redis')).toBe(true);
    }
    // The worker serves no HTTP: the image's /healthz check would mark it unhealthy.
    expect(worker.healthcheck?.disable).toBe(true);
    expect(worker.ports ?? []).toEqual([]);
  });

  it('points REDIS_URL of the api and the worker at the redis service', () => {
    for (const name of ['api', 'worker']) {
      const url = new URL(environment(services[name]!).REDIS_URL!);
      expect(url.protocol).toBe('redis:');
      expect(url.hostname).toBe('redis');
      expect(url.port || '6379').toBe('6379');
    }
  });

  it('publishes the API on the PORT default, which the Dockerfile exposes', () => {
    const port = Number(environment(services.api!).PORT ?? SETTINGS.PORT.default);
    expect(port).toBe(5000);
    expect(ports(services.api!)).toContainEqual({ published: port, target: port });
    const exposed = runtime.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/).map((p) => Number(p.split('/')[0])));
    expect(exposed).toEqual([port]);
  });

  it('runs a pinned Grafana with the Redis data source plugin, anonymous viewers and the Fraud Stats home dashboard', () => {
    const grafana = services.grafana!;
    const version = /^grafana\/grafana(?:-oss)?:(\d+)\.(\d+)\.(\d+)$/.exec(grafana.image ?? '');
    expect(version, `${grafana.image} is pinned to a release`).not.toBeNull();
    const [major, minor] = [Number(version![1]), Number(version![2])];
    // redis-datasource 2.2.0 is reported failing to load on 12.2 (RedisGrafana/grafana-redis-datasource#336).
    expect(major * 1000 + minor, `${grafana.image} is older than 12.2`).toBeLessThan(12_002);
    // The dashboard test computes names and transformations with @grafana/data of the same release.
    expect(packageJson.devDependencies['@grafana/data']).toBe(version!.slice(1).join('.'));

    const env = environment(grafana);
    // Installed in the background: a plugin that cannot be downloaded must not keep Grafana from starting.
    const plugins = (env.GF_PLUGINS_PREINSTALL ?? '').split(',').map((plugin) => plugin.trim().split('@'));
    expect(plugins).toContainEqual(['redis-datasource', '2.2.0']);
    expect(env.GF_PLUGINS_PREINSTALL_SYNC, 'a failed synchronous install stops Grafana').toBeUndefined();
    expect(env.GF_INSTALL_PLUGINS, 'installed before Grafana starts too').toBeUndefined();
    expect(env.GF_AUTH_ANONYMOUS_ENABLED).toBe('true');
    expect(env.GF_AUTH_ANONYMOUS_ORG_ROLE).toBe('Viewer');
    expect(ports(grafana)).toContainEqual({ published: 3000, target: 3000 });
    expect(dependsOnHealthy(grafana, 'redis')).toBe(true);
  });

  it('mounts the provisioning read-only where Grafana reads it, and the dashboards where the provider and the home path look', () => {
    const grafana = services.grafana!;
    const mounts = volumes(grafana);
    const mountOf = (source: string) => mounts.find((mount) => posix.normalize(mount.source) === posix.normalize(source));

    for (const kind of ['datasources', 'dashboards']) {
      const mount = mountOf(`./grafana/provisioning/${kind}`);
      expect(mount, `./grafana/provisioning/${kind} is mounted`).toBeDefined();
      expect(mount!.target).toBe(`/etc/grafana/provisioning/${kind}`);
      expect(mount!.readOnly).toBe(true);
    }

    const dashboards = mountOf('./grafana/dashboards');
    expect(dashboards, './grafana/dashboards is mounted').toBeDefined();
    expect(dashboards!.readOnly).toBe(true);
    expect(providers.providers).toHaveLength(1);
    const provider = providers.providers[0]!;
    expect(provider.type ?? 'file').toBe('file');
    expect(posix.normalize(provider.options.path)).toBe(posix.normalize(dashboards!.target));

    const home = environment(grafana).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!;
    expect(posix.dirname(home)).toBe(posix.normalize(dashboards!.target));
    expect(exists(`grafana/dashboards/${posix.basename(home)}`), `${home} is a file in ./grafana/dashboards`).toBe(true);
  });

  it('gives Grafana a data source on the redis service and port', () => {
    expect(datasources.datasources).toHaveLength(1);
    const source = datasources.datasources[0]!;
    expect(source.type).toBe('redis-datasource');
    expect(source.uid).toMatch(/^[\w-]{1,40}$/);
    expect(source.jsonData?.client ?? 'standalone').toBe('standalone');
    const url = new URL(source.url.includes('://') ? source.url : `redis://${source.url}`);
    expect(url.hostname).toBe('redis');
    expect(url.port || '6379').toBe('6379');
    // The redis service listens on the default port: nothing in REDIS_ARGS moves it.
    expect(environment(services.redis!).REDIS_ARGS ?? '').not.toMatch(/--port/);
  });
});

describe('Dockerfile', () => {
  it('builds in one stage and runs from a smaller one', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages.slice(0, -1).flat();
    expect(build.some((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args))).toBe(true);
    expect(build.some((i) => i.keyword === 'RUN' && /\bnpm run build\b/.test(i.args))).toBe(true);
    // Both stages on the Node LTS that .ci/run runs the suite on.
    const tested = /^lts_node=(\d+)\./m.exec(read('.ci/run'))?.[1];
    expect(tested, 'lts_node in .ci/run').toBeDefined();
    for (const stage of stages) expect(stage[0]!.args).toMatch(new RegExp(`^node:${tested}(\\.[\\d.]+)?-(slim|alpine)`));
    expect(runtime.some((i) => i.keyword === 'RUN' && /\bnpm ci\b.*--omit=dev/.test(i.args))).toBe(true);
    expect(runtime.some((i) => i.keyword === 'COPY' && /--from=\S+\s+\S*dist\S*\s/.test(i.args))).toBe(true);
  });

  it('copies only files that exist into the build', () => {
    for (const copy of instructions.filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))) {
      const paths = copy.args.split(/\s+/).filter((arg) => !arg.startsWith('--'));
      for (const source of paths.slice(0, -1)) expect(exists(source), `${source} exists`).toBe(true);
    }
  });

  it('runs as an unprivileged user', () => {
    const users = runtime.filter((i) => i.keyword === 'USER').map((i) => i.args.split(':')[0]);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0']).not.toContain(users.at(-1));
  });

  it('checks /healthz on PORT with node itself, and starts dist/main.js', () => {
    const healthcheck = runtime.find((i) => i.keyword === 'HEALTHCHECK');
    expect(healthcheck?.args).toMatch(/CMD node /);
    expect(healthcheck?.args).toContain('http://127.0.0.1:${PORT:-5000}/healthz');
    const cmd = runtime.filter((i) => i.keyword === 'CMD').at(-1);
    expect(JSON.parse(cmd!.args)).toEqual(['node', 'dist/main.js']);
  });

  it('keeps local state and artifacts out of the build context', () => {
    const ignored = read('.dockerignore')
      .split(/\r?\n/)
      .map((line) => line.trim().replace(/^\/|\/$/g, ''))
      .filter((line) => line !== '' && !line.startsWith('#'));
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.redis-data', '.git', 'coverage']));
    // …but not what the build needs.
    for (const needed of ['src', 'scripts', 'package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json']) {
      expect(ignored).not.toContain(needed);
    }
  });
});
