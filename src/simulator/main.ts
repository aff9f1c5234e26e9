import { Command, InvalidArgumentError, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { openBlacklistAdmin } from '../admin/open-admin.js';
import { parseConfig } from '../config.js';
import { parseDuration } from '../domain/ban.js';
import type { VelocityRuleName } from '../domain/rules.js';
import { precision, recall, reportedRules } from './plan.js';
import { runSimulation, type SimulationReport } from './run.js';
import { VERSION } from '../version.js';

/**
 * `npm run simulate -- [options]`: synthetic clicks against a running API, with a known share of
 * spam bursts, blacklisted addresses, address floods and device farms, and a report of how well
 * each rule caught its fraud.
 */
const program = new Command('simulate')
  .description(
    "Drive a running click fraud API with synthetic clicks: clean devices that stay under every threshold, devices that click in bursts faster than click_spam allows, clicks from addresses the simulator blacklists first (through the same code as the blacklist CLI), floods of clicks from one address over many devices, and device farms behind one address. Rules whose fraud it injects and that are not enforced are enforced for the run, at their own thresholds, and the rule set is put back after. Reports precision and recall per rule, false positives on clean traffic, latency and the achieved rate.",
  )
  .version(VERSION)
  .option('--url <url>', 'the API', 'http://localhost:5000')
  .option('-r, --rate <clicks/s>', 'clicks per second offered', positive, 200)
  .option('-d, --duration <duration>', 'how long: 30, 30s, 2m', duration, 10)
  .option('--spam-share <0-1>', 'share of clicks that belong to spam bursts', share, 0.1)
  .option('--blacklist-share <0-1>', 'share of clicks from blacklisted addresses', share, 0.05)
  .option('--flood-share <0-1>', 'share of clicks that belong to address floods', share, 0.05)
  .option('--farm-share <0-1>', 'share of clicks that belong to device farms', share, 0.05)
  .option('--burst <clicks>', "clicks per spam burst, sent at once (default: click_spam's threshold + 3)", whole)
  .option('--flood-clicks <clicks>', "clicks per address flood (default: ip_flood's threshold + 10)", whole)
  .option('--farm-devices <devices>', "devices per device farm (default: device_farm's threshold + 5)", whole)
  .option('--blacklisted-ips <n>', 'how many addresses to blacklist', whole, 20)
  .option('--devices <n>', 'smallest pool of clean devices (grown if the rate needs more)', whole, 1000)
  .option('--max-in-flight <n>', 'most requests outstanding at once', whole, 256)
  .addOption(new Option('--redis-url <url>', "Redis of the API, to blacklist addresses and set the rules (default: REDIS_URL, else the one the API's /readyz names)").env('REDIS_URL'))
  .showHelpAfterError('(--help lists the options)');

program.parse();
const options = program.opts<{
  url: string;
  rate: number;
  duration: number;
  spamShare: number;
  blacklistShare: number;
  floodShare: number;
  farmShare: number;
  burst?: number;
  floodClicks?: number;
  farmDevices?: number;
  blacklistedIps: number;
  devices: number;
  maxInFlight: number;
  redisUrl?: string;
}>();
if (options.spamShare + options.blacklistShare + options.floodShare + options.farmShare >= 1) {
  fail('--spam-share, --blacklist-share, --flood-share and --farm-share must leave room for clean clicks');
}

const parsed = parseConfig(process.env);
if (!parsed.ok) fail(parsed.problems.map((problem) => `Invalid setting: ${problem}`).join('\n'));
const redisUrl = options.redisUrl ?? (await redisOfApi(options.url));

const progress = new SingleBar({ format: 'clicks {bar} {value}/{total} | {percentage}% | {eta}s left', stream: process.stderr }, Presets.shades_classic);
let started = false;
// Ctrl-C ends the run early: what is under way is answered, the rules are put back, and the report covers what was sent.
const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
const opened = await openBlacklistAdmin(parsed.config, redisUrl).catch((error: Error) => fail(`cannot reach Redis to blacklist addresses and set the rules: ${error.message}`));
try {
  const report = await runSimulation(
    {
      url: options.url,
      rate: options.rate,
      durationSeconds: options.duration,
      spamShare: options.spamShare,
      blacklistShare: options.blacklistShare,
      floodShare: options.floodShare,
      farmShare: options.farmShare,
      burst: options.burst,
      floodClicks: options.floodClicks,
      farmDevices: options.farmDevices,
      blacklistedIps: options.blacklistedIps,
      minCleanDevices: options.devices,
      maxInFlight: options.maxInFlight,
      runId: `sim${Date.now().toString(36)}`,
      signal: stop.signal,
    },
    {
      async block(ips) {
        // Temporary bans: they end by themselves a while after the run.
        for (const ip of ips) await opened.admin.add({ ip, reason: 'click simulator', ttl: options.duration + 600 }, 'simulator');
      },
      rules: opened.rules,
    },
    (sent, planned) => {
      if (!started) progress.start(planned, 0);
      started = true;
      progress.update(sent);
    },
  );
  progress.stop();
  printReport(report);
} catch (error) {
  progress.stop();
  process.stderr.write(`${(error as Error).message}\n`);
  process.exitCode = 1;
} finally {
  await opened.close();
}

async function redisOfApi(url: string): Promise<string> {
  const readyz = await fetch(new URL('/readyz', url)).then((res) => res.json() as Promise<{ redis?: { url?: string } }>, (error: Error) => fail(`cannot reach the API at ${url}: ${error.message}`));
  const named = readyz.redis?.url;
  if (named === undefined || named.includes('***')) fail('set REDIS_URL (or --redis-url) to the Redis of the API, so that the simulator can blacklist its addresses and set the rules');
  return named;
}

function printReport(report: SimulationReport): void {
  const { scores, sizes, rules, ruleChange } = report;
  const pct = (n: number) => n.toFixed(3);
  const limit = (rule: VelocityRuleName) => `${rule}: ${rules[rule].threshold} in ${rules[rule].window_sec} s`;
  const lines = [
    '',
    `sent ${report.clicksSent} clicks in ${report.seconds.toFixed(1)} s${report.clicksSent < report.clicksPlanned ? ` (stopped early: ${report.clicksPlanned} planned)` : ''}: ${report.achievedRate.toFixed(0)} clicks/s achieved (${options.rate} offered), ${report.retries} retried, ${scores.failed} without a verdict`,
    `latency p50 ${report.latencyMs.p50.toFixed(1)} ms, p95 ${report.latencyMs.p95.toFixed(1)} ms, p99 ${report.latencyMs.p99.toFixed(1)} ms`,
    [
      `${report.cleanDevices} clean devices, each on an address of its own`,
      ...(options.spamShare > 0 ? [`bursts of ${sizes.burst} clicks (${limit('click_spam')})`] : []),
      ...(options.blacklistShare > 0 ? [`${options.blacklistedIps} blacklisted addresses`] : []),
    ].join('; '),
    ...(options.floodShare > 0 || options.farmShare > 0
      ? [
          [
            ...(options.floodShare > 0 ? [`floods of ${sizes.floodClicks} clicks by ${sizes.floodDevices} devices (${limit('ip_flood')})`] : []),
            ...(options.farmShare > 0 ? [`farms of ${sizes.farmDevices} devices, ${sizes.farmClicks} clicks (${limit('device_farm')})`] : []),
          ].join('; '),
        ]
      : []),
    ruleChange === undefined
      ? 'rules: the rule set in force enforces every rule the run injects for; unchanged'
      : `rules: ${ruleChange.enforced.join(', ')} enforced for the run (rule set v${ruleChange.before} -> v${ruleChange.set}); ${
          ruleChange.restored === undefined ? 'the rule set changed during the run, so it was left as it is' : `v${ruleChange.before}'s rules put back as v${ruleChange.restored}`
        }`,
    '',
    '| rule         | injected | caught | missed | flagged as it | precision | recall |',
    '|--------------|----------|--------|--------|---------------|-----------|--------|',
    ...reportedRules(scores).map(
      (rule) =>
        `| ${rule.padEnd(12)} | ${String(scores.injected[rule]).padStart(8)} | ${String(scores.caught[rule]).padStart(6)} | ${String(scores.injected[rule] - scores.caught[rule]).padStart(6)} | ${String(scores.flaggedAs[rule]).padStart(13)} | ${pct(precision(scores, rule)).padStart(9)} | ${pct(recall(scores, rule)).padStart(6)} |`,
    ),
    '',
    `clean traffic: ${scores.cleanSent} clicks sent, ${scores.cleanFlagged} flagged as fraud (false positives)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function positive(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number.');
  return n;
}

function whole(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a whole number above 0.');
  return n;
}

function share(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError('must be a share from 0 to below 1, such as 0.1.');
  return n;
}

function duration(text: string): number {
  const seconds = parseDuration(text);
  if (seconds === undefined || seconds < 1) throw new InvalidArgumentError('use a duration such as 30, 30s or 2m.');
  return seconds;
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
