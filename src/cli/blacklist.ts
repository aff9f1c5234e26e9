import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError } from 'commander';
import type { BlacklistAdmin } from '../admin/blacklist-admin.js';
import { describeEntry } from '../admin/blacklist-audit.js';
import { openBlacklistAdmin } from '../admin/open-admin.js';
import { parseConfig } from '../config.js';
import { MAX_SOURCE_LENGTH, MAX_TTL_SECONDS, parseBanReason, parseBanRequest, parseDuration, type Ban } from '../domain/ban.js';
import type { FieldProblem } from '../domain/field-problems.js';
import { canonicalIp } from '../domain/ip.js';

/**
 * `npm run blacklist -- <command>`: the admin API's operations, straight against Redis with the
 * same code. Settings (REDIS_URL, IP_CUCKOO_FILTER_NAME, KEY_PREFIX, ...) come from the environment.
 */
const program = new Command('blacklist')
  .description('Manage the IP blacklist of the click fraud API (the settings come from the same environment variables as the service).')
  .showHelpAfterError('(add --help after the command for its options)');

program
  .command('add')
  .description('block an address, with a reason and an optional ttl')
  .argument('<ip>', 'IPv4 or IPv6 address', ipArgument)
  .requiredOption('-r, --reason <text>', 'why it is blocked')
  .option('-t, --ttl <duration>', 'end the ban after this long: 3600, 90s, 15m, 1h or 7d', ttlArgument)
  .option('-s, --source <name>', 'who or what is blocking it', 'cli')
  .action((ip: string, options: { reason: string; ttl?: number; source: string }) => {
    // The same rules as the admin API's: the reason and source are stored in Redis too.
    const request = validOrFail(parseBanRequest({ ip, reason: options.reason, ttl: options.ttl, source: options.source }));
    return withAdmin(async (admin) => {
      const { ban, alreadyBlocked } = await admin.add(request, 'cli');
      print(`${alreadyBlocked ? 'already blocked, record updated' : 'blocked'}: ${describe(ban)}`);
    });
  });

program
  .command('remove')
  .description('unblock an address and forget its record; on the set blacklist, an entry in another spelling (added with redis-cli) goes too when named so')
  .argument('<ip>', 'IPv4 or IPv6 address, in any spelling', spellingArgument)
  .action((spelling: string) =>
    withAdmin(async (admin) => {
      const ip = canonicalIp(spelling)!;
      const { unblocked, entryRemoved, spellingRemoved } = await admin.remove(ip, spelling);
      if (!unblocked && !entryRemoved && !spellingRemoved) fail(`${spelling} is not blacklisted`);
      if (unblocked || entryRemoved) print(`unblocked ${ip}${entryRemoved ? '' : ' (it had no record)'}`);
      if (spellingRemoved) print(`removed the entry ${JSON.stringify(spelling)}, not in canonical form (it blocked nothing)`);
    }),
  );

program
  .command('non-canonical')
  .description('list the entries of the set blacklist that block nothing because they are not in canonical form (added with redis-cli as 2001:DB8::9, say)')
  .option('--fix', 'replace each by its canonical spelling, and remove those that are no address at all')
  .action((options: { fix?: boolean }) =>
    withAdmin(async (admin) => {
      let [found, scanned] = [0, 0];
      let cursor: string | undefined;
      // A page at a time, each bounded; the whole set in the end, as the operator asked.
      do {
        const page = options.fix ? await admin.fixNonCanonical(cursor) : await admin.nonCanonical(cursor);
        for (const entry of page.entries) print(options.fix ? describeFix(entry) : describeEntry(entry));
        found += page.entries.length;
        scanned += page.scanned;
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      print(`${found} entries not in canonical form${options.fix ? ' fixed' : ''} (${scanned} entries looked at)`);
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
  .action((file: string, options: { reason?: string; ttl?: number }) => {
    const reason = validOrFail(parseBanReason(options.reason ?? `imported from ${basename(file)}`));
    // A long file name is cut rather than refused: the source only says where the bans came from.
    const source = [...`import:${basename(file)}`].slice(0, MAX_SOURCE_LENGTH).join('');
    return withAdmin(async (admin) => {
      const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
      const report = await admin.importLines(lines, { reason, ...(options.ttl === undefined ? {} : { ttl: options.ttl }), source });
      for (const { line, text } of report.invalidLines) print(`line ${line}: not an IP address: ${JSON.stringify(text)}`);
      print(`added ${report.added}, already present ${report.alreadyPresent}, invalid ${report.invalid}`);
    });
  });

await program.parseAsync();

async function withAdmin(work: (admin: BlacklistAdmin) => Promise<void>): Promise<void> {
  const parsed = parseConfig(process.env);
  if (!parsed.ok) fail(parsed.problems.map((problem) => `Invalid setting: ${problem}`).join('\n'));
  const config = parsed.config;
  if (config.redis.url === undefined) fail('Set REDIS_URL (or REDIS_HOST/REDIS_PORT) to the Redis of the service.');
  const opened = await openBlacklistAdmin(config, config.redis.url).catch((error: Error) => fail(error.message));
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

function describeFix({ raw, canonical }: { raw: string; canonical: string | null }): string {
  return canonical === null ? `removed ${JSON.stringify(raw)} (not an address)` : `replaced ${JSON.stringify(raw)} by ${canonical}`;
}

/** An address as the operator wrote it: checked, but kept in its spelling. */
function spellingArgument(text: string): string {
  ipArgument(text);
  return text;
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

/** The parsed value, or a failure that prints each problem on a line of its own. */
function validOrFail<T>(parsed: { ok: true; value: T } | { ok: false; problems: FieldProblem[] }): T {
  if (!parsed.ok) fail(parsed.problems.map((problem) => `error: ${problem.message}`).join('\n'));
  return parsed.value;
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
