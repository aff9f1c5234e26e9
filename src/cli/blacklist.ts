import { createReadStream, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { Command, InvalidArgumentError } from 'commander';
import type { AllowlistAdmin } from '../admin/allowlist-admin.js';
import type { BlacklistAdmin } from '../admin/blacklist-admin.js';
import type { RulesAdmin } from '../admin/rules-admin.js';
import { describeEntry } from '../admin/blacklist-audit.js';
import { openBlacklistAdmin } from '../admin/open-admin.js';
import { parseConfig } from '../config.js';
import { MAX_SOURCE_LENGTH, MAX_TTL_SECONDS, parseBanReason, parseBanRequest, parseDuration, type Ban } from '../domain/ban.js';
import type { FieldProblem } from '../domain/field-problems.js';
import { canonicalAddressOrRange } from '../domain/ip.js';
import { parseRuleSet } from '../domain/rules.js';
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
  .argument('<ip>', 'IPv4 or IPv6 address, or a range (203.0.113.0/24)', ipArgument)
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
      const ip = canonicalAddressOrRange(spelling)!;
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
  .argument('<ip>', 'IPv4 or IPv6 address, or a range (203.0.113.0/24)', ipArgument)
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
      for (const { line, text } of report.invalidLines) print(`line ${line}: not an IP address or range: ${JSON.stringify(text)}`);
      print(`added ${report.added}, already present ${report.alreadyPresent}, invalid ${report.invalid}`);
    });
  });

const allow = program.command('allow').description('the allowlist: addresses, ranges and devices that win over every rule');

allow
  .command('add')
  .description('allowlist an address or range, or a device with --device')
  .argument('<value>', 'an IPv4 or IPv6 address or range (203.0.113.0/24), or a device id with --device')
  .option('-d, --device', 'the value is a device id')
  .requiredOption('-r, --reason <text>', 'why it is allowlisted')
  .action((value: string, options: { device?: boolean; reason: string }) =>
    withAdmin(async (_admin, { allowlist }) => {
      const reason = validOrFail(parseBanReason(options.reason));
      const target = options.device ? value : canonicalAddressOrRange(value);
      if (target === undefined) fail(`not an address or range: ${JSON.stringify(value)} (a device id needs --device)`);
      const { entry, replaced } = await allowlist.add(options.device ? 'device' : 'address', target, reason);
      print(`${replaced ? 'already allowlisted, reason updated' : 'allowlisted'}: ${entry.kind} ${entry.value}  ${JSON.stringify(entry.reason)}`);
    }),
  );

allow
  .command('remove')
  .description('take an address, range or device (--device) off the allowlist')
  .argument('<value>', 'an address or range, or a device id with --device')
  .option('-d, --device', 'the value is a device id')
  .action((value: string, options: { device?: boolean }) =>
    withAdmin(async (_admin, { allowlist }) => {
      const target = options.device ? value : canonicalAddressOrRange(value);
      if (target === undefined || !(await allowlist.remove(options.device ? 'device' : 'address', target))) fail(`${value} is not on the allowlist`);
      print(`removed ${target} from the allowlist`);
    }),
  );

allow
  .command('list')
  .description('list the allowlisted addresses and ranges, then the devices')
  .action(() =>
    withAdmin(async (_admin, { allowlist }) => {
      for (const kind of ['address', 'device'] as const) {
        let cursor: string | undefined = '0';
        while (cursor !== undefined) {
          const page = await allowlist.list(kind, cursor);
          for (const entry of page.entries) print(`${entry.kind}\t${entry.value}\t${JSON.stringify(entry.reason)}`);
          cursor = page.nextCursor;
        }
      }
    }),
  );

const rules = program.command('rules').description('the rule set in force (see the README, Detection rules)');

rules
  .command('get')
  .description('print the rule set in force, as JSON')
  .action(() =>
    withAdmin(async (_admin, { rules: book }) => {
      const current = await book.current();
      if (current === undefined) fail('no rule set is stored: an API process stores one when it starts');
      print(JSON.stringify({ version: current.version, source: current.source, rules: current.rules }, null, 2));
    }),
  );

rules
  .command('set')
  .description('replace the rule set with one read from a JSON file (- for standard input); rules it leaves out take their defaults')
  .argument('<file>', 'a JSON file, or - for standard input')
  .action((file: string) =>
    withAdmin(async (_admin, { rules: book }) => {
      const text = file === '-' ? readFileSync(0, 'utf8') : await readFile(file, 'utf8');
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        fail(`${file} is not JSON`);
      }
      const parsed = parseRuleSet(body);
      if (!parsed.ok) fail(parsed.problems.map((problem) => `${problem.path}: ${problem.message}`).join('\n'));
      const stored = await book.replace(parsed.rules);
      print(`rule set v${stored.version} stored; every API process uses it within about a second`);
    }),
  );

rules
  .command('reset')
  .description("go back to the environment's rule set (RULES, CLICK_SPAM_*)")
  .action(() =>
    withAdmin(async (_admin, { rules: book }) => {
      const stored = await book.reset();
      print(`rule set v${stored.version} from the environment stored`);
    }),
  );

await program.parseAsync();

async function withAdmin(work: (admin: BlacklistAdmin, tools: { allowlist: AllowlistAdmin; rules: RulesAdmin }) => Promise<void>): Promise<void> {
  const parsed = parseConfig(process.env);
  if (!parsed.ok) fail(parsed.problems.map((problem) => `Invalid setting: ${problem}`).join('\n'));
  const config = parsed.config;
  const redisUrl = config.redis.url ?? (await privateRedisUrl(config.redis.dataDir).catch((error: Error) => fail(error.message)));
  const opened = await openBlacklistAdmin(config, redisUrl).catch((error: Error) => fail(error.message));
  try {
    await work(opened.admin, opened);
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
  const ip = canonicalAddressOrRange(text);
  if (ip === undefined) throw new InvalidArgumentError('not an IPv4 or IPv6 address, or a range such as 203.0.113.0/24.');
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
