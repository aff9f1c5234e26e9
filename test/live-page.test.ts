import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startTestApi, type ClickAnswer, type TestApi } from './support/api.js';
import { startTestWorker, type TestWorker } from './support/worker.js';

/** Debian's Chromium (`apt-get install chromium`, as .ci/run does); a test tool's own browser download is never used. */
const CHROMIUM = '/usr/bin/chromium';
/** Flags for a closed network: no calls home, no updates, no first-run work. */
const CHROMIUM_FLAGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Screenshots of each run land here (gitignored); docs/live-page.png is the one the README shows. */
const SCREENSHOT_DIR = new URL('../test-results/', import.meta.url);

/** The page is behind the viewer password, as a deployment that shows it to people would have it. */
const VIEWER_PASSWORD = 'viewer-password-in-the-browser';
const ADMIN_TOKEN = 'admin-token-typed-into-the-page';
/** Address floods in shadow mode, so that decisions carry shadow hits: more than 3 clicks of one address in 10 s. */
const RULES = JSON.stringify({ ip_flood: { mode: 'shadow', threshold: 3, window_sec: 10 } });
/** A zone an hour or two off UTC, so that the page has to say which one its times are in. */
const BROWSER = { locale: 'en-US', timezoneId: 'Europe/Berlin' };
const FULL_TIME = /^\d{2}\/\d{2}\/\d{4}, \d{2}:\d{2}:\d{2}\.\d{3} GMT\+[12]$/;

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.log(`[tests] skipping the browser test: no ${CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it)`);

async function postBatch(api: TestApi, clicks: Array<{ device_id: string; ip: string; transaction_id: string }>): Promise<ClickAnswer[]> {
  const res = await fetch(`${api.base}/batch`, { method: 'POST', body: JSON.stringify({ clicks }) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { results: ClickAnswer[] }).results;
}

describe.skipIf(!hasChromium)('the live page in headless Chromium', () => {
  let api: TestApi;
  let worker: TestWorker;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    api = await startTestApi({ VIEWER_PASSWORD, ADMIN_TOKEN, RULES });
    worker = await startTestWorker(api.config, api.redisUrl);
    await api.block('203.0.113.66');
    // Playwright gives every launch a new, empty profile directory and runs it headless.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
    // The browser answers the server's basic-auth challenge with these, as a person would in its dialog,
    // for the page, its files, its EventSource and its fetches alike.
    context = await browser.newContext({ viewport: { width: 1200, height: 1000 }, httpCredentials: { username: 'viewer', password: VIEWER_PASSWORD }, ...BROWSER });
    page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()} (${message.location().url})`);
    });
  });
  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await api?.close();
  });

  const counts = async () =>
    Object.fromEntries(
      await Promise.all(['total', 'clean', 'ip_blacklist', 'click_spam'].map(async (name) => [name, await page.textContent(`#count-${name}`)])),
    );
  const feedRows = (selector = '') => page.locator(`#feed tr${selector}`);

  /** The chart's legend, label -> value, with the mouse over `second` (or off the chart). */
  async function legendAt(second: number | undefined): Promise<Record<string, string>> {
    if (second === undefined) await page.mouse.move(5, 5);
    else {
      // The page's uPlot instance, a global of its script: where that second is on the x axis.
      const x = (await page.evaluate(`chart.valToPos(${second}, 'x')`)) as number;
      const box = (await page.locator('#chart .u-over').boundingBox())!;
      await page.mouse.move(box.x + x, box.y + box.height / 2);
    }
    const rows = await page.locator('#chart .u-legend .u-series').evaluateAll((series) =>
      series.map((row) => [row.querySelector('.u-label')!.textContent!, row.querySelector('.u-value')!.textContent!]),
    );
    return Object.fromEntries(rows);
  }

  it('opens with the last minutes already charted from the stream worker, and a legend with values', async () => {
    // Decided and counted before the page opens: 4 clicks of one device (2 clean, 2 click_spam), 3 clean ones.
    const clicks = [
      ...Array.from({ length: 4 }, (_, i) => ({ device_id: 'dev-history', ip: '198.51.100.40', transaction_id: `h-${i}` })),
      ...Array.from({ length: 3 }, (_, i) => ({ device_id: `dev-history-${i}`, ip: '198.51.100.41', transaction_id: 'h' })),
    ];
    const answers = await postBatch(api, clicks);
    await worker.drained();
    const perSecond = new Map<number, Record<string, number>>();
    for (const { ts, fraud_type } of answers) {
      const second = Math.floor(ts / 1000);
      const bucket = perSecond.get(second) ?? {};
      bucket[fraud_type] = (bucket[fraud_type] ?? 0) + 1;
      perSecond.set(second, bucket);
    }
    // Those seconds are over before the page's feed starts.
    await sleep(1100);

    await page.goto(api.base);
    await page.locator('#connection.live').waitFor();
    await expect.poll(() => page.textContent('#chart-status')).toMatch(/^Before .*: counted by the stream worker \(\d+ minutes\); since then: live\.$/);
    for (const [second, bucket] of perSecond) {
      const legend = await legendAt(second);
      expect(legend['Clean'], `second ${second}`).toBe(`${bucket.clean ?? 0}/s`);
      expect(legend['Click spam (device too fast)'], `second ${second}`).toBe(`${bucket.click_spam ?? 0}/s`);
      expect(legend['Time']).toMatch(/^\d{2}\/\d{2}\/\d{4}, \d{2}:\d{2}:\d{2} GMT\+[12]$/);
    }
    // Off the chart, the legend shows the last full second, not placeholders.
    const latest = await legendAt(undefined);
    expect(latest['Time']).toMatch(/\(last full second\)$/);
    expect(Object.values(latest).join(' ')).not.toContain('--');
    // Every verdict has its line, named as /stats labels it.
    expect(Object.keys(latest)).toEqual([
      'Time', 'Clean', 'Blacklisted address', 'Blacklisted address range', 'Click spam (device too fast)',
      'Address flood (address too fast)', 'Device farm (too many devices on one address)',
    ]);
    // The stream worker's totals came through the password too.
    await expect.poll(() => page.textContent('#worker-totals')).toMatch(/^Stream worker, last 15 minutes: 5 Clean · 0 Blacklisted address · .*2 Click spam/);
  });

  it('shows clicks as they are decided: readable verdicts, why, shadow hits, full times with the zone, fraud in red', async () => {
    for (const tx of ['spam-1', 'spam-2', 'spam-3']) await api.click('dev-browser', tx, '198.51.100.7');
    await api.click('dev-listed', 'listed-1', '203.0.113.66');
    // A fourth click of one address in 10 s: over the shadow ip_flood rule, which changes no verdict.
    for (const device of ['dev-flood-1', 'dev-flood-2', 'dev-flood-3', 'dev-flood-4']) await api.click(device, 'flood', '198.51.100.9');

    const expected = {
      'spam-1': ['clean', 'Clean', ''],
      'spam-3': ['click_spam', 'Click spam (device too fast)', '3 in 10 s (limit 2)'],
      'listed-1': ['ip_blacklist', 'Blacklisted address', 'matched 203.0.113.66'],
    };
    for (const [tx, [verdict, label, why]] of Object.entries(expected)) {
      const row = feedRows(`[data-transaction="${tx}"]`);
      await row.waitFor();
      expect(await row.getAttribute('data-verdict')).toBe(verdict);
      expect(await row.locator('td.verdict').textContent()).toBe(label);
      expect(await row.locator('td.why').textContent()).toBe(why);
      expect(await row.locator('td.time').textContent()).toMatch(FULL_TIME);
      const fraud = verdict !== 'clean';
      expect(await row.getAttribute('class')).toBe(fraud ? 'fraud' : 'clean');
      // Fraud rows are red; clean ones are not.
      const color = await row.locator('td').first().evaluate((cell) => cell.ownerDocument.defaultView!.getComputedStyle(cell).color);
      expect(color === 'rgb(198, 40, 40)').toBe(fraud);
    }
    const flooded = feedRows('[data-transaction="flood"]').first();
    expect(await flooded.locator('td.device').textContent()).toBe('dev-flood-4');
    expect(await flooded.locator('td.why').textContent()).toBe('Shadow: Address flood (address too fast): 4 in 10 s (limit 3)');
    expect(await flooded.locator('td.verdict').textContent()).toBe('Clean');

    await expect.poll(counts).toEqual({ total: '8', clean: '6', ip_blacklist: '1', click_spam: '1' });
    expect(await page.textContent('#fraud-share')).toBe('25.0 %');
    expect(await page.textContent('.count[data-verdict="click_spam"] dt')).toBe('Click spam (device too fast)');
  });

  it('pauses and resumes the feed, filters it by verdict, and searches it by device or address', async () => {
    await page.click('#pause');
    expect(await page.getAttribute('#pause', 'aria-pressed')).toBe('true');
    await api.click('dev-paused', 'paused-1', '198.51.100.10');
    await expect.poll(() => page.textContent('#feed-status')).toMatch(/^Paused: 1 new decisions not shown/);
    expect(await feedRows('[data-transaction="paused-1"]').count()).toBe(0);
    // The counts go on meanwhile.
    await expect.poll(() => page.textContent('#count-total')).toBe('9');
    await page.click('#pause');
    await feedRows('[data-transaction="paused-1"]').waitFor();
    expect(await page.textContent('#pause')).toBe('Pause');

    await page.selectOption('#filter-verdict', 'click_spam');
    await expect.poll(() => feedRows().evaluateAll((rows) => rows.map((row) => row.getAttribute('data-verdict')))).toEqual(['click_spam']);
    // New decisions that match come in; others do not.
    await api.click('dev-browser', 'spam-4', '198.51.100.7');
    await api.click('dev-other', 'other-1', '198.51.100.11');
    await feedRows('[data-transaction="spam-4"]').waitFor();
    expect(await feedRows().evaluateAll((rows) => rows.map((row) => row.getAttribute('data-transaction')))).toEqual(['spam-4', 'spam-3']);

    await page.selectOption('#filter-verdict', 'fraud');
    await expect.poll(() => feedRows().count()).toBe(3);
    await page.selectOption('#filter-verdict', '');
    await page.fill('#filter-text', 'DEV-LISTED');
    await expect.poll(() => feedRows().evaluateAll((rows) => rows.map((row) => row.querySelector('.device')!.textContent))).toEqual(['dev-listed']);
    await page.fill('#filter-text', '198.51.100.7');
    await expect.poll(() => feedRows().count()).toBe(4);
    expect(await feedRows().evaluateAll((rows) => rows.every((row) => row.querySelector('.ip')!.textContent === '198.51.100.7'))).toBe(true);
    await page.fill('#filter-text', '');
    await expect.poll(() => feedRows().count()).toBe(11);
  });

  it('names the injected devices and addresses in the top offenders table, heaviest first, and updates it live', async () => {
    // Spam devices of 12, 10 and 8 clicks, each from an address of its own (10, 8 and 6 of them
    // click_spam), and 4 more clicks from the blacklisted address (one before: 5 in all), each from a device of its own.
    const clicks = [
      ...[12, 10, 8].flatMap((count, i) => Array.from({ length: count }, (_, n) => ({ device_id: `spammer-${i + 1}`, ip: `10.9.0.${i + 1}`, transaction_id: `s${n}` }))),
      ...Array.from({ length: 4 }, (_, n) => ({ device_id: `listed-${n}`, ip: '203.0.113.66', transaction_id: 'l' })),
    ];
    await postBatch(api, clicks);
    await worker.drained();

    const table = (id: string) =>
      page.locator(`#${id} tbody tr`).evaluateAll((rows) =>
        rows.map((row) => [
          row.getAttribute('data-id'),
          row.querySelector('.fraud-clicks')?.textContent,
          [...row.querySelectorAll('.verdict-part')].map((part) => part.textContent).join(', '),
        ]),
      );
    // Refreshed every 5 s, with no reload.
    await expect.poll(async () => (await table('offending-devices')).slice(0, 3), { timeout: 15_000 }).toEqual([
      ['spammer-1', '10', 'Click spam (device too fast) 10'],
      ['spammer-2', '8', 'Click spam (device too fast) 8'],
      ['spammer-3', '6', 'Click spam (device too fast) 6'],
    ]);
    expect((await table('offending-addresses')).slice(0, 4)).toEqual([
      ['10.9.0.1', '10', 'Click spam (device too fast) 10'],
      ['10.9.0.2', '8', 'Click spam (device too fast) 8'],
      ['10.9.0.3', '6', 'Click spam (device too fast) 6'],
      ['203.0.113.66', '5', 'Blacklisted address 5'],
    ]);
    // The last 5 minutes hold all of it too.
    await page.selectOption('#offenders-window', '5');
    await expect.poll(async () => (await table('offending-devices'))[0]).toEqual(['spammer-1', '10', 'Click spam (device too fast) 10']);
    // An offender's name shows its decisions in the feed.
    await page.click('#offending-devices tr[data-id="spammer-2"] button.link');
    expect(await page.inputValue('#filter-text')).toBe('spammer-2');
    await expect.poll(() => feedRows().count()).toBe(10);
    await page.fill('#filter-text', '');
  });

  it('blocks an offender from the table once given the admin token, kept in this tab only; its next click is ip_blacklist', async () => {
    const blockButtons = page.locator('#offending-addresses button.block');
    // Without the token: no such control, only the form that asks for it.
    expect(await page.isVisible('#admin-unlock')).toBe(true);
    expect(await blockButtons.count()).toBe(0);

    await page.fill('#admin-token', 'not-the-admin-token');
    await page.click('#admin-unlock button[type="submit"]');
    await expect.poll(() => page.textContent('#admin-message')).toBe('The admin API refused this token.');
    expect(await blockButtons.count()).toBe(0);

    await page.fill('#admin-token', ADMIN_TOKEN);
    await page.click('#admin-unlock button[type="submit"]');
    await page.locator('#admin-on').waitFor();
    expect(await page.isVisible('#admin-unlock')).toBe(false);
    await expect.poll(() => blockButtons.count()).toBeGreaterThan(3);
    // On a narrower screen too, the two tables, their Block buttons and the feed stay on the page:
    // long verdict labels wrap rather than push the page wider than the window (the chart follows
    // the window's width once the resize is handled).
    await page.setViewportSize({ width: 1000, height: 1000 });
    await expect.poll(() => page.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth')).toBe(0);
    await page.setViewportSize({ width: 1200, height: 1000 });

    await page.click('#offending-addresses tr[data-id="10.9.0.2"] button.block');
    expect(await page.textContent('#block-ip')).toBe('10.9.0.2');
    expect(await page.inputValue('#block-reason')).toBe('Top offender from the live page: 8 fraud clicks in 5 minutes (8 Click spam (device too fast))');
    await page.fill('#block-reason', 'spam bursts, blocked from the live page');
    await page.selectOption('#block-ttl', '1h');
    const blockedAt = Date.now();
    await page.click('#block-form button[type="submit"]');
    await expect.poll(() => page.textContent('#admin-message')).toMatch(/^Blocked 10\.9\.0\.2 until .*: its next click is ip_blacklist\.$/);
    expect(await page.isVisible('#block-dialog')).toBe(false);

    expect((await api.click('dev-next', 'after-block', '10.9.0.2')).fraud_type).toBe('ip_blacklist');
    const entry = (await (await fetch(`${api.base}/admin/blacklist/10.9.0.2`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as {
      entry: { reason: string; source: string; expires_at: number };
    };
    expect(entry.entry).toMatchObject({ reason: 'spam bursts, blocked from the live page', source: 'live-page' });
    expect(entry.entry.expires_at - blockedAt).toBeGreaterThan(3_590_000);
    expect(entry.entry.expires_at - blockedAt).toBeLessThan(3_610_000);

    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    // The chart redraws once a second: let it show the latest clicks in the screenshot.
    await page.waitForTimeout(1100);
    await page.mouse.move(5, 5);
    await page.screenshot({ path: new URL('live-page.png', SCREENSHOT_DIR).pathname, fullPage: true });

    // The token stays with this tab (a reload keeps it), not with another tab of the same browser.
    await page.reload();
    await page.locator('#admin-on').waitFor();
    const otherTab = await context.newPage();
    try {
      await otherTab.goto(api.base);
      await otherTab.locator('#admin-unlock').waitFor();
      expect(await otherTab.locator('#offending-addresses button.block').count()).toBe(0);
    } finally {
      await otherTab.close();
    }
    // The one refused token, and nothing else, made the browser log an error.
    expect(problems.filter((problem) => !/status of 401 .*\/admin\/blacklist\?limit=1\)$/.test(problem))).toEqual([]);
    expect(problems).toHaveLength(1);
  });

  it('offers no blocking where the admin API is off', async () => {
    const noAdmin = await startTestApi();
    const other = await browser.newPage(BROWSER);
    try {
      await other.goto(noAdmin.base);
      await other.locator('#connection.live').waitFor();
      await expect.poll(() => other.textContent('#offenders-status')).toMatch(/updated every 5 s$/);
      expect(await other.isVisible('#admin-unlock')).toBe(false);
      expect(await other.isVisible('#admin-on')).toBe(false);
      expect(await other.locator('button.block').count()).toBe(0);
    } finally {
      await other.close();
      await noAdmin.close();
    }
  });

  it('is refused to a browser without the viewer password', async () => {
    const stranger = await browser.newPage();
    try {
      // Headless Chromium has no one to ask for the password: it gives up on the challenge.
      await expect(stranger.goto(api.base)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
      expect(await stranger.locator('#feed').count()).toBe(0);
    } finally {
      await stranger.close();
    }
  });

  it('reconnects by itself after a server restart and shows what was decided meanwhile, once each', async () => {
    // A decision the page has seen: its id is where the page resumes from.
    await api.click('dev-before', 'before-restart', '198.51.100.8');
    await feedRows('[data-transaction="before-restart"]').waitFor();
    const before = Number(await page.textContent('#count-total'));
    const port = api.service.port;
    const env = { ...api.config.env, PORT: String(port) };
    const problemsBefore = problems.length;
    await api.close();
    await page.locator('#connection.connecting').waitFor();

    // Same stream, same port: clicks decided by the new process before the page is back.
    api = await startTestApi(env);
    await api.click('dev-after', 'after-1', '198.51.100.8');
    await page.locator('#connection.live').waitFor({ timeout: 15_000 });
    await api.click('dev-after', 'after-2', '198.51.100.8');

    await feedRows('[data-transaction="after-2"]').waitFor();
    await feedRows('[data-transaction="after-1"]').waitFor();
    await expect.poll(() => page.textContent('#count-total')).toBe(String(before + 2));
    expect(await feedRows('[data-transaction^="after-"]').count()).toBe(2);
    await page.screenshot({ path: new URL('live-page-after-restart.png', SCREENSHOT_DIR).pathname, fullPage: true });
    // Before the restart, only the one refused token of the blocking test. Chromium logs the refused
    // reconnection attempts while the server was down, and a 503 if the page asked again while it was
    // shutting down (the answer /events gives then); nothing else.
    expect(problems.slice(0, problemsBefore).filter((problem) => !/status of 401 .*\/admin\/blacklist\?limit=1\)$/.test(problem))).toEqual([]);
    expect(problems.slice(problemsBefore).filter((problem) => !/ERR_CONNECTION_REFUSED|status of 503/.test(problem))).toEqual([]);
  });
});
