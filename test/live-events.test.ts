import { connect, type Socket } from 'node:net';
import type { RedisClient } from '../src/redis/connection.js';
import { afterEach, describe, expect, it } from 'vitest';
import { redisClusterUrl, sleep, startTestApi, type ClickAnswer, type TestApi } from './support/api.js';
import { openEventStream, type EventStream, type ServerSentEvent } from './support/event-stream.js';

const apis: TestApi[] = [];
const streams: EventStream[] = [];
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  for (const api of apis.splice(0)) await api.close();
});

async function api(env: Record<string, string> = {}): Promise<TestApi> {
  const started = await startTestApi(env);
  apis.push(started);
  return started;
}

async function open(target: TestApi, headers: Record<string, string> = {}, query = ''): Promise<EventStream> {
  const stream = await openEventStream(target.base, headers, query);
  streams.push(stream);
  return stream;
}

/** Waits until the API counts `count` open event streams (a stream is joined just after its headers). */
async function untilStreams(target: TestApi, count: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (target.service.eventStreams !== count) {
    if (Date.now() > deadline) throw new Error(`${target.service.eventStreams} event streams open, expected ${count}`);
    await sleep(10);
  }
}

/** Decisions written straight to the stream, as the API writes them: far faster than posting clicks. */
async function addDecisions(admin: RedisClient, streamKey: string, count: number, tag: string): Promise<string[]> {
  const pipeline = admin.pipeline();
  for (let i = 0; i < count; i += 1) {
    pipeline.xadd(streamKey, '*', 'transaction_id', `${tag}-${i}`, 'device_id', `dev-${tag}`, 'ip', '10.0.0.9', 'status', 'clean', 'fraud_type', 'clean', 'ts', String(Date.now()));
  }
  const results = (await pipeline.exec()) ?? [];
  return results.map(([error, id]) => {
    if (error) throw error;
    return id as string;
  });
}

const ids = (events: ServerSentEvent[]) => events.map((event) => event.id);

describe('GET /events', () => {
  it('streams each new decision as an event whose id is its stream id', async () => {
    const target = await api();
    const stream = await open(target);
    expect(stream.response.status).toBe(200);
    expect(stream.response.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(stream.response.headers.get('cache-control')).toBe('no-cache, no-transform');
    await untilStreams(target, 1);

    const answers: ClickAnswer[] = [];
    for (const tx of ['t1', 't2', 't3']) answers.push(await target.click('dev-live', tx, '192.0.2.1'));
    const events = await stream.waitFor(3);
    expect(ids(events)).toEqual(answers.map((answer) => answer.stream_id));
    expect(events.map((event) => JSON.parse(event.data))).toEqual(
      // The whole decision as answered, but for what only the caller needs (its stream id and retry flag).
      answers.map(({ stream_id: _id, duplicate: _duplicate, ...decision }) => decision),
    );
    expect(events.map((event) => JSON.parse(event.data).fraud_type)).toEqual(['clean', 'clean', 'click_spam']);
    // The browser is told how soon to reconnect.
    expect(stream.raw()).toMatch(/^retry: \d+\n\n/);
  });

  it('does not stream a retried click again', async () => {
    const target = await api();
    const stream = await open(target);
    await untilStreams(target, 1);
    const first = await target.click('dev-retry', 'same');
    expect((await target.click('dev-retry', 'same')).duplicate).toBe(true);
    const next = await target.click('dev-retry', 'other');
    expect(ids(await stream.waitFor(2))).toEqual([first.stream_id, next.stream_id]);
    await sleep(100);
    expect(stream.events).toHaveLength(2);
  });

  it('resumes right after Last-Event-ID across an API restart, with no gaps or repeats', async () => {
    const first = await api();
    const before = await open(first);
    await untilStreams(first, 1);
    for (const tx of ['a1', 'a2', 'a3']) await first.click(`dev-${tx}`, tx);
    const seen = await before.waitFor(3);
    const lastSeen = seen.at(-1)!.id!;

    // An open event stream must not hold up the shutdown.
    const closing = performance.now();
    await first.close();
    apis.splice(apis.indexOf(first), 1);
    expect(performance.now() - closing).toBeLessThan(2000);
    await before.ended;

    // A new process on the same stream; clicks arrive while the page is away and while it resumes.
    const second = await api(first.config.env);
    for (const tx of ['b1', 'b2', 'b3']) await second.click(`dev-${tx}`, tx);
    const posting = (async () => {
      for (let i = 0; i < 60; i += 1) await second.click(`dev-c${i}`, `c${i}`);
    })();
    const resumed = await open(second, { 'last-event-id': lastSeen });
    await posting;

    const expected = (await second.admin.xrange(second.config.stream.key, `(${lastSeen}`, '+')).map(([id]) => id);
    expect(expected).toHaveLength(63);
    const events = await resumed.waitFor(expected.length);
    expect(ids(events)).toEqual(expected);
    await sleep(100);
    expect(resumed.events).toHaveLength(expected.length);
  });

  it('takes the resume id from ?last_event_id= too, for a page that had to open a new EventSource', async () => {
    const target = await api();
    const answers: ClickAnswer[] = [];
    for (const tx of ['q1', 'q2', 'q3']) answers.push(await target.click(`dev-${tx}`, tx));
    const stream = await open(target, {}, `?last_event_id=${answers[0]!.stream_id}`);
    expect(ids(await stream.waitFor(2))).toEqual([answers[1]!.stream_id, answers[2]!.stream_id]);
  });

  it('replays at most 10,000 missed decisions, then says which ones it skipped and goes on live', async () => {
    const target = await api();
    const [resumeAfter] = await addDecisions(target.admin, target.config.stream.key, 1, 'start');
    const missed = await addDecisions(target.admin, target.config.stream.key, 10_050, 'missed');
    const stream = await open(target, { 'last-event-id': resumeAfter! });
    const replayed = await stream.waitFor(10_000);
    expect(ids(replayed)).toEqual(missed.slice(0, 10_000));
    const [skipped] = await stream.waitFor(1, 'skipped');
    expect(JSON.parse(skipped!.data)).toEqual({ after: missed[9_999], until: missed.at(-1) });

    const live = await target.click('dev-after-skip', 'live');
    const all = await stream.waitFor(10_001);
    expect(all.at(-1)!.id).toBe(live.stream_id);
    expect(all).toHaveLength(10_001);
  });

  it.each([
    ['a far-future Last-Event-ID', () => '99999999999999999999-0'],
    ['the id of a lost stream, written by a clock an hour ahead,', () => `${Date.now() + 3_600_000}-0`],
  ])('resumes after %s from the live end, rather than staying silent until the stream catches up', async (_, lastSeen) => {
    const target = await api();
    const before = await target.click('dev-before', 'tx');
    const stream = await open(target, { 'last-event-id': lastSeen() });
    expect(stream.response.status).toBe(200);
    await untilStreams(target, 1);
    const after = await target.click('dev-after', 'tx');
    expect(ids(await stream.waitFor(1))).toEqual([after.stream_id]);
    expect(ids(stream.events)).not.toContain(before.stream_id);
  });

  it('refuses a Last-Event-ID that is not a stream id, with a clear 400', async () => {
    const target = await api();
    const res = await fetch(`${target.base}/events`, { headers: { 'last-event-id': '12; DROP' } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_last_event_id' });
  });

  it('refuses event streams past MAX_EVENT_STREAMS with a 503 that says so, and frees the place when one closes', async () => {
    const target = await api({ MAX_EVENT_STREAMS: '2' });
    const one = await open(target);
    await open(target);
    await untilStreams(target, 2);

    const refused = await fetch(`${target.base}/events`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('10');
    expect(await refused.json()).toEqual({
      error: 'too_many_event_streams',
      message: 'this server already has 2 open event streams (MAX_EVENT_STREAMS); retry later',
    });

    one.close();
    await untilStreams(target, 1);
    const again = await open(target);
    expect(again.response.status).toBe(200);
  });

  it('answers HEAD like a GET without a body, holding no place: 2 × MAX_EVENT_STREAMS HEADs leave room for the page', async () => {
    const target = await api({ MAX_EVENT_STREAMS: '2' });
    const heads = await Promise.all(Array.from({ length: 4 }, () => fetch(`${target.base}/events`, { method: 'HEAD' })));
    for (const head of heads) {
      expect(head.status).toBe(200);
      expect(head.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(await head.text()).toBe('');
    }
    expect(target.service.eventStreams).toBe(0);

    const stream = await open(target);
    expect(stream.response.status).toBe(200);
    await untilStreams(target, 1);
    const click = await target.click('dev-after-heads', 'tx');
    expect(ids(await stream.waitFor(1))).toEqual([click.stream_id]);

    // With every place taken, a HEAD hears what a GET would: 503.
    await open(target);
    await untilStreams(target, 2);
    const full = await fetch(`${target.base}/events`, { method: 'HEAD' });
    expect(full.status).toBe(503);
    expect(full.headers.get('retry-after')).toBe('10');
  });

  it('cuts a client that stops reading instead of buffering for it, and keeps serving the others', async () => {
    const target = await api();
    const reader = await open(target);
    const stalled = await stalledClient(target.service.port);
    await untilStreams(target, 2);

    // Fill the stalled client's socket buffers and then the server's allowance, a batch at a time.
    let sent = 0;
    while (target.service.eventStreams === 2) {
      if (sent >= 400_000) throw new Error(`the stalled client was never cut after ${sent} decisions`);
      await addDecisions(target.admin, target.config.stream.key, 20_000, `burst-${sent}`);
      sent += 20_000;
      await reader.waitFor(sent, 'decision', 30_000);
    }
    expect(target.service.eventStreams).toBe(1);

    // The reading client got every decision, in order, despite the stalled one.
    const more = await target.click('dev-after-cut', 'after');
    const events = await reader.waitFor(sent + 1, 'decision', 30_000);
    expect(events.at(-1)!.id).toBe(more.stream_id);
    stalled.destroy();
  }, 120_000);
});

describe('GET / and the page files', () => {
  it('gives a browser the live page, and an API client that does not take HTML a 406 that says where things are', async () => {
    const target = await api();
    const page = await fetch(target.base, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).toContain('<script src="/live/live.js" defer></script>');

    const json = await fetch(target.base, { headers: { accept: 'application/json' } });
    expect(json.status).toBe(406);
    expect(await json.json()).toMatchObject({ error: 'not_acceptable' });

    for (const [path, type] of [
      ['/live/live.js', /javascript/],
      ['/live/live.css', /text\/css/],
      ['/live/vendor/uPlot.iife.min.js', /javascript/],
      ['/live/vendor/uPlot.min.css', /text\/css/],
    ] as const) {
      const res = await fetch(`${target.base}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-type'), path).toMatch(type);
    }
    expect((await fetch(`${target.base}/live/vendor/uPlot.cjs.js`)).status).toBe(404);
  });
});

/** A client that reads the response head and then nothing more, like a browser tab that hung. */
function stalledClient(port: number): Promise<Socket> {
  return new Promise((ready, fail) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n');
    });
    socket.once('error', fail);
    socket.once('data', () => {
      socket.pause();
      ready(socket);
    });
  });
}

/**
 * Several partitions (here 4 on a single Redis, and a Redis Cluster's 12): one stream each, merged
 * in time order, with event ids that carry every stream's position, so that a page resumes exactly.
 */
const partitioned: Array<{ name: string; url: string | undefined; env: Record<string, string>; skip: boolean }> = [
  { name: '4 partitions on one Redis', url: undefined, env: { DECISION_STREAM_PARTITIONS: '4' }, skip: false },
  { name: 'a Redis Cluster', url: redisClusterUrl, env: {}, skip: redisClusterUrl === undefined },
];
describe.each(partitioned)('GET /events over $name', ({ url, env, skip }) => {
  it.skipIf(skip)(
    'streams decisions of every partition in time order, and resumes after a cursor with no gap and no repeat',
    async () => {
      const target = await startTestApi(env, url);
      apis.push(target);
      const stream = await open(target);
      await untilStreams(target, 1);
      const first: ClickAnswer[] = [];
      for (let i = 0; i < 24; i += 1) first.push(await target.click(`dev-part-${i}`, 'tx'));
      expect(new Set(first.map((answer) => target.keyspace.partitionOf(answer.device_id).index)).size).toBeGreaterThan(2);
      const events = await stream.waitFor(24);
      // Two clicks decided in the same millisecond in different partitions may come in either order:
      // the streams' ids, which the merge goes by, say nothing finer.
      const inTimeOrder = (decisions: Array<{ ts: number; device_id: string }>) => decisions.map(({ ts, device_id }) => `${ts} ${device_id}`).sort();
      const decided = (list: Array<{ data?: string }>) => list.map((event) => JSON.parse(event.data!) as { ts: number; device_id: string });
      expect(inTimeOrder(decided(events))).toEqual(inTimeOrder(first));
      const times = events.map((event) => JSON.parse(event.data).ts as number);
      expect(times).toEqual([...times].sort((a, b) => a - b));

      // A page that saw the first 10 reconnects: it gets the 14 it missed, then what comes next.
      stream.close();
      const resumed = await open(target, { 'last-event-id': events[9]!.id! });
      const later: ClickAnswer[] = [];
      for (let i = 0; i < 6; i += 1) later.push(await target.click(`dev-later-${i}`, 'tx'));
      const replayed = await resumed.waitFor(20);
      const seen = new Set(events.slice(0, 10).map((event) => JSON.parse(event.data).device_id as string));
      expect(inTimeOrder(decided(replayed))).toEqual(inTimeOrder([...first.filter((answer) => !seen.has(answer.device_id)), ...later]));
      await sleep(200);
      expect(resumed.events).toHaveLength(20);
    },
  );
});
