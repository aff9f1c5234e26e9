import type { Express } from 'express';
import { createServer, type Server } from 'node:http';
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

export function listen(app: Express, { port, host }: { port: number; host: string }): Promise<HttpServer> {
  const server = createServer(app);
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
