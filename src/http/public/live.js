// The live page: decisions arrive by server-sent events from GET /events; the chart starts from the
// stream worker's counts (GET /stats) and goes on from the feed; the top offenders come from
// GET /offenders. Plain browser JavaScript, no build step.
'use strict';

/** Rows in the feed table: the page stays light however fast decisions come. */
const MAX_ROWS = 50;
/**
 * Decisions kept for a change of filter to search: the newest ones, whatever the rate (the list is
 * cut back to this many once it holds twice as many, so that a decision costs no copy of it).
 */
const MAX_KEPT = 1000;
const CHART_SECONDS = 300;
/** After the chart is filled, the last seconds are read again once the worker has counted them. */
const RECOUNT_AFTER_MS = 5000;
const RECOUNT_SECONDS = 30;
const WORKER_TOTALS_EVERY_MS = 15_000;
const OFFENDERS_EVERY_MS = 5000;
const OFFENDERS_SHOWN = 10;
const MAX_RETRY_MS = 30_000;
/** The admin token, typed into this page: sessionStorage is this tab's alone and ends with it. */
const TOKEN_KEY = 'click-fraud-admin-token';

/** Colours of the fraud verdicts in the order /stats lists them; clean is green. */
const FRAUD_COLOURS = ['#c62828', '#8e24aa', '#ef6c00', '#00838f', '#5d4037', '#1565c0', '#ad1457'];
const CLEAN_COLOUR = '#2e7d32';

const $ = (id) => document.getElementById(id);

/** What /stats says each series is: `{name, kind, label}`; verdicts first known from it. */
let seriesInfo = new Map();
/** Verdicts in /stats order: the chart's lines, the count cards, the filter's choices. */
let verdicts = [];
const counts = { total: 0 };
/** Clicks per second by verdict, keyed by the second (Redis clock); only the chart's window is kept. */
const perSecond = new Map();
/** The first second the live feed draws; earlier ones come from /stats. Unknown until /stats answers. */
let liveFrom;
/** Redis clock minus this browser's clock, so the chart's window ends at the server's "now". */
let clockSkewMs;
let lastEventId = '';
let retryMs = 1000;
let chart;
let chartFilling = false;

/** The newest decisions, oldest first (see MAX_KEPT), and those not yet drawn. */
let kept = [];
let pendingRows = [];
let renderQueued = false;
let paused = false;
let arrivedWhilePaused = 0;
const filter = { verdict: '', text: '' };

const fullTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  fractionalSecondDigits: 3, hour12: false, timeZoneName: 'short',
});
const secondTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  hour12: false, timeZoneName: 'short',
});
/** The chart's axis: the time of day only; the legend gives the date and zone. */
const axisTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
$('since').textContent = secondTime.format(Date.now());

const labelOf = (name) => seriesInfo.get(name)?.label ?? name;
const isFraud = (verdict) => verdict !== 'clean';

function colourOf(verdict) {
  if (!isFraud(verdict)) return CLEAN_COLOUR;
  const index = verdicts.filter(isFraud).indexOf(verdict);
  return FRAUD_COLOURS[Math.max(0, index) % FRAUD_COLOURS.length];
}

function setConnection(state, text) {
  const element = $('connection');
  element.className = `connection ${state}`;
  element.textContent = text;
}

// ---- what the series are ------------------------------------------------------------------------

/** Learns the verdicts and their labels from /stats, once: cards, filter choices and the chart follow. */
function learnSeries(series) {
  if (verdicts.length > 0) return;
  seriesInfo = new Map(series.map((info) => [info.name, info]));
  verdicts = series.filter((info) => info.kind === 'verdict').map((info) => info.name);
  for (const verdict of verdicts) countCard(verdict);
  const select = $('filter-verdict');
  for (const verdict of verdicts) select.append(new Option(labelOf(verdict), verdict));
  createChart();
  // Rows drawn before the labels were known get them now.
  rerenderFeed();
  refreshOffenders();
}

/** The card of a verdict's count since the page opened, made when first needed (labelled again once labels are known). */
function countCard(verdict) {
  const id = `count-${verdict}`;
  if ($(id)) {
    $(id).previousElementSibling.textContent = labelOf(verdict);
    return $(id);
  }
  const card = document.createElement('div');
  card.className = isFraud(verdict) ? 'count fraud' : 'count';
  card.dataset.verdict = verdict;
  const term = document.createElement('dt');
  term.textContent = labelOf(verdict);
  const value = document.createElement('dd');
  value.id = id;
  value.textContent = (counts[verdict] ?? 0).toLocaleString();
  card.append(term, value);
  $('counts').insertBefore(card, document.querySelector('.count[data-verdict="share"]'));
  return value;
}

// ---- the live feed ------------------------------------------------------------------------------

function onDecision(event) {
  lastEventId = event.lastEventId;
  const decision = JSON.parse(event.data);
  counts.total += 1;
  counts[decision.fraud_type] = (counts[decision.fraud_type] ?? 0) + 1;

  const skew = decision.ts - Date.now();
  // Events replayed after a reconnect are old; the newest ones tell the skew best.
  if (clockSkewMs === undefined || skew > clockSkewMs) clockSkewMs = skew;
  const second = Math.floor(decision.ts / 1000);
  // Seconds before liveFrom are the worker's (from /stats): counting them here too would count twice.
  if (liveFrom === undefined || second >= liveFrom) addToSecond(second, decision.fraud_type, 1);

  kept.push(decision);
  if (kept.length >= 2 * MAX_KEPT) kept = kept.slice(-MAX_KEPT);
  if (paused) arrivedWhilePaused += 1;
  else if (matches(decision)) {
    pendingRows.push(decision);
    // Older ones would be trimmed from the table anyway.
    if (pendingRows.length >= 2 * MAX_ROWS) pendingRows = pendingRows.slice(-MAX_ROWS);
  }
  queueRender();
}

function addToSecond(second, verdict, clicks) {
  let bucket = perSecond.get(second);
  if (!bucket) perSecond.set(second, (bucket = {}));
  bucket[verdict] = (bucket[verdict] ?? 0) + clicks;
}

function onSkipped(event) {
  const { after, until } = JSON.parse(event.data);
  const at = (id) => secondTime.format(Number(id.split(/[-,]/)[0]));
  const notice = $('notice');
  notice.textContent = `More decisions were made while this page was disconnected than the server replays: those between ${at(after)} and ${at(until)} are missing from the counts and the feed.`;
  notice.hidden = false;
}

function queueRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(render);
}

/** Draws what arrived since the last frame: one DOM update per frame, not per decision. */
function render() {
  renderQueued = false;
  $('count-total').textContent = counts.total.toLocaleString();
  let fraud = 0;
  for (const [verdict, count] of Object.entries(counts)) {
    if (verdict === 'total') continue;
    if (isFraud(verdict)) fraud += count;
    countCard(verdict).textContent = count.toLocaleString();
  }
  $('fraud-share').textContent = counts.total === 0 ? '–' : `${((100 * fraud) / counts.total).toFixed(1)} %`;

  const feed = $('feed');
  for (const decision of pendingRows.slice(-MAX_ROWS)) feed.prepend(feedRow(decision));
  pendingRows = [];
  while (feed.rows.length > MAX_ROWS) feed.deleteRow(-1);
  $('feed-status').textContent = paused
    ? `Paused: ${arrivedWhilePaused.toLocaleString()} new decisions not shown (the counts and the chart go on).`
    : filter.verdict || filter.text
      ? `Filtered: matches among the last ${MAX_KEPT.toLocaleString()} decisions, then live.`
      : '';
}

function matches(decision) {
  if (filter.verdict === 'fraud' && decision.status !== 'fraud') return false;
  if (filter.verdict && filter.verdict !== 'fraud' && decision.fraud_type !== filter.verdict) return false;
  if (!filter.text) return true;
  return decision.device_id.toLowerCase().includes(filter.text) || decision.ip.toLowerCase().includes(filter.text);
}

/** The table again from the decisions kept: after a change of filter, on resume, once labels are known. */
function rerenderFeed() {
  const feed = $('feed');
  const rows = [];
  const oldest = Math.max(0, kept.length - MAX_KEPT);
  for (let i = kept.length - 1; i >= oldest && rows.length < MAX_ROWS; i--) if (matches(kept[i])) rows.push(feedRow(kept[i]));
  feed.replaceChildren(...rows);
  pendingRows = [];
  queueRender();
}

/** A rule hit for people: what it counted in its window against its limit, or what it matched. */
function describeHit(hit) {
  if (typeof hit.observed !== 'number') return `matched ${hit.observed}`;
  const window = hit.window_sec === undefined ? '' : ` in ${hit.window_sec} s`;
  const limit = hit.limit === undefined ? '' : ` (limit ${hit.limit})`;
  return `${hit.observed}${window}${limit}`;
}

function why(decision) {
  const parts = [];
  if (decision.reason) parts.push(describeHit(decision.reason));
  if (decision.allowlisted) parts.push('allowlisted');
  for (const hit of decision.shadow ?? []) parts.push(`${labelOf(`shadow_${hit.rule}`)}: ${describeHit(hit)}`);
  return parts.join(' · ');
}

function feedRow(decision) {
  const row = document.createElement('tr');
  row.className = decision.status === 'fraud' ? 'fraud' : 'clean';
  row.dataset.transaction = decision.transaction_id;
  row.dataset.verdict = decision.fraud_type;
  const cells = [fullTime.format(decision.ts), decision.device_id, decision.ip, labelOf(decision.fraud_type), why(decision), decision.transaction_id];
  const classes = ['time', 'device', 'ip', 'verdict', 'why', 'transaction'];
  cells.forEach((text, i) => {
    const cell = row.insertCell();
    // textContent, never HTML: device and transaction ids are whatever clients posted.
    cell.textContent = text;
    cell.className = classes[i];
  });
  row.cells[3].title = decision.fraud_type;
  return row;
}

$('pause').addEventListener('click', () => {
  paused = !paused;
  const button = $('pause');
  button.textContent = paused ? 'Resume' : 'Pause';
  button.setAttribute('aria-pressed', String(paused));
  if (!paused) {
    arrivedWhilePaused = 0;
    rerenderFeed();
  }
  queueRender();
});
$('filter-verdict').addEventListener('change', (event) => {
  filter.verdict = event.target.value;
  if (!paused) rerenderFeed();
});
$('filter-text').addEventListener('input', (event) => {
  filter.text = event.target.value.trim().toLowerCase();
  if (!paused) rerenderFeed();
});

/** Shows `id`'s decisions in the feed (from an offender's row). */
function searchFeed(id) {
  $('filter-text').value = id;
  filter.text = id.toLowerCase();
  if (!paused) rerenderFeed();
  $('feed-title').scrollIntoView({ behavior: 'smooth' });
}

// ---- the chart ----------------------------------------------------------------------------------

function createChart() {
  const element = $('chart');
  // The chart's last point is the second still under way: the legend gives the one before it.
  const lastFull = (u, sidx) => u.data[sidx][u.data[sidx].length - 2];
  chart = new uPlot(
    {
      width: element.clientWidth,
      height: 260,
      series: [
        // With the cursor off the chart, the legend shows the last full second rather than "--".
        { label: 'Time', value: (u, ts, _s, idx) => (idx == null ? `${secondTime.format(lastFull(u, 0) * 1000)} (last full second)` : secondTime.format(ts * 1000)) },
        // Steps, since each value is a count over its whole second.
        ...verdicts.map((verdict, i) => ({
          label: labelOf(verdict),
          width: 2,
          stroke: colourOf(verdict),
          ...(isFraud(verdict) ? {} : { fill: 'rgba(46, 125, 50, 0.08)' }),
          // Every other fraud line dashed, so that one does not hide another where they are equal.
          ...(isFraud(verdict) && i % 2 === 0 ? { dash: [6, 4] } : {}),
          points: { show: false },
          paths: uPlot.paths.stepped({ align: 1 }),
          value: (u, value, sidx, idx) => `${(idx == null ? lastFull(u, sidx) : value).toLocaleString()}/s`,
        })),
      ],
      scales: { y: { range: (_chart, _min, max) => [0, Math.max(5, Math.ceil(max * 1.1))] } },
      axes: [{ space: 80, values: (_u, ticks) => ticks.map((ts) => axisTime.format(ts * 1000)) }, { label: 'clicks / s' }],
    },
    chartData(),
    element,
  );
  window.addEventListener('resize', () => chart.setSize({ width: element.clientWidth, height: 260 }));
}

/** The chart's window: one point per second up to the server's current second, empty seconds at 0. */
function chartData() {
  const now = Math.floor((Date.now() + (clockSkewMs ?? 0)) / 1000);
  const first = now - CHART_SECONDS + 1;
  for (const second of perSecond.keys()) if (second < first) perSecond.delete(second);
  const seconds = [];
  const series = verdicts.map(() => []);
  for (let second = first; second <= now; second += 1) {
    seconds.push(second);
    const bucket = perSecond.get(second);
    verdicts.forEach((verdict, i) => series[i].push(bucket?.[verdict] ?? 0));
  }
  return [seconds, ...series];
}

setInterval(() => chart?.setData(chartData()), 1000);

/** Per-second counts of [from, to] from /stats into the chart, replacing what it had for those seconds. */
function chartFromStats(buckets, fromSecond, toSecond) {
  for (let second = fromSecond; second <= toSecond; second += 1) perSecond.delete(second);
  for (const bucket of buckets) {
    const second = bucket.ts / 1000;
    if (second < fromSecond || second > toSecond) continue;
    for (const verdict of verdicts) if (bucket[verdict]) addToSecond(second, verdict, bucket[verdict]);
  }
}

/**
 * Fills the chart with what the stream worker counted before the feed took over. The feed starts
 * when its stream opens; seconds from the one /stats answers up to (its `to`) on are the feed's, the
 * ones before are the worker's. Those the worker had not counted yet are read again a little later.
 * Started once, when the feed joins or is refused (the worker's counts are worth showing anyway).
 */
function startChart() {
  if (chartFilling) return;
  chartFilling = true;
  fillChart();
}

async function fillChart() {
  const status = $('chart-status');
  let stats;
  try {
    stats = await getJson('/stats?bucket=1000');
  } catch (error) {
    status.textContent = `The stream worker's counts could not be read (${error.message}); retrying.`;
    setTimeout(fillChart, 5000);
    return;
  }
  learnSeries(stats.series);
  if (clockSkewMs === undefined) clockSkewMs = stats.to - Date.now();
  showWorkerTotals(stats);
  liveFrom = Math.floor(stats.to / 1000);
  chartFromStats(stats.buckets, Math.max(Math.ceil(stats.from / 1000), liveFrom - CHART_SECONDS), liveFrom - 1);
  chart.setData(chartData());
  const covered = Math.min(CHART_SECONDS, liveFrom - Math.ceil(stats.from / 1000));
  status.textContent = `Before ${secondTime.format(liveFrom * 1000)}: counted by the stream worker (${Math.round(covered / 60)} minutes); since then: live.`;
  setTimeout(async () => {
    const from = (liveFrom - RECOUNT_SECONDS) * 1000;
    try {
      const recount = await getJson(`/stats?bucket=1000&from=${from}&to=${liveFrom * 1000 - 1}`);
      chartFromStats(recount.buckets, liveFrom - RECOUNT_SECONDS, liveFrom - 1);
    } catch {
      // The first read stands; it may miss the last second or two before the feed took over.
    }
  }, RECOUNT_AFTER_MS);
}

async function getJson(url, options = {}) {
  const res = await fetch(url, { ...options, headers: { accept: 'application/json', ...options.headers } });
  if (!res.ok) throw new Error(`${url.split('?')[0]} answered ${res.status}`);
  return res.json();
}

/** The stream worker's counts for the last 15 minutes, for context beyond what this page has seen. */
function showWorkerTotals({ totals, stream }) {
  const parts = verdicts.map((verdict) => `${totals[verdict].toLocaleString()} ${labelOf(verdict)}`);
  const lag = stream.lag === null ? '' : `; ${(stream.lag + stream.pending).toLocaleString()} not yet counted`;
  $('worker-totals').textContent = `Stream worker, last 15 minutes: ${parts.join(' · ')}${lag}.`;
}

async function refreshWorkerTotals() {
  if (document.visibilityState !== 'visible' || verdicts.length === 0) return;
  try {
    showWorkerTotals(await getJson('/stats?bucket=60000'));
  } catch (error) {
    $('worker-totals').textContent = `Stream worker counts unavailable: ${error.message}.`;
  }
}

// ---- top offenders ------------------------------------------------------------------------------

let offendersTimer;
/** Only the answer of the latest read is drawn, however the reads' answers cross. */
let offendersRead = 0;
let adminToken = sessionStorage.getItem(TOKEN_KEY) ?? undefined;
let adminOn = false;

async function refreshOffenders() {
  clearTimeout(offendersTimer);
  offendersTimer = setTimeout(refreshOffenders, OFFENDERS_EVERY_MS);
  if (document.visibilityState !== 'visible') return;
  const minutes = Number($('offenders-window').value);
  const now = Date.now() + (clockSkewMs ?? 0);
  const status = $('offenders-status');
  const read = ++offendersRead;
  try {
    const top = await getJson(`/offenders?from=${Math.round(now - minutes * 60_000)}&to=${Math.round(now)}&limit=${OFFENDERS_SHOWN}`);
    if (read !== offendersRead) return;
    offenderRows($('offending-devices'), top.devices.map((o) => ({ ...o, id: o.device_id })), false);
    offenderRows($('offending-addresses'), top.addresses.map((o) => ({ ...o, id: o.ip })), true);
    status.textContent = `${secondTime.format(top.from)} to ${secondTime.format(top.to + 1)}, updated every ${OFFENDERS_EVERY_MS / 1000} s`;
  } catch (error) {
    if (read === offendersRead) status.textContent = `unavailable: ${error.message}`;
  }
}

function offenderRows(table, offenders, blockable) {
  const body = table.tBodies[0];
  if (offenders.length === 0) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = table.tHead.rows[0].cells.length;
    cell.className = 'empty';
    cell.textContent = 'No fraud in this range.';
    body.replaceChildren(row);
    return;
  }
  body.replaceChildren(
    ...offenders.map((offender, i) => {
      const row = document.createElement('tr');
      row.dataset.id = offender.id;
      row.insertCell().textContent = String(i + 1);
      const name = row.insertCell();
      const show = document.createElement('button');
      show.type = 'button';
      show.className = 'link';
      show.title = 'Show its decisions in the feed below';
      show.textContent = offender.id;
      show.addEventListener('click', () => searchFeed(offender.id));
      name.append(show);
      const fraud = row.insertCell();
      fraud.className = 'num fraud-clicks';
      fraud.textContent = offender.fraud.toLocaleString();
      const byVerdict = row.insertCell();
      byVerdict.className = 'by-verdict';
      for (const [verdict, clicks] of Object.entries(offender.verdicts).sort((a, b) => b[1] - a[1])) {
        const part = document.createElement('span');
        part.className = 'verdict-part';
        part.dataset.verdict = verdict;
        part.style.setProperty('--verdict', colourOf(verdict));
        part.textContent = `${labelOf(verdict)} ${clicks.toLocaleString()}`;
        byVerdict.append(part);
      }
      if (blockable) {
        const action = row.insertCell();
        action.className = 'action';
        if (adminOn) {
          const block = document.createElement('button');
          block.type = 'button';
          block.className = 'block';
          block.textContent = 'Block…';
          block.addEventListener('click', () => openBlockDialog(offender));
          action.append(block);
        }
      }
      return row;
    }),
  );
}

$('offenders-window').addEventListener('change', refreshOffenders);

// ---- blocking, with the admin token the user types in -------------------------------------------

function adminMessage(text) {
  const element = $('admin-message');
  element.textContent = text;
  element.hidden = !text;
}

/**
 * Whether the admin API is on (the page's settings say), and whether this tab's token opens it.
 * The token is only ever sent in the Authorization header of admin requests.
 */
async function checkAdmin() {
  let settings;
  try {
    settings = await getJson('/live/settings.json');
  } catch {
    setAdmin('off');
    return;
  }
  if (!settings.admin_api) return setAdmin('off');
  if (!adminToken) return setAdmin('locked');
  const res = await fetch('/admin/blacklist?limit=1', { headers: { authorization: `Bearer ${adminToken}` } }).catch(() => undefined);
  if (res?.status === 401) {
    forgetToken();
    adminMessage('The admin token kept in this tab was refused; type it again.');
  }
  setAdmin(res?.status === 200 ? 'on' : 'locked');
}

function setAdmin(state) {
  adminOn = state === 'on';
  $('admin-unlock').hidden = state !== 'locked';
  $('admin-on').hidden = state !== 'on';
  refreshOffenders();
}

function forgetToken() {
  adminToken = undefined;
  sessionStorage.removeItem(TOKEN_KEY);
}

$('admin-unlock').addEventListener('submit', async (event) => {
  event.preventDefault();
  const token = $('admin-token').value.trim();
  const res = await fetch('/admin/blacklist?limit=1', { headers: { authorization: `Bearer ${token}` } }).catch(() => undefined);
  if (res?.status !== 200) {
    adminMessage(res?.status === 401 ? 'The admin API refused this token.' : `The admin API could not be reached (${res?.status ?? 'no answer'}).`);
    return;
  }
  adminToken = token;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('admin-token').value = '';
  adminMessage('');
  setAdmin('on');
});
$('admin-forget').addEventListener('click', () => {
  forgetToken();
  adminMessage('');
  setAdmin('locked');
});

let blocking;

function openBlockDialog(offender) {
  blocking = offender;
  $('block-ip').textContent = offender.id;
  const minutes = $('offenders-window').value;
  const verdictsText = Object.entries(offender.verdicts).map(([verdict, clicks]) => `${clicks} ${labelOf(verdict)}`).join(', ');
  $('block-reason').value = `Top offender from the live page: ${offender.fraud} fraud clicks in ${minutes} minutes (${verdictsText})`.slice(0, 500);
  $('block-error').hidden = true;
  $('block-dialog').showModal();
}

$('block-cancel').addEventListener('click', () => $('block-dialog').close());
$('block-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const ttl = $('block-ttl').value;
  const body = { ip: blocking.id, reason: $('block-reason').value, source: 'live-page', ...(ttl ? { ttl } : {}) };
  const error = $('block-error');
  const res = await fetch('/admin/blacklist', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}` },
    body: JSON.stringify(body),
  }).catch(() => undefined);
  const answer = await res?.json().catch(() => ({}));
  if (!res?.ok) {
    if (res?.status === 401) {
      forgetToken();
      $('block-dialog').close();
      adminMessage('The admin API refused the token kept in this tab; type it again.');
      setAdmin('locked');
      return;
    }
    error.textContent = answer?.issues?.map((issue) => issue.message).join('; ') ?? answer?.message ?? 'The admin API could not be reached.';
    error.hidden = false;
    return;
  }
  $('block-dialog').close();
  const until = answer.expires_at === null ? 'with no end' : `until ${secondTime.format(answer.expires_at)}`;
  adminMessage(`Blocked ${answer.ip} ${until}${answer.already_blocked ? ' (it was already on the blacklist)' : ''}: its next click is ip_blacklist.`);
});

// ---- the event stream ---------------------------------------------------------------------------

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
    // The feed has joined: what came before it is the worker's to tell.
    startChart();
  });
  source.addEventListener('decision', onDecision);
  source.addEventListener('skipped', onSkipped);
  source.addEventListener('error', () => {
    if (source.readyState === EventSource.CONNECTING) {
      setConnection('connecting', 'connection lost: reconnecting…');
      return;
    }
    source.close();
    startChart();
    setConnection('down', `the server refused the live feed; retrying in ${Math.round(retryMs / 1000)} s`);
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
  });
}

connect();
checkAdmin();
setInterval(refreshWorkerTotals, WORKER_TOTALS_EVERY_MS);
