import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { sleep, startTestApi, untilNoStreams, type TestApi } from './support/api.js';
import { openEventStream } from './support/event-stream.js';

const PASSWORD = 'viewer-password-0123';
const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const VIEWER = basic('viewer', PASSWORD);
const HTML = { accept: 'text/html' };

/** The read-only views: every click's address and device (the page, its stream), the traffic's volume (/stats) or its heaviest sources (/offenders). */
const VIEWS = [
  ['GET', '/', HTML],
  ['GET', '/live/live.js', {}],
  ['GET', '/live/vendor/uPlot.iife.min.js', {}],
  ['GET', '/live/settings.json', {}],
  ['GET', '/stats', {}],
  ['GET', '/offenders', {}],
  ['GET', '/events', {}],
  ['HEAD', '/events', {}],
] as const;

/** Stops reading an event stream, and waits until the API has let it go before the next request. */
async function closeStream(api: TestApi, res: Response): Promise<void> {
  await res.body?.cancel();
  await untilNoStreams(api);
}

describe('VIEWER_PASSWORD protects the read-only views', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ VIEWER_PASSWORD: PASSWORD, MAX_EVENT_STREAMS: '2' });
  });
  afterAll(() => api.close());

  const request = (method: string, path: string, headers: Record<string, string>) => fetch(`${api.base}${path}`, { method, headers });

  it.each([
    ['no credentials', {}],
    ['a wrong password', basic('viewer', 'not-the-password')],
    ['a wrong user name', basic('admin', PASSWORD)],
    ['the password with no user name', basic('', PASSWORD)],
    ['another scheme', { authorization: `Bearer ${PASSWORD}` }],
    ['credentials that are not base64', { authorization: 'Basic !!!' }],
  ])('answers %s with a 401 challenge that browsers and EventSource answer by themselves', async (_, credentials) => {
    for (const [method, path, headers] of VIEWS) {
      const res = await request(method, path, { ...headers, ...credentials });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Basic realm="click-fraud live view (user viewer)", charset="UTF-8"');
      if (method === 'GET') {
        expect(await res.json()).toEqual({ error: 'unauthorized', message: 'this view needs the viewer password (HTTP basic auth, user "viewer")' });
      }
    }
    // Refused before the stream: no place taken.
    expect(api.service.eventStreams).toBe(0);
  });

  it('opens every view to the user viewer with the password', async () => {
    for (const [method, path, headers] of VIEWS) {
      const res = await request(method, path, { ...headers, ...VIEWER });
      expect(res.status, `${method} ${path}`).toBe(200);
      if (path === '/events' && method === 'GET') await closeStream(api, res);
      else await res.arrayBuffer();
    }
    const stream = await openEventStream(api.base, VIEWER);
    try {
      while (api.service.eventStreams === 0) await sleep(10);
      const click = await api.click('dev-viewer', 'tx', '192.0.2.77');
      const [event] = await stream.waitFor(1);
      expect(event!.id).toBe(click.stream_id);
      expect(JSON.parse(event!.data)).toMatchObject({ ip: '192.0.2.77', device_id: 'dev-viewer' });
    } finally {
      stream.close();
      await untilNoStreams(api);
    }
  });

  it('never asks for it on clicks, batches, probes or the admin API', async () => {
    expect((await api.click('dev-open', 'tx')).fraud_type).toBe('clean');
    const batch = await fetch(`${api.base}/batch`, { method: 'POST', body: JSON.stringify({ clicks: [{ device_id: 'dev-open', ip: '10.0.0.1', transaction_id: 'b' }] }) });
    expect(batch.status).toBe(200);
    expect((await fetch(`${api.base}/healthz`)).status).toBe(200);
    expect((await fetch(`${api.base}/readyz`)).status).toBe(200);
    // The admin API answers for itself (here: off, as no ADMIN_TOKEN is set).
    expect((await fetch(`${api.base}/admin/blacklist`)).status).toBe(404);
  });
});

describe('without VIEWER_PASSWORD', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi();
  });
  afterAll(() => api.close());

  it('the views stay open, as before', async () => {
    for (const [method, path, headers] of VIEWS) {
      const res = await fetch(`${api.base}${path}`, { method, headers });
      expect(res.status, `${method} ${path}`).toBe(200);
      if (path === '/events' && method === 'GET') await closeStream(api, res);
      else await res.arrayBuffer();
    }
  });
});

describe('the VIEWER_PASSWORD setting', () => {
  it('must be at least 12 characters, and a short one is not printed', () => {
    expect(parseConfig({ VIEWER_PASSWORD: 'short-pw' })).toEqual({
      ok: false,
      problems: ['VIEWER_PASSWORD must be at least 12 characters (got 8 characters, not shown: VIEWER_PASSWORD is secret)'],
    });
  });
});
