import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../src/config.js';
import { redisStackUrl, redisUrl, startTestApi } from './support/api.js';
import { curlRequest, differences, readmeCommands, shownJson } from './support/readme-examples.js';
import { startTestWorker } from './support/worker.js';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('the README', () => {
  it.each(Object.entries(SETTINGS))('lists %s with its default and meaning', (name, setting) => {
    const row = readme.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
    expect(row, `no settings row for ${name}`).toBeDefined();
    const cells = row!.split(' | ');
    expect(cells[1]).toBe(setting.default === undefined ? '(unset)' : `\`${setting.default}\``);
    expect(row).toContain(setting.doc);
  });

  it('has a contents list whose every entry leads to a section', () => {
    const anchors = new Set(
      [...readme.matchAll(/^#{2,3} (.+)$/gm)].map((m) =>
        m[1]!
          .toLowerCase()
          .replace(/[^\w\- ]/g, '')
          .replace(/ /g, '-'),
      ),
    );
    const links = [...readme.matchAll(/\]\(#([\w-]+)\)/g)].map((m) => m[1]!);
    expect(links.length).toBeGreaterThan(10);
    for (const link of links) expect(anchors, `#${link}`).toContain(link);
  });

  it('gives the test command CI runs', () => {
    expect(readme).toContain('npm test');
    expect(readFileSync(new URL('../.ci/run', import.meta.url), 'utf8')).toMatch(/^(\w+=\S+ )*npm test$/m);
  });
});

/**
 * Every curl and redis-cli example of the README, replayed in order against the real service (with a
 * stream worker, as `npm start` runs it) on a real Redis: each answer the README shows must be what
 * the service answers now, field for field (times, ids and counts aside).
 */
const servers = [
  { name: 'plain Redis (the set blacklist)', url: redisUrl, backend: 'set' },
  ...(redisStackUrl ? [{ name: 'Redis Stack (the cuckoo filter)', url: redisStackUrl, backend: 'cuckoo' }] : []),
];
describe.each(servers)('the README examples, on $name', ({ url, backend }) => {
  it('answer as the README shows', { timeout: 60_000 }, async () => {
    const variables: Record<string, string> = {};
    // The blacklist as named, also where the default Redis is a Stack server (the set then by choice).
    const api = await startTestApi({ ADMIN_TOKEN: 'change-me-to-a-long-secret', BLACKLIST_BACKEND: backend }, url);
    const worker = await startTestWorker(api.config, url);
    let replayed = 0;
    try {
      expect(api.service.blacklist.backend).toBe(backend);
      for (const command of readmeCommands(readme)) {
        const where = `README line ${command.line}: ${command.words.join(' ').slice(0, 120)}`;
        const [program, ...args] = command.words;
        if (program === 'export') {
          const [name, value] = args[0]!.split('=');
          variables[name!] = value!;
        } else if (program === 'redis-cli') {
          // The README gives one line per blacklist backend; the comment says which.
          const forBackend = /cuckoo/i.test(command.comment) ? 'cuckoo' : /plain Redis|exact set/i.test(command.comment) ? 'set' : undefined;
          if (forBackend !== undefined && forBackend !== backend) continue;
          const reply = await api.admin.call(args[0]!, ...args.slice(1).map((arg) => (arg === 'ip_cf' ? api.config.blacklist.key : arg)));
          if (command.output !== '') expect(String(reply), where).toBe(command.output);
          replayed += 1;
        } else if (program === 'curl') {
          const request = curlRequest(command.words, variables);
          // /stats and /offenders show what the worker has counted: everything sent before them.
          if (/^\/(stats|offenders)\b/.test(request.path)) await worker.drained();
          const res = await fetch(`${api.base}${request.path}`, { method: request.method, headers: request.headers, body: request.body });
          const text = (await res.text()).trim();
          replayed += 1;
          if (command.output === '') continue;
          if (command.output.trimStart().startsWith('{')) {
            expect.soft(differences(JSON.parse(text), shownJson(command.output), ''), `${where}\nanswered ${text}`).toEqual([]);
          } else expect.soft(text, where).toBe(command.output.trim());
        }
      }
      expect(replayed).toBeGreaterThan(10);
    } finally {
      await worker.stop();
      await api.close();
    }
  });
});
