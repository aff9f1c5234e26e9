import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

/**
 * A worker running alone (ROLE=worker) has no API to be scraped through: this answers Prometheus'
 * `GET /metrics` on a port of its own, and nothing else.
 */
export function serveMetrics(registry: Registry, { port, host }: { port: number; host: string }): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'not_found', message: 'this port answers GET /metrics only' }));
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: Error) => res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'metrics_unavailable', message: error.message })),
    );
  });
  return new Promise((ready, fail) => {
    server.once('error', fail);
    server.listen(port, host, () =>
      ready({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise((closed) => server.close(() => closed()).closeAllConnections()),
      }),
    );
  });
}
