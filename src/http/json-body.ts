import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { RequestHandler } from 'express';

/**
 * A refusal raised while the body is read. errors.ts answers it by its `type`, the names
 * body-parser gives the same refusals, so every route answers a bad body the same way.
 */
export class BodyRefused extends Error {
  /** A refusal's message is about the client's own request, never about the server: it may be shown. */
  readonly expose = true;

  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    /** For `entity.too.large`: the limit, which the answer names. */
    readonly limit?: number,
  ) {
    super(message);
  }
}

/** Decoders of the Content-Encodings a client may send (as body-parser reads them); anything else is a 415. */
const DECODERS: Record<string, () => NodeJS.ReadWriteStream> = {
  deflate: createInflate,
  gzip: createGunzip,
  br: createBrotliDecompress,
};

const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i;
const BOM = [0xef, 0xbb, 0xbf] as const;

/**
 * Reads a JSON body of at most `limitBytes` (after decoding), whatever its Content-Type: tracking
 * pixels post with navigator.sendBeacon (text/plain) and `curl -d` sends form encoding, yet both
 * carry JSON. Resolves undefined for a request with no body at all, `{}` for an empty one (as
 * body-parser did), and whatever JSON.parse gives otherwise: `null` or `5` is valid JSON, just not
 * a click, and the route's schema says so.
 *
 * Every body is UTF-8 (RFC 8259 §8.1), and checked to be so before it is parsed: the decoder would
 * turn each invalid byte into U+FFFD, so that ids differing only in invalid bytes became one id in
 * Redis (one device, one transaction). Other charsets are refused for the same reason: their
 * decoders replace what they cannot read just the same.
 *
 * A refused body is read to its end (and thrown away) before the refusal is answered, so that the
 * answer reaches a client that is still sending and the connection stays usable; the server's
 * request timeout (HTTP_REQUEST_TIMEOUT_MS) bounds how long that takes.
 *
 * It replaces express.json on the click path, where a profile of `POST /` put body-parser (type and
 * charset negotiation, iconv decoding, raw-body's stream set-up) at about 10% of the process's time:
 * this reads the bytes, checks them, and parses them once.
 */
export async function readJsonBody(req: IncomingMessage, limitBytes: number): Promise<unknown> {
  const { headers } = req;
  // No Content-Length and no Transfer-Encoding: a request without a body (RFC 9112 §6.3).
  if (headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) return undefined;

  const charset = CHARSET.exec(headers['content-type'] ?? '')?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8') {
    return refuseAfterReading(req, new BodyRefused(415, 'charset.unsupported', `unsupported charset "${charset.toUpperCase()}": bodies must be UTF-8`));
  }
  const encoding = headers['content-encoding']?.toLowerCase() ?? 'identity';
  if (encoding !== 'identity') {
    const decoder = DECODERS[encoding];
    if (decoder === undefined) return refuseAfterReading(req, new BodyRefused(415, 'encoding.unsupported', `unsupported content encoding "${encoding}"`));
    return parse(await readUpTo(req, req.pipe(decoder()) as unknown as Readable, limitBytes));
  }
  const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  if (length !== undefined && length > limitBytes) return refuseAfterReading(req, tooLarge(limitBytes));
  // A click's body comes in the same read as its headers: Node parses the rest of that read right
  // after the route is called, so one microtask later all its bytes wait in the stream's buffer, to
  // be taken at once, without the listeners and ticks of reading a stream.
  await undefined;
  if (length !== undefined && !req.readableFlowing && req.readableLength === length) return parse(length === 0 ? Buffer.alloc(0) : (req.read() as Buffer));
  return parse(await readUpTo(req, req, limitBytes));
}

/** `readJsonBody` as middleware, for routes that take `req.body` (the admin API). */
export function jsonBody(limitBytes: number): RequestHandler {
  return (req, _res, next) => {
    readJsonBody(req, limitBytes).then((body) => {
      req.body = body;
      next();
    }, next);
  };
}

function tooLarge(limitBytes: number): BodyRefused {
  return new BodyRefused(413, 'entity.too.large', `body is over ${limitBytes} bytes`, limitBytes);
}

/**
 * The bytes of `source` (the request, or its decoder), refusing once they pass `limitBytes`. A
 * small body arrives as one chunk, which is used as it is.
 */
function readUpTo(req: IncomingMessage, source: Readable, limitBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let first: Buffer | undefined;
    let more: Buffer[] | undefined;
    let length = 0;
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > limitBytes) return fail(tooLarge(limitBytes));
      if (first === undefined) first = chunk;
      else (more ??= [first]).push(chunk);
    };
    const onEnd = () => {
      cleanUp();
      resolve(more === undefined ? (first ?? Buffer.alloc(0)) : Buffer.concat(more, length));
    };
    // The client went away (or the server's request timeout cut it, answering 408 itself).
    const onClose = () => {
      if (!req.complete) fail(new BodyRefused(400, 'request.aborted', 'request aborted'));
    };
    // A decoder's error is the body's fault (not the gzip it says it is); the request's, a lost client.
    const onError = (error: Error) =>
      fail(source === req ? new BodyRefused(400, 'request.aborted', 'request aborted') : new BodyRefused(400, 'encoding.invalid', `body cannot be decoded: ${error.message}`));
    const cleanUp = () => {
      source.off('data', onData).off('end', onEnd).off('error', onError);
      req.off('close', onClose);
    };
    const fail = (refusal: BodyRefused) => {
      cleanUp();
      if (source !== req) {
        req.unpipe(source as unknown as NodeJS.WritableStream);
        source.destroy();
      }
      refuseAfterReading(req, refusal).catch(reject);
    };
    source.on('data', onData).on('end', onEnd).on('error', onError);
    req.on('close', onClose);
  });
}

/** Reads the rest of the request, throwing it away, then rejects with `refusal`. */
function refuseAfterReading(req: IncomingMessage, refusal: BodyRefused): Promise<never> {
  return new Promise((_resolve, reject) => {
    const done = () => reject(refusal);
    if (req.complete || req.destroyed) return done();
    req.once('end', done).once('close', done);
    req.resume();
  });
}

function parse(body: Buffer): unknown {
  if (!isUtf8(body)) throw new BodyRefused(400, 'entity.invalid_utf8', 'body is not valid UTF-8');
  // A byte order mark is allowed before UTF-8 JSON (RFC 8259 §8.1: may be ignored), as body-parser ignored it.
  const start = body[0] === BOM[0] && body[1] === BOM[1] && body[2] === BOM[2] ? BOM.length : 0;
  const text = body.toString('utf8', start);
  if (text.length === 0) return {};
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new BodyRefused(400, 'entity.parse.failed', (error as Error).message);
  }
}
