import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { startLocalRedis, type LocalRedisServer } from '../src/redis/local-server.js';
import { sleep, testConfig } from './support/api.js';
import { listeningPort, startMain, type MainProcess } from './support/process.js';

const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;

/** As in the report this answers: Redis stopped (SIGSTOP) for 30 s while about 1,300 clicks/s arrive. */
const HANG_MS = 30_000;
const RATE_PER_SECOND = 1300;
/**
 * Bounds, not speed targets: memory that grew by 390 MB before now stays within a few tens of MB.
 * Node 24's V8 lets the young generation grow larger before it collects than Node 20's: the same
 * run measured 23 MB on Node 20 and 78 MB on Node 24 (50 MB with --max-semi-space-size=16), so the
 * bound leaves room for that and still catches a queue that grows with the hang.
 */
const MAX_RSS_GROWTH_MB = 100;
const MAX_RECOVERY_MS = 2000;

interface Answer {
  transactionId: string;
  status: number;
  sentAt: number;
  answeredAt: number;
}

/** Paced clicks, each with its own transaction id, at most `maxInFlight` waiting at once. */
function startLoad(base: string, ratePerSecond: number, maxInFlight = 256) {
  const answers: Answer[] = [];
  let sent = 0;
  let inFlight = 0;
  let skipped = 0;
  const tick = setInterval(() => {
    for (let i = 0; i < ratePerSecond / 100; i++) {
      if (inFlight >= maxInFlight) {
        skipped += 1;
        continue;
      }
      const n = sent++;
      inFlight += 1;
      const sentAt = Date.now();
      const transactionId = `hang-${n}`;
      fetch(base, { method: 'POST', body: JSON.stringify({ device_id: `hang-dev-${n % 5000}`, ip: '10.9.0.1', transaction_id: transactionId }) })
        .then(async (res) => {
          await res.arrayBuffer();
          answers.push({ transactionId, status: res.status, sentAt, answeredAt: Date.now() });
        })
        .catch(() => answers.push({ transactionId, status: 0, sentAt, answeredAt: Date.now() }))
        .finally(() => (inFlight -= 1));
    }
  }, 10);
  return {
    answers,
    get skipped() {
      return skipped;
    },
    async stop() {
      clearInterval(tick);
      while (inFlight > 0) await sleep(20);
    },
  };
}

function rssMb(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb) / 1024;
}

describe.skipIf(!hasRedisServer)('a Redis that hangs under load (own redis-server, stopped with SIGSTOP)', () => {
  let server: LocalRedisServer | undefined;
  let main: MainProcess | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'click-fraud-hang-'));
  afterAll(async () => {
    if (server) process.kill(server.pid, 'SIGCONT');
    main?.child.kill('SIGKILL');
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(
    'refuses at once with flat memory, decides nothing it refused, and answers 200 again within about a second of Redis resuming',
    async () => {
      server = await startLocalRedis({ dataDir });
      const config = testConfig();
      main = startMain({ ...config.env, LOG_LEVEL: 'info', REDIS_URL: server.url, ROLE: 'api' });
      const base = `http://127.0.0.1:${await listeningPort(main.stdout, main.exit)}`;
      const load = startLoad(base, RATE_PER_SECOND);
      await sleep(3000);
      const rssBefore = rssMb(main.child.pid!);

      const stoppedAt = Date.now();
      process.kill(server.pid, 'SIGSTOP');
      let rssMax = rssBefore;
      while (Date.now() - stoppedAt < HANG_MS) {
        await sleep(500);
        rssMax = Math.max(rssMax, rssMb(main.child.pid!));
      }
      const resumedAt = Date.now();
      process.kill(server.pid, 'SIGCONT');
      await sleep(4000);
      await load.stop();

      const { answers } = load;
      const during = answers.filter((a) => a.sentAt >= stoppedAt + 500 && a.answeredAt <= resumedAt);
      const latencies = during.map((a) => a.answeredAt - a.sentAt).sort((a, b) => a - b);
      const firstOkAfter = answers.filter((a) => a.status === 200 && a.answeredAt >= resumedAt).sort((a, b) => a.answeredAt - b.answeredAt)[0];
      const ok = answers.filter((a) => a.status === 200).length;
      const redis = new Redis(server.url);
      const decided = new Set((await redis.xrange(config.stream.key, '-', '+')).map(([, fields]) => fields[fields.indexOf('transaction_id') + 1]!));
      redis.disconnect();
      const streamLength = decided.size;
      // Clicks Redis may have decided at the very instant it was stopped, their answers held back
      // with it: the one outcome a timeout cannot know, which a retry with the same transaction_id
      // settles (it gets the decision recorded). Every other refused click must be in no stream.
      const inFlightAtStop = new Set(answers.filter((a) => a.status !== 200 && a.sentAt <= stoppedAt && a.answeredAt >= stoppedAt).map((a) => a.transactionId));
      const okIds = new Set(answers.filter((a) => a.status === 200).map((a) => a.transactionId));
      const decidedButRefused = [...decided].filter((id) => !okIds.has(id));
      const figures = {
        sent: answers.length,
        skipped: load.skipped,
        ok,
        refusedDuringHang: during.filter((a) => a.status === 503).length,
        medianRefusalMs: latencies[Math.floor(latencies.length / 2)],
        rssBeforeMb: Math.round(rssBefore),
        rssMaxMb: Math.round(rssMax),
        recoveryMs: firstOkAfter ? firstOkAfter.answeredAt - resumedAt : null,
        streamLength,
        inFlightAtStop: inFlightAtStop.size,
        decidedAtStop: decidedButRefused.length,
      };
      console.log(`[hang] ${JSON.stringify(figures)}`);

      expect(during.length).toBeGreaterThan(RATE_PER_SECOND * 20);
      expect(during.every((a) => a.status === 503)).toBe(true);
      // At once: not after REDIS_TIMEOUT_MS each (only the first few waited for it).
      expect(figures.medianRefusalMs).toBeLessThan(50);
      expect(rssMax - rssBefore).toBeLessThan(MAX_RSS_GROWTH_MB);
      expect(figures.recoveryMs).not.toBeNull();
      expect(figures.recoveryMs!).toBeLessThan(MAX_RECOVERY_MS);
      // Every click answered 200 is in the stream, and of those refused, only some in flight at the
      // stop are: none of the clicks answered 503 during the hang was decided when Redis resumed.
      expect([...okIds].filter((id) => !decided.has(id))).toEqual([]);
      expect(decidedButRefused.filter((id) => !inFlightAtStop.has(id))).toEqual([]);
    },
    HANG_MS + 60_000,
  );
});
