import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HttpServer {
  server: Server;
  port: number;
  /**
   * Stops accepting, lets in-flight requests finish, and closes keep-alive connections as they go
   * idle; connections still busy after `timeoutMs` are cut.
   */
  close(timeoutMs: number): Promise<void>;
}

export interface ListenSettings {
  port: number;
  host: string;
  /** Longest a client may take to send a whole request (HTTP_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs: number;
  /** Longest a client may take to send its request headers (HTTP_HEADERS_TIMEOUT_MS). */
  headersTimeoutMs: number;
}

/** How often the server looks for requests past their timeouts: a timeout fires at most this late. */
const MAX_TIMEOUT_CHECK_INTERVAL_MS = 1000;

/**
 * Serves `app`. Node's default lets a client take 300 s to send one request, so that stalled
 * uploads of large batches hold their memory for minutes; here a request must arrive within
 * `requestTimeoutMs` (a 408 and a closed connection otherwise). Both timeouts bound only the
 * receiving of a request: a long response such as the `/events` stream is not cut by them.
 */
export function listen(app: RequestListener, { port, host, requestTimeoutMs, headersTimeoutMs }: ListenSettings): Promise<HttpServer> {
  const server = createServer(
    {
      requestTimeout: requestTimeoutMs,
      headersTimeout: headersTimeoutMs,
      connectionsCheckingInterval: Math.min(MAX_TIMEOUT_CHECK_INTERVAL_MS, headersTimeoutMs),
    },
    app,
  );
  return new Promise((ready, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      ready({ server, port: (server.address() as AddressInfo).port, close: (timeoutMs) => closeServer(server, timeoutMs) });
    });
  });
}

function closeServer(server: Server, timeoutMs: number): Promise<void> {
  return new Promise((closed) => {
    server.close(() => {
      clearInterval(idleSweep);
      clearTimeout(deadline);
      closed();
    });
    // A keep-alive connection whose request finished after close() began would otherwise stay
    // open until its keep-alive timeout.
    const idleSweep = setInterval(() => server.closeIdleConnections(), 50);
    const deadline = setTimeout(() => server.closeAllConnections(), timeoutMs);
    server.closeIdleConnections();
  });
}
