import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError } from 'commander';
import type { BlacklistAdmin } from '../admin/blacklist-admin.js';
import { openBlacklistAdmin } from '../admin/open-admin.js';
import { parseConfig } from '../config.js';
import { MAX_TTL_SECONDS, parseDuration, type Ban } from '../domain/ban.js';
import { canonicalIp } from '../domain/ip.js';
import { privateRedisUrl } from '../redis/private-redis.js';
import { VERSION } from '../version.js';

/**
 * `npm run blacklist -- <command>`: the admin API's operations, straight against Redis with the
 * same code. Settings (REDIS_URL, IP_CUCKOO_FILTER_NAME, KEY_PREFIX, ...) come from the environment;
 * with no Redis configured, it uses the private Redis of the service on the same data folder.
 */
const program = new Command('blacklist')
  .description(
    'Manage the IP blacklist of the click fraud API. The settings come from the same environment variables as the service (node dist/main.js --help lists them): REDIS_URL, or with no Redis configured the private Redis that npm start runs in REDIS_DATA_DIR (.redis-data).',
  )
  .version(VERSION)
  .showHelpAfterError('(add --help after the command for its options)');

program
  .command('add')
  .description('block an address, with a reason and an optional ttl')
  .argument('<ip>', 'IPv4 or IPv6 address', ipArgument)
  .requiredOption('-r, --reason <text>', 'why it is blocked')
  .option('-t, --ttl <duration>', 'end the ban after this long: 3600, 90s, 15m, 1h or 7d', ttlArgument)
  .option('-s, --source <name>', 'who or what is blocking it', 'cli')
  .action((ip: string, options: { reason: string; ttl?: number; source: string }) =>
    withAdmin(async (admin) => {
      const { ban, alreadyBlocked } = await admin.add({ ip, reason: options.reason, ttl: options.ttl, source: options.source }, 'cli');
      print(`${alreadyBlocked ? 'already blocked, record updated' : 'blocked'}: ${describe(ban)}`);
    }),
  );

program
  .command('remove')
  .description('unblock an address and forget its record')
  .argument('<ip>', 'IPv4 or IPv6 address', ipArgument)
  .action((ip: string) =>
    withAdmin(async (admin) => {
      const { unblocked, entryRemoved } = await admin.remove(ip);
      if (!unblocked && !entryRemoved) fail(`${ip} is not blacklisted`);
      print(`unblocked ${ip}${entryRemoved ? '' : ' (it had no record)'}`);
    }),
  );

program
  .command('get')
  .description('show whether an address is blocked, and why')
  .argument('<ip>', 'IPv4 or IPv6 address', ipArgument)
  .action((ip: string) =>
    withAdmin(async (admin) => {
      const { blocked, entry } = await admin.status(ip);
      if (!blocked && entry === null) fail(`${ip} is not blacklisted`);
      print(entry === null ? `${ip}: blocked, no record (added outside the registry, e.g. with redis-cli)` : `${blocked ? 'blocked' : 'NOT blocked'}: ${describe(entry)}`);
    }),
  );

program
  .command('list')
  .description('list recorded bans, newest first')
  .option('-o, --offset <n>', 'skip this many', wholeNumber, 0)
  .option('-l, --limit <n>', 'show at most this many (1-500)', wholeNumber, 50)
  .action((options: { offset: number; limit: number }) =>
    withAdmin(async (admin) => {
      const page = await admin.list(options.offset, Math.min(Math.max(options.limit, 1), 500));
      for (const ban of page.bans) print(describe(ban));
      print(`${page.bans.length} of ${page.total} bans shown (offset ${options.offset})`);
    }),
  );

program
  .command('import')
  .description('block every address of a file, one per line (blank lines and # comments are skipped)')
  .argument('<file>', 'path of the list')
  .option('-r, --reason <text>', 'reason recorded for each address (default: "imported from <file>")')
  .option('-t, --ttl <duration>', 'end these bans after this long', ttlArgument)
  .action((file: string, options: { reason?: string; ttl?: number }) =>
    withAdmin(async (admin) => {
      const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
      const report = await admin.importLines(lines, {
        reason: options.reason ?? `imported from ${basename(file)}`,
        ...(options.ttl === undefined ? {} : { ttl: options.ttl }),
        source: `import:${basename(file)}`,
      });
      for (const { line, text } of report.invalidLines) print(`line ${line}: not an IP address: ${JSON.stringify(text)}`);
      print(`added ${report.added}, already present ${report.alreadyPresent}, invalid ${report.invalid}`);
    }),
  );

await program.parseAsync();

async function withAdmin(work: (admin: BlacklistAdmin) => Promise<void>): Promise<void> {
  const parsed = parseConfig(process.env);
  if (!parsed.ok) fail(parsed.problems.map((problem) => `Invalid setting: ${problem}`).join('\n'));
  const config = parsed.config;
  const redisUrl = config.redis.url ?? (await privateRedisUrl(config.redis.dataDir).catch((error: Error) => fail(error.message)));
  const opened = await openBlacklistAdmin(config, redisUrl).catch((error: Error) => fail(error.message));
  try {
    await work(opened.admin);
  } catch (error) {
    fail((error as Error).message);
  } finally {
    await opened.close();
  }
}

function describe(ban: Ban): string {
  const until = ban.expiresAt === null ? 'no end' : `until ${new Date(ban.expiresAt).toISOString()}`;
  return `${ban.ip}  ${JSON.stringify(ban.reason)}  by ${ban.source}  since ${new Date(ban.addedAt).toISOString()}  ${until}`;
}

function ipArgument(text: string): string {
  const ip = canonicalIp(text);
  if (ip === undefined) throw new InvalidArgumentError('not an IPv4 or IPv6 address.');
  return ip;
}

function ttlArgument(text: string): number {
  const seconds = parseDuration(text);
  if (seconds === undefined || seconds < 1 || seconds > MAX_TTL_SECONDS) throw new InvalidArgumentError('use a duration such as 3600, 90s, 15m, 1h or 7d (at most 365d).');
  return seconds;
}

function wholeNumber(text: string): number {
  if (!/^\d{1,9}$/.test(text)) throw new InvalidArgumentError('not a whole number.');
  return Number(text);
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
