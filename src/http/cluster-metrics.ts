import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

/** The primary's answer waits at most this long; past it, GET /metrics answers 503. */
const ANSWER_WITHIN_MS = 5000;
const ASK = 'click-fraud:metrics-request';
const ANSWER = 'click-fraud:metrics';

type Answer = { type: typeof ANSWER; id: number; text?: string; error?: string };

/**
 * With API_PROCESSES > 1, a scrape lands on any one API process, but Prometheus wants them all: the
 * process asks the primary, which gathers every API process's metrics (prom-client's
 * AggregatorRegistry: counters and histograms added up) and puts its own (the stream worker's)
 * beside them. This side runs in an API process: it lends `registry` to the aggregator, and answers
 * GET /metrics with what the primary sends back.
 */
export function metricsFromPrimary(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  // Its constructor installs prom-client's listener that answers the primary's aggregator.
  new AggregatorRegistry();
  let nextId = 0;
  const waiting = new Map<number, { done: (answer: Answer) => void }>();
  process.on('message', (message: Answer) => {
    if (message?.type === ANSWER) waiting.get(message.id)?.done(message);
  });
  return () =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error('the primary process did not answer for the metrics'));
      }, ANSWER_WITHIN_MS);
      waiting.set(id, {
        done: (answer) => {
          clearTimeout(timer);
          waiting.delete(id);
          if (answer.text === undefined) reject(new Error(answer.error ?? 'no metrics'));
          else resolve(answer.text);
        },
      });
      process.send!({ type: ASK, id });
    });
}

/**
 * The primary's side: answers its API processes' asks, with its `own` metrics (its stream worker's)
 * beside theirs. Returns a function that stops it.
 */
export function serveClusterMetrics(own: Registry | undefined): () => void {
  const aggregator = new AggregatorRegistry();
  const onMessage = (worker: Worker, message: { type?: string; id?: number }) => {
    if (message?.type !== ASK) return;
    Promise.all([aggregator.clusterMetrics(), own?.metrics() ?? '']).then(
      ([processes, mine]) => worker.send({ type: ANSWER, id: message.id, text: `${processes}\n${mine}` }),
      (error: Error) => worker.send({ type: ANSWER, id: message.id, error: error.message }),
    );
  };
  cluster.on('message', onMessage);
  return () => cluster.off('message', onMessage);
}
