import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApi, type TestApi } from './support/api.js';

/** As in the live page's test: Debian's Chromium, never a downloaded browser. */
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const SCREENSHOT_DIR = new URL('../test-results/', import.meta.url);

const hasChromium = existsSync(CHROMIUM);

describe.skipIf(!hasChromium)('the API docs page in headless Chromium', () => {
  let api: TestApi;
  let browser: Browser;

  beforeAll(async () => {
    api = await startTestApi();
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  });
  afterAll(async () => {
    await browser?.close();
    await api?.close();
  });

  it('shows every operation of /openapi.json under the strict content policy, with nothing loaded from elsewhere', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 1600 } });
    const problems: string[] = [];
    const elsewhere: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
    });
    page.on('request', (request) => {
      if (!request.url().startsWith(api.base)) elsewhere.push(request.url());
    });

    const res = await page.goto(`${api.base}/docs`);
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.locator('section.operation').first().waitFor();

    const doc = (await (await fetch(`${api.base}/openapi.json`)).json()) as { info: { version: string }; paths: Record<string, Record<string, unknown>> };
    const operations = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method}${path}`));
    const shown = await page.locator('section.operation h2').evaluateAll((headings) => headings.map((h) => `${h.querySelector('.method')!.textContent}${h.querySelector('code')!.textContent}`));
    expect(shown).toEqual(operations);
    expect(await page.textContent('#title')).toBe(`click-fraud-api ${doc.info.version}`);
    // The named examples and the shared schemas are there too.
    expect(await page.locator('section.operation', { hasText: 'Decide one click' }).textContent()).toContain('example: ip_blacklist');
    expect(await page.locator('#schemas section.schema h3').allTextContents()).toContain('Decision');

    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: new URL('docs-page.png', SCREENSHOT_DIR).pathname });
    expect(problems).toEqual([]);
    expect(elsewhere).toEqual([]);
  });
});
