import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './support/api.js';

/** Debian's Chromium (`apt-get install chromium`, as .ci/run does); a test tool's own browser download is never used. */
const CHROMIUM = '/usr/bin/chromium';
/** Flags for a closed network: no calls home, no updates, no first-run work. */
const CHROMIUM_FLAGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** Screenshots of each run land here (gitignored); docs/live-page.png is the one the README shows. */
const SCREENSHOT_DIR = new URL('../test-results/', import.meta.url);

/** The page is behind the viewer password, as a deployment that shows it to people would have it. */
const VIEWER_PASSWORD = 'viewer-password-in-the-browser';

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.log(`[tests] skipping the browser test: no ${CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it)`);

describe.skipIf(!hasChromium)('the live page in headless Chromium', () => {
  let api: TestApi;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    api = await startTestApi({ VIEWER_PASSWORD });
    await api.block('203.0.113.66');
    // Playwright gives every launch a new, empty profile directory and runs it headless.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
    // The browser answers the server's basic-auth challenge with these, as a person would in its dialog,
    // for the page, its files, its EventSource and its fetch of /stats alike.
    page = await browser.newPage({ viewport: { width: 1200, height: 1000 }, httpCredentials: { username: 'viewer', password: VIEWER_PASSWORD } });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
  });
  afterAll(async () => {
    await browser?.close();
    await api?.close();
  });

  const counts = async () =>
    Object.fromEntries(
      await Promise.all(['total', 'clean', 'ip_blacklist', 'click_spam'].map(async (name) => [name, await page.textContent(`#count-${name}`)])),
    );

  it('shows clicks posted through the API as they are decided, fraud in red, and counts them', async () => {
    await page.goto(api.base);
    await page.locator('#connection.live').waitFor();

    for (const tx of ['spam-1', 'spam-2', 'spam-3']) await api.click('dev-browser', tx, '198.51.100.7');
    await api.click('dev-listed', 'listed-1', '203.0.113.66');

    const verdicts = { 'spam-1': 'clean', 'spam-2': 'clean', 'spam-3': 'click_spam', 'listed-1': 'ip_blacklist' };
    for (const [tx, verdict] of Object.entries(verdicts)) {
      const row = page.locator(`#feed tr[data-transaction="${tx}"]`);
      await row.waitFor();
      expect(await row.getAttribute('data-verdict')).toBe(verdict);
      expect(await row.locator('td.verdict').textContent()).toBe(verdict);
      const fraud = verdict !== 'clean';
      expect(await row.getAttribute('class')).toBe(fraud ? 'fraud' : 'clean');
      // Fraud rows are red; clean ones are not.
      const color = await row.locator('td').first().evaluate((cell) => cell.ownerDocument.defaultView!.getComputedStyle(cell).color);
      expect(color === 'rgb(198, 40, 40)').toBe(fraud);
    }
    // Newest first.
    expect(await page.locator('#feed tr').first().getAttribute('data-transaction')).toBe('listed-1');
    await expect.poll(counts).toEqual({ total: '4', clean: '2', ip_blacklist: '1', click_spam: '1' });
    expect(await page.textContent('#fraud-share')).toBe('50.0 %');
    // Its fetch of the worker's counts (GET /stats) got through the password too.
    await expect.poll(() => page.textContent('#worker-totals')).toMatch(/^Stream worker, last 15 minutes: /);
    // The chart is drawn (uPlot's canvas, with its legend of the three verdicts).
    expect(await page.locator('#chart canvas').count()).toBeGreaterThan(0);
    expect(await page.locator('#chart .u-legend').textContent()).toMatch(/clean.*ip_blacklist.*click_spam/);

    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    // The chart redraws once a second: let it show these clicks in the screenshot.
    await page.waitForTimeout(1100);
    await page.screenshot({ path: new URL('live-page.png', SCREENSHOT_DIR).pathname, fullPage: true });
    expect(problems).toEqual([]);
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

    await page.locator('#feed tr[data-transaction="after-2"]').waitFor();
    await page.locator('#feed tr[data-transaction="after-1"]').waitFor();
    await expect.poll(counts).toEqual({ total: '6', clean: '4', ip_blacklist: '1', click_spam: '1' });
    expect(await page.locator('#feed tr').count()).toBe(6);
    await page.screenshot({ path: new URL('live-page-after-restart.png', SCREENSHOT_DIR).pathname, fullPage: true });
    // Chromium logs the refused reconnection attempts while the server was down, and a 503 if the page
    // asked again while it was shutting down (the answer /events gives then); nothing else.
    expect(problems.slice(0, problemsBefore)).toEqual([]);
    expect(problems.slice(problemsBefore).filter((problem) => !/ERR_CONNECTION_REFUSED|status of 503/.test(problem))).toEqual([]);
  });
});
