import { isUtf8 } from 'node:buffer';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type RequestHandler } from 'express';

/** A refusal raised while the body is read; errors.ts answers it by its `type`, as body-parser's own. */
class BodyRefused extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Every body is UTF-8 (RFC 8259 §8.1), and checked to be so before it is parsed: the decoder would
 * turn each invalid byte into U+FFFD, so that ids differing only in invalid bytes became one id in
 * Redis (one device, one transaction). Other charsets are refused for the same reason: their
 * decoders replace what they cannot read just the same.
 */
function refuseAllButUtf8(_req: IncomingMessage, _res: ServerResponse, body: Buffer, charset: string): void {
  if (charset !== 'utf-8') throw new BodyRefused(415, 'charset.unsupported', `unsupported charset "${charset.toUpperCase()}": bodies must be UTF-8`);
  if (!isUtf8(body)) throw new BodyRefused(400, 'entity.invalid_utf8', 'body is not valid UTF-8');
}

/**
 * Reads a JSON body of at most `limitBytes`, whatever its Content-Type: tracking pixels post with
 * navigator.sendBeacon (text/plain) and `curl -d` sends form encoding, yet both carry JSON. Not
 * strict: `null` or `5` is valid JSON, just not a click, and the route's schema says so.
 */
export function jsonBody(limitBytes: number): RequestHandler {
  return express.json({ limit: limitBytes, type: () => true, strict: false, verify: refuseAllButUtf8 });
}
