import { Command, InvalidArgumentError, Option } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { openBlacklistAdmin } from '../admin/open-admin.js';
import { parseConfig } from '../config.js';
import { parseDuration } from '../domain/ban.js';
import { precision, recall } from './plan.js';
import { runSimulation, type SimulationReport } from './run.js';
import { VERSION } from '../version.js';

/**
 * `npm run simulate -- [options]`: synthetic clicks against a running API, with a known share of
 * spam bursts and of blacklisted addresses, and a report of how well they were detected.
 */
const program = new Command('simulate')
  .description(
    'Drive a running click fraud API with synthetic clicks: clean devices that stay under the spam threshold, devices that click in bursts faster than the window allows, and clicks from addresses the simulator blacklists first (through the same code as the blacklist CLI). Reports detection quality, latency and the achieved rate.',
  )
  .version(VERSION)
  .option('--url <url>', 'the API', 'http://localhost:5000')
  .option('-r, --rate <clicks/s>', 'clicks per second offered', positive, 200)
  .option('-d, --duration <duration>', 'how long: 30, 30s, 2m', duration, 10)
  .option('--spam-share <0-1>', 'share of clicks that belong to spam bursts', share, 0.1)
  .option('--blacklist-share <0-1>', 'share of clicks from blacklisted addresses', share, 0.05)
  .option('--burst <clicks>', 'clicks per spam burst, sent at once (must exceed the threshold)', positive)
  .option('--blacklisted-ips <n>', 'how many addresses to blacklist', positive, 20)
  .option('--devices <n>', 'smallest pool of clean devices (grown if the rate needs more)', positive, 1000)
  .option('--threshold <n>', "the API's CLICK_SPAM_THRESHOLD", positive, 2)
  .option('--window <seconds>', "the API's CLICK_SPAM_WINDOW_IN_SEC", positive, 10)
  .option('--max-in-flight <n>', 'most requests outstanding at once', positive, 256)
  .addOption(new Option('--redis-url <url>', "Redis of the API, to blacklist addresses (default: REDIS_URL, else the one the API's /readyz names)").env('REDIS_URL'))
  .showHelpAfterError('(--help lists the options)');

program.parse();
const options = program.opts<{
  url: string;
  rate: number;
  duration: number;
  spamShare: number;
  blacklistShare: number;
  burst?: number;
  blacklistedIps: number;
  devices: number;
  threshold: number;
  window: number;
  maxInFlight: number;
  redisUrl?: string;
}>();
const burst = options.burst ?? options.threshold + 3;
if (burst <= options.threshold) fail(`--burst must exceed --threshold (${options.threshold})`);
if (options.spamShare + options.blacklistShare >= 1) fail('--spam-share and --blacklist-share must leave room for clean clicks');

const parsed = parseConfig(process.env);
if (!parsed.ok) fail(parsed.problems.map((problem) => `Invalid setting: ${problem}`).join('\n'));
const redisUrl = options.redisUrl ?? (await redisOfApi(options.url));

const progress = new SingleBar({ format: 'clicks {bar} {value}/{total} | {percentage}% | {eta}s left', stream: process.stderr }, Presets.shades_classic);
let started = false;
const opened = await openBlacklistAdmin(parsed.config, redisUrl).catch((error: Error) => fail(`cannot reach Redis to blacklist addresses: ${error.message}`));
try {
  const report = await runSimulation(
    {
      url: options.url,
      rate: options.rate,
      durationSeconds: options.duration,
      spamShare: options.spamShare,
      blacklistShare: options.blacklistShare,
      burst,
      blacklistedIps: options.blacklistedIps,
      threshold: options.threshold,
      windowSeconds: options.window,
      minCleanDevices: options.devices,
      maxInFlight: options.maxInFlight,
      runId: `sim${Date.now().toString(36)}`,
    },
    async (ips) => {
      // Temporary bans: they end by themselves a while after the run.
      for (const ip of ips) await opened.admin.add({ ip, reason: 'click simulator', ttl: options.duration + options.window + 300 }, 'simulator');
    },
    (sent, planned) => {
      if (!started) progress.start(planned, 0);
      started = true;
      progress.update(sent);
    },
  );
  progress.stop();
  printReport(report);
} finally {
  await opened.close();
}

async function redisOfApi(url: string): Promise<string> {
  const readyz = await fetch(new URL('/readyz', url)).then((res) => res.json() as Promise<{ redis?: { url?: string } }>, (error: Error) => fail(`cannot reach the API at ${url}: ${error.message}`));
  const named = readyz.redis?.url;
  if (named === undefined || named.includes('***')) fail('set REDIS_URL (or --redis-url) to the Redis of the API, so that the simulator can blacklist its addresses');
  return named;
}

function printReport(report: SimulationReport): void {
  const { scores } = report;
  const pct = (n: number) => n.toFixed(3);
  const lines = [
    '',
    `sent ${report.clicksSent} clicks in ${report.seconds.toFixed(1)} s: ${report.achievedRate.toFixed(0)} clicks/s achieved (${options.rate} offered), ${scores.failed} without a verdict`,
    `latency p50 ${report.latencyMs.p50.toFixed(1)} ms, p95 ${report.latencyMs.p95.toFixed(1)} ms, p99 ${report.latencyMs.p99.toFixed(1)} ms`,
    `${report.cleanDevices} clean devices, bursts of ${burst} (threshold ${options.threshold} in ${options.window} s), ${options.blacklistedIps} blacklisted addresses`,
    '',
    '| fraud type   | injected | caught | missed | flagged as it | precision | recall |',
    '|--------------|----------|--------|--------|---------------|-----------|--------|',
    ...(['ip_blacklist', 'click_spam'] as const).map(
      (type) =>
        `| ${type.padEnd(12)} | ${String(scores.injected[type]).padStart(8)} | ${String(scores.caught[type]).padStart(6)} | ${String(scores.injected[type] - scores.caught[type]).padStart(6)} | ${String(scores.flaggedAs[type]).padStart(13)} | ${pct(precision(scores, type)).padStart(9)} | ${pct(recall(scores, type)).padStart(6)} |`,
    ),
    '',
    `clean clicks: ${scores.cleanSent} sent, ${scores.cleanFlagged} flagged as fraud (false positives)`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function positive(text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number.');
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
