import type { RedisClient } from './connection.js';
import type { Logger } from 'pino';

/**
 * Back-pressure for the click path: how many commands may wait for Redis at once, and a fast
 * refusal when Redis is known to be hung.
 *
 * A command that timed out for its caller is still in the client's queue (it was written to the
 * socket and cannot be taken back), so it holds its place here until Redis answers it or the
 * connection drops, not merely until the caller stops waiting. That is what keeps memory flat while
 * Redis hangs: at most `maxInFlight` commands are ever queued, and past that a click is refused at
 * once instead of queued.
 */
export class RedisOverloadedError extends Error {
  constructor(readonly reason: 'in_flight_limit' | 'hung') {
    super(reason === 'hung' ? 'Redis is not answering: refusing at once until it answers again' : 'too many commands waiting for Redis');
  }
}

export class RedisTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`Redis did not answer within ${timeoutMs} ms`);
  }
}

export interface CommandGate {
  /**
   * Sends `cost` commands through `send` if they fit, and waits at most `timeoutMs` for them.
   * Throws RedisOverloadedError at once when they do not fit or Redis is hung, RedisTimeoutError
   * after `timeoutMs`, or what `send` throws.
   */
  run<T>(cost: number, timeoutMs: number, send: () => Promise<T>): Promise<T>;
  /** Commands sent and not yet answered (including those their callers gave up on). */
  readonly inFlight: number;
  /** True from a timeout until Redis answers anything again. */
  readonly hung: boolean;
  /** Since when (unix ms) Redis has been hung, or null. */
  readonly hungSince: number | null;
}

export function createCommandGate(maxInFlight: number): CommandGate {
  let inFlight = 0;
  // Redis is taken for hung when a command timed out and nothing has been answered since; any
  // answer (or the connection dropping, which fails every queued command) ends it.
  let hungSince: number | null = null;
  let answers = 0;

  return {
    get inFlight() {
      return inFlight;
    },
    get hung() {
      return hungSince !== null;
    },
    get hungSince() {
      return hungSince;
    },
    run<T>(cost: number, timeoutMs: number, send: () => Promise<T>): Promise<T> {
      if (hungSince !== null) return Promise.reject(new RedisOverloadedError('hung'));
      if (inFlight + cost > maxInFlight) return Promise.reject(new RedisOverloadedError('in_flight_limit'));
      inFlight += cost;
      const answersBefore = answers;
      return new Promise<T>((resolve, reject) => {
        // When the timer is due, look at the socket once more before giving up: after an event-loop
        // stall the answer may already be read and waiting, and timers run before I/O does.
        const timer = setTimeout(
          () =>
            setImmediate(() => {
              if (answers === answersBefore) hungSince ??= Date.now();
              reject(new RedisTimeoutError(timeoutMs));
            }),
          timeoutMs,
        );
        const answered = () => {
          inFlight -= cost;
          answers += 1;
          hungSince = null;
          clearTimeout(timer);
        };
        let sent: Promise<T>;
        try {
          sent = send();
        } catch (error) {
          // Nothing was sent: no place to hold, and nothing Redis said.
          inFlight -= cost;
          clearTimeout(timer);
          return reject(error);
        }
        sent.then(
          (value) => {
            answered();
            resolve(value);
          },
          (error: unknown) => {
            answered();
            reject(error);
          },
        );
      });
    },
  };
}

/**
 * A connection that stays open while nothing comes back (Redis stopped, or a peer that vanished
 * without a reset) would keep the gate shut for good: after `afterMs` of that, drop the connection,
 * which fails what it had queued, and let the client connect again.
 */
export function reconnectWhenHung(redis: RedisClient, gate: CommandGate, afterMs: number, logger: Logger): () => void {
  const timer = setInterval(() => {
    const since = gate.hungSince;
    if (since === null || Date.now() - since < afterMs) return;
    logger.warn({ hungMs: Date.now() - since }, 'Redis has not answered the click connection; reconnecting');
    redis.disconnect(true);
  }, Math.max(100, afterMs / 4));
  timer.unref();
  return () => clearInterval(timer);
}
