import { sleep } from './api.js';

/** One server-sent event, as a browser's EventSource would dispatch it. */
export interface ServerSentEvent {
  id: string | undefined;
  event: string;
  data: string;
}

export interface EventStream {
  response: Response;
  /** Every event received so far, in order. */
  events: ServerSentEvent[];
  /** Everything received so far, as sent (comments and `retry:` included). */
  raw(): string;
  /** Waits until `count` events of `type` have arrived, and answers them. */
  waitFor(count: number, type?: string, timeoutMs?: number): Promise<ServerSentEvent[]>;
  /** Resolves when the server ends the stream or cuts the connection. */
  ended: Promise<void>;
  close(): void;
}

/**
 * Opens `GET /events` with fetch and parses the stream as the SSE spec says, so that the tests see
 * exactly what a browser would, without a browser.
 */
export async function openEventStream(base: string, headers: Record<string, string> = {}, query = ''): Promise<EventStream> {
  const abort = new AbortController();
  const response = await fetch(`${base}/events${query}`, { headers, signal: abort.signal });
  const events: ServerSentEvent[] = [];
  let raw = '';
  let ended: Promise<void> = Promise.resolve();
  if (response.ok && response.body) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    ended = (async () => {
      let pending = '';
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          raw += value;
          pending += value;
          let blank: number;
          while ((blank = pending.indexOf('\n\n')) !== -1) {
            const block = pending.slice(0, blank);
            pending = pending.slice(blank + 2);
            const event = parseBlock(block);
            if (event) events.push(event);
          }
        }
      } catch {
        // Aborted by close(), or the connection was cut: either way the stream has ended.
      }
    })();
  }
  return {
    response,
    events,
    raw: () => raw,
    async waitFor(count, type = 'decision', timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const matching = events.filter((event) => event.event === type);
        if (matching.length >= count) return matching;
        if (Date.now() > deadline) throw new Error(`only ${matching.length} of ${count} "${type}" events arrived in ${timeoutMs} ms`);
        await sleep(10);
      }
    },
    ended,
    close: () => abort.abort(),
  };
}

function parseBlock(block: string): ServerSentEvent | undefined {
  let id: string | undefined;
  let event = 'message';
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'id') id = value;
    else if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return data.length === 0 ? undefined : { id, event, data: data.join('\n') };
}
