import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, startTestApi, untilNoStreams, type TestApi } from './support/api.js';
import { openEventStream } from './support/event-stream.js';

const REQUEST_TIMEOUT_MS = 1000;
/** Well below the request timeout, so that a cut before it can only be the headers timeout's. */
const HEADERS_TIMEOUT_MS = 300;
/** The server looks for expired requests every HEADERS_TIMEOUT_MS here (at most a second, server.ts); more for a busy machine. */
const LATENESS_MS = HEADERS_TIMEOUT_MS + 500;

interface Cut {
  /** Milliseconds from the first byte sent until the server closed the connection. */
  afterMs: number;
  /** What the server answered before closing. */
  answer: string;
}

/** Opens a raw connection, sends `start`, then whatever `more` sends; resolves when the server closes it. */
function rawRequest(port: number, start: string, more?: (socket: Socket) => void): Promise<Cut> {
  return new Promise((done, fail) => {
    const began = performance.now();
    let answer = '';
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(start);
      more?.(socket);
    });
    socket.on('data', (chunk) => (answer += chunk.toString()));
    socket.once('error', fail);
    socket.once('close', () => done({ afterMs: performance.now() - began, answer }));
  });
}

describe('request timeouts (HTTP_REQUEST_TIMEOUT_MS, HTTP_HEADERS_TIMEOUT_MS)', () => {
  let api: TestApi;
  beforeAll(async () => {
    api = await startTestApi({ HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS) });
  });
  afterAll(() => api.close());

  const snapshot = async () => ({ keys: await api.writtenKeys(), streamLength: await api.admin.xlen(api.config.stream.key) });

  it('cuts stalled /batch uploads with 408 once the request timeout has passed, deciding nothing', async () => {
    const before = await snapshot();
    const head = `POST /batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 450000\r\n\r\n`;
    const part = `{"clicks":[${'{"device_id":"d","ip":"10.0.0.1","transaction_id":"t"},'.repeat(200)}`;
    // Many at once, as a client that stalls its uploads would open them.
    const cuts = await Promise.all(Array.from({ length: 20 }, () => rawRequest(api.service.port, head + part)));
    for (const cut of cuts) {
      expect(cut.answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(cut.afterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
      expect(cut.afterMs).toBeLessThan(REQUEST_TIMEOUT_MS + LATENESS_MS);
    }
    expect(await snapshot()).toEqual(before);
  });

  it('cuts an upload that keeps trickling: the timeout is for the whole request, not for silence', async () => {
    let trickle: NodeJS.Timeout | undefined;
    const cut = await rawRequest(api.service.port, 'POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000\r\n\r\n{', (socket) => {
      trickle = setInterval(() => socket.writable && socket.write(' '), 100);
    });
    clearInterval(trickle);
    expect(cut.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(cut.afterMs).toBeLessThan(REQUEST_TIMEOUT_MS + LATENESS_MS);
  });

  it('cuts a client that never finishes its headers once the headers timeout has passed', async () => {
    const cut = await rawRequest(api.service.port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
    expect(cut.answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(cut.afterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(cut.afterMs).toBeLessThan(REQUEST_TIMEOUT_MS);
  });

  it('keeps an /events stream open well past the request timeout: it limits receiving a request, not the response', async () => {
    const stream = await openEventStream(api.base);
    try {
      expect(stream.response.status).toBe(200);
      await sleep(REQUEST_TIMEOUT_MS + LATENESS_MS);
      const click = await api.click('dev-after-timeout', 'tx');
      const [event] = await stream.waitFor(1);
      expect(event!.id).toBe(click.stream_id);
      expect(api.service.eventStreams).toBe(1);
    } finally {
      stream.close();
      await untilNoStreams(api);
    }
  });

  it('still answers requests that arrive in time', async () => {
    expect((await api.click('dev-in-time', 'tx')).fraud_type).toBe('clean');
  });
});
