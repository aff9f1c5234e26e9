/** Refused because `maxRunning` are running and `maxWaiting` already wait. */
export class TooBusyError extends Error {
  constructor() {
    super('too many requests of this kind at once');
  }
}

export interface ConcurrencyLimit {
  /** Runs `work` once its turn comes; throws TooBusyError at once when the line is full. */
  run<T>(work: () => Promise<T>): Promise<T>;
}

export interface ConcurrencyLimitSettings {
  /** How many run at once. */
  maxRunning: number;
  /** How many may wait for a turn; past it, TooBusyError. Waiting, rather than refused, keeps clients that retry at once from spinning. */
  maxWaiting: number;
  /**
   * Share of the time this kind of work may take, from 0 to 1: after a run of t ms, its place stays
   * idle for t × (1 − share) / share ms, so that other work (the clicks) gets the rest.
   */
  share: number;
}

/** First come first served, at most `maxRunning` at a time and at most `share` of the time. */
export function createConcurrencyLimit({ maxRunning, maxWaiting, share }: ConcurrencyLimitSettings): ConcurrencyLimit {
  let running = 0;
  const waiting: Array<() => void> = [];
  const release = () => {
    const next = waiting.shift();
    if (next) next();
    else running -= 1;
  };
  return {
    async run(work) {
      if (running < maxRunning) running += 1;
      else if (waiting.length < maxWaiting) await new Promise<void>((turn) => waiting.push(turn));
      else throw new TooBusyError();
      const started = performance.now();
      try {
        return await work();
      } finally {
        const idleMs = ((performance.now() - started) * (1 - share)) / share;
        setTimeout(release, idleMs);
      }
    },
  };
}
