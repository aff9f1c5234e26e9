// The live page: decisions arrive by server-sent events from GET /events; counts, chart and feed
// are kept by this page from what it receives. Plain browser JavaScript, no build step.
'use strict';

const VERDICTS = ['clean', 'ip_blacklist', 'click_spam'];
const SERIES_STYLE = {
  clean: { stroke: '#2e7d32', fill: 'rgba(46, 125, 50, 0.08)' },
  ip_blacklist: { stroke: '#c62828' },
  // Dashed, so that it does not hide ip_blacklist where the two are equal.
  click_spam: { stroke: '#ef6c00', dash: [6, 4] },
};
/** Rows kept in the feed: the page stays light however fast decisions come. */
const MAX_ROWS = 50;
const CHART_SECONDS = 300;
const WORKER_TOTALS_EVERY_MS = 15_000;
const MAX_RETRY_MS = 30_000;

const $ = (id) => document.getElementById(id);
const counts = { total: 0, clean: 0, ip_blacklist: 0, click_spam: 0 };
/** Clicks per second by verdict, keyed by the second (Redis clock); only the chart's window is kept. */
const perSecond = new Map();
/** Decisions received but not yet drawn (at most MAX_ROWS: older ones would be trimmed anyway). */
let pendingRows = [];
let renderQueued = false;
/** Redis clock minus this browser's clock, so the chart's window ends at the server's "now". */
let clockSkewMs;
let lastEventId = '';
let retryMs = 1000;

const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3, hour12: false,
});
$('since').textContent = new Date().toLocaleTimeString([], { hour12: false });

function setConnection(state, text) {
  const element = $('connection');
  element.className = `connection ${state}`;
  element.textContent = text;
}

function onDecision(event) {
  lastEventId = event.lastEventId;
  const decision = JSON.parse(event.data);
  counts.total += 1;
  counts[decision.fraud_type] += 1;

  const skew = decision.ts - Date.now();
  // Events replayed after a reconnect are old; the newest ones tell the skew best.
  if (clockSkewMs === undefined || skew > clockSkewMs) clockSkewMs = skew;
  const second = Math.floor(decision.ts / 1000);
  let bucket = perSecond.get(second);
  if (!bucket) perSecond.set(second, (bucket = { clean: 0, ip_blacklist: 0, click_spam: 0 }));
  bucket[decision.fraud_type] += 1;

  pendingRows.push(decision);
  if (pendingRows.length > MAX_ROWS) pendingRows = pendingRows.slice(-MAX_ROWS);
  if (!renderQueued) {
    renderQueued = true;
    requestAnimationFrame(render);
  }
}

function onSkipped(event) {
  const { after, until } = JSON.parse(event.data);
  const at = (id) => new Date(Number(id.split('-')[0])).toLocaleTimeString([], { hour12: false });
  const notice = $('notice');
  notice.textContent = `More decisions were made while this page was disconnected than the server replays: those between ${at(after)} and ${at(until)} are missing from the counts and the chart.`;
  notice.hidden = false;
}

/** Draws what arrived since the last frame: one DOM update per frame, not per decision. */
function render() {
  renderQueued = false;
  for (const name of Object.keys(counts)) $(`count-${name}`).textContent = counts[name].toLocaleString();
  const fraud = counts.ip_blacklist + counts.click_spam;
  $('fraud-share').textContent = counts.total === 0 ? '–' : `${((100 * fraud) / counts.total).toFixed(1)} %`;

  const feed = $('feed');
  for (const decision of pendingRows) feed.prepend(feedRow(decision));
  pendingRows = [];
  while (feed.rows.length > MAX_ROWS) feed.deleteRow(-1);
}

function feedRow(decision) {
  const row = document.createElement('tr');
  row.className = decision.status === 'fraud' ? 'fraud' : 'clean';
  row.dataset.transaction = decision.transaction_id;
  row.dataset.verdict = decision.fraud_type;
  const cells = [timeFormat.format(decision.ts), decision.device_id, decision.ip, decision.fraud_type, decision.transaction_id];
  cells.forEach((text, i) => {
    const cell = row.insertCell();
    // textContent, never HTML: device and transaction ids are whatever clients posted.
    cell.textContent = text;
    if (i === 3) cell.className = 'verdict';
  });
  return row;
}

const chartElement = $('chart');
const chart = new uPlot(
  {
    width: chartElement.clientWidth,
    height: 260,
    series: [
      {},
      // Steps, since each value is a count over its whole second.
      ...VERDICTS.map((verdict) => ({ label: verdict, width: 2, points: { show: false }, paths: uPlot.paths.stepped({ align: 1 }), ...SERIES_STYLE[verdict] })),
    ],
    scales: { y: { range: (_chart, _min, max) => [0, Math.max(5, Math.ceil(max * 1.1))] } },
    axes: [{}, { label: 'clicks / s' }],
  },
  chartData(),
  chartElement,
);

/** The chart's window: one point per second up to the server's current second, empty seconds at 0. */
function chartData() {
  const now = Math.floor((Date.now() + (clockSkewMs ?? 0)) / 1000);
  const first = now - CHART_SECONDS + 1;
  for (const second of perSecond.keys()) if (second < first) perSecond.delete(second);
  const seconds = [];
  const series = VERDICTS.map(() => []);
  for (let second = first; second <= now; second += 1) {
    seconds.push(second);
    const bucket = perSecond.get(second);
    VERDICTS.forEach((verdict, i) => series[i].push(bucket ? bucket[verdict] : 0));
  }
  return [seconds, ...series];
}

setInterval(() => chart.setData(chartData()), 1000);
window.addEventListener('resize', () => chart.setSize({ width: chartElement.clientWidth, height: 260 }));

/**
 * EventSource reconnects by itself after a dropped connection (a server restart) and sends the
 * last id it saw as Last-Event-ID, so the server resumes right after it. It gives up only when the
 * server answers with an error status (too many streams, shutting down): then this page starts a
 * new one after a back-off, passing the last id in the query since a new EventSource has none.
 */
function connect() {
  const source = new EventSource(lastEventId ? `/events?last_event_id=${encodeURIComponent(lastEventId)}` : '/events');
  source.addEventListener('open', () => {
    retryMs = 1000;
    setConnection('live', 'live');
  });
  source.addEventListener('decision', onDecision);
  source.addEventListener('skipped', onSkipped);
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CONNECTING) {
      setConnection('connecting', 'connection lost: reconnecting…');
      return;
    }
    source.close();
    setConnection('down', `the server refused the live feed; retrying in ${Math.round(retryMs / 1000)} s`);
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
  });
}

/** The stream worker's counts (GET /stats), for context beyond what this page has seen. */
async function showWorkerTotals() {
  if (document.visibilityState !== 'visible') return;
  const element = $('worker-totals');
  try {
    const res = await fetch('/stats?bucket=60000', { headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(`GET /stats answered ${res.status}`);
    const { totals, stream } = await res.json();
    const parts = VERDICTS.map((verdict) => `${totals[verdict].toLocaleString()} ${verdict}`);
    const lag = stream.lag === null ? '' : `; ${(stream.lag + stream.pending).toLocaleString()} not yet counted`;
    element.textContent = `Stream worker, last 15 minutes: ${parts.join(' · ')}${lag}.`;
  } catch (error) {
    element.textContent = `Stream worker counts unavailable: ${error.message}.`;
  }
}

connect();
showWorkerTotals();
setInterval(showWorkerTotals, WORKER_TOTALS_EVERY_MS);
