import type { ServerResponse } from 'node:http';

/** What Express's res.json and res.send(string) label their answers with. */
const JSON_TYPE = 'application/json; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

/**
 * Answers `body` as JSON, the whole head in one writeHead call. The click routes answer this way
 * rather than with res.json, whose general machinery (content-type lookup, charset rewriting,
 * freshness and HEAD checks, header-by-header setHeader) cost more than the serialisation itself in
 * a profile of `POST /`; the bytes on the wire are the same but for the order of the headers.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, JSON_TYPE, JSON.stringify(body));
}

export function sendText(res: ServerResponse, status: number, text: string): void {
  send(res, status, TEXT_TYPE, text);
}

function send(res: ServerResponse, status: number, type: string, payload: string): void {
  res.writeHead(status, ['Content-Type', type, 'Content-Length', String(Buffer.byteLength(payload))]);
  res.end(payload);
}
