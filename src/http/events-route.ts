import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import type { LiveDecision } from '../domain/decision-entry.js';
import type { DecisionFeed, FeedEntry, FeedSubscriber, Subscription } from '../live/decision-feed.js';
import { sendError } from './errors.js';

export interface EventStreamSettings {
  /** Most event streams open at once (MAX_EVENT_STREAMS); past it a new one is refused with 503. */
  maxStreams: number;
  /** A comment line this often keeps proxies from closing a quiet stream and finds dead clients. */
  heartbeatMs: number;
  /** Reconnection delay suggested to the browser (`retry:`). */
  retryMs: number;
  /** Most bytes a client may leave unsent before it is dropped; it reconnects and resumes. */
  maxUnsentBytes: number;
}

export interface LiveEvents {
  /** `GET /events`: the decision stream as server-sent events. */
  route: RequestHandler;
  /** Event streams now open. */
  readonly open: number;
  /** Ends every open event stream and stops the feed, so that they never hold up a shutdown. */
  close(): Promise<void>;
}

const SHUTTING_DOWN = { error: 'shutting_down', message: 'the server is shutting down; reconnect in a moment' };
/** Suggested wait after a refusal for too many streams; the page backs off on its own too. */
const REFUSED_RETRY_AFTER_SEC = 10;

const EVENT_STREAM_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  Connection: 'keep-alive',
  // Tells nginx-style proxies not to hold events back in their buffers.
  'X-Accel-Buffering': 'no',
};

/**
 * One decision as a server-sent event; its id says where the client is in the decision streams
 * (the stream id with one partition), so `Last-Event-ID` resumes right after it.
 */
export function formatDecisionEvent(id: string, decision: LiveDecision): string {
  return `id: ${id}\nevent: decision\ndata: ${JSON.stringify(decision)}\n\n`;
}

/** Where a client asks to resume: the `Last-Event-ID` header EventSource sends, or `?last_event_id=`. */
function resumeId(req: Request, feed: DecisionFeed): { ok: true; id: string | undefined } | { ok: false } {
  const header = req.get('last-event-id');
  const query = req.query.last_event_id;
  const id = header !== undefined && header !== '' ? header : query;
  if (id === undefined || id === '') return { ok: true, id: undefined };
  return typeof id === 'string' && feed.parseResume(id) ? { ok: true, id } : { ok: false };
}

/**
 * Serves the decision feed as server-sent events to at most `maxStreams` clients. A client whose
 * connection does not keep up is cut once `maxUnsentBytes` wait for it, rather than buffered
 * without bound; its browser reconnects with the last id it got and resumes from there.
 */
export function createLiveEvents(feed: DecisionFeed, settings: EventStreamSettings, logger: Logger): LiveEvents {
  const { maxStreams, heartbeatMs, retryMs, maxUnsentBytes } = settings;
  /** Open streams, each with the function that ends it; holds a place from the request's start. */
  const streams = new Map<Response, () => void>();
  let closing = false;

  const heartbeat = setInterval(() => {
    for (const [res] of streams) if (res.headersSent) write(res, ': keep-alive\n\n');
  }, heartbeatMs);
  heartbeat.unref();

  function write(res: Response, text: string): void {
    if (res.destroyed) return;
    res.write(text);
    if (res.writableLength > maxUnsentBytes) {
      logger.warn({ unsentBytes: res.writableLength }, 'event stream client is not keeping up; closing its stream (it will resume from its last event)');
      res.destroy();
    }
  }

  function untilWritable(res: Response): Promise<void> {
    if (!res.writableNeedDrain || res.destroyed) return Promise.resolve();
    return new Promise((done) => {
      const finish = () => {
        res.off('drain', finish);
        res.off('close', finish);
        done();
      };
      res.on('drain', finish);
      res.on('close', finish);
    });
  }

  const route: RequestHandler = async (req, res) => {
    const resume = resumeId(req, feed);
    if (!resume.ok) {
      return sendError(res, 400, { error: 'invalid_last_event_id', message: 'Last-Event-ID must be the id of an event this feed sent (a stream id such as 1795316035551-0)' });
    }
    if (closing) return sendError(res, 503, SHUTTING_DOWN);
    if (streams.size >= maxStreams) {
      res.set('Retry-After', String(REFUSED_RETRY_AFTER_SEC));
      return sendError(res, 503, {
        error: 'too_many_event_streams',
        message:
          maxStreams === 0
            ? 'the live feed is turned off on this server (MAX_EVENT_STREAMS=0)'
            : `this server already has ${maxStreams} open event streams (MAX_EVENT_STREAMS); retry later`,
      });
    }

    // HEAD gets the answer a GET would start with, and no body. It opens no stream and holds no
    // place: its response has nothing to write, so as a stream it would never end, and a hundred
    // HEADs would lock the live page out. (It does not ask Redis, as a GET's joining would.)
    if (req.method === 'HEAD') {
      res.writeHead(200, EVENT_STREAM_HEADERS).end();
      return;
    }

    let subscription: Subscription | undefined;
    streams.set(res, () => {
      if (res.headersSent) res.end();
      else sendError(res, 503, SHUTTING_DOWN);
    });
    res.once('close', () => {
      streams.delete(res);
      subscription?.unsubscribe();
    });

    const subscriber: FeedSubscriber = {
      deliver(entries: readonly FeedEntry[]) {
        let text = '';
        for (const entry of entries) text += entry.text;
        write(res, text);
      },
      writable: () => untilWritable(res),
      skipped(after, until) {
        write(res, `event: skipped\ndata: ${JSON.stringify({ after, until })}\n\n`);
      },
      dropped(reason) {
        logger.warn({ reason }, 'event stream client dropped from the live feed; it will resume from its last event');
        res.destroy();
      },
    };

    try {
      subscription = await feed.subscribe(subscriber, resume.id);
    } catch {
      streams.delete(res);
      if (res.destroyed || res.writableEnded) return;
      return sendError(res, 503, { error: 'redis_unavailable', message: 'the decision stream cannot be read because Redis is unavailable; retry later' });
    }
    // The client went away, or shutdown answered it, while it was joining.
    if (res.destroyed || res.writableEnded) {
      subscription.unsubscribe();
      return;
    }

    res.writeHead(200, EVENT_STREAM_HEADERS);
    write(res, `retry: ${retryMs}\n\n`);
    try {
      await subscription.catchUp();
    } catch (error) {
      logger.debug({ err: (error as Error).message }, 'event stream replay failed; closing it so the client resumes later');
      res.end();
    }
  };

  return {
    route,
    get open() {
      return streams.size;
    },
    async close() {
      closing = true;
      clearInterval(heartbeat);
      for (const end of streams.values()) end();
      await feed.close();
    },
  };
}
