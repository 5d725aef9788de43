// The console: Live (server-sent events of /console/api/live), Flow
// (/console/api/flow, and /api/ops/stats when the binary serves it) and
// Dead letters (/api/ops/poison). Plain DOM, no dependencies; every value
// from the server is set as text, never as HTML.
'use strict';

const $ = (sel) => document.querySelector(sel);
const MAX_ROWS = 500;

const state = {
  token: sessionStorage.getItem('console.token') || '',
  config: { trace_url: '', token_required: false, poison_topic: '' },
  view: 'live',
  live: { source: null, paused: false, filter: {}, rows: 0, retry: null },
  flow: { timer: null },
  dead: { timer: null, filter: {}, selected: null },
};

// ---- API ----------------------------------------------------------------

class APIError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

let asking = null; // the token prompt being shown, shared by every caller

// api calls the admin API with the token; on 401 it asks for the token and
// tries again.
async function api(method, path) {
  for (;;) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    const resp = await fetch(path, { method, headers, cache: 'no-store' });
    if (resp.status === 401) {
      await askToken(state.token ? 'That token was refused.' : '');
      continue;
    }
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) {
      const e = body.error || {};
      throw new APIError(resp.status, e.code || 'http_' + resp.status, e.message || resp.statusText);
    }
    return body;
  }
}

function askToken(message) {
  if (!asking) {
    asking = new Promise((resolve) => {
      const dialog = $('#token-dialog');
      $('#token-error').textContent = message;
      $('#token-input').value = '';
      $('#token-form').onsubmit = (ev) => {
        ev.preventDefault();
        state.token = $('#token-input').value.trim();
        sessionStorage.setItem('console.token', state.token);
        $('#forget-token').hidden = false;
        dialog.close();
        asking = null;
        resolve();
      };
      dialog.oncancel = (ev) => ev.preventDefault(); // nothing works without it
      dialog.showModal();
      $('#token-input').focus();
    });
  }
  return asking;
}

// confirmAction shows what an action will do and resolves to true when the
// operator confirms it.
function confirmAction(title, text, okLabel) {
  return new Promise((resolve) => {
    const dialog = $('#confirm-dialog');
    $('#confirm-title').textContent = title;
    $('#confirm-text').textContent = text;
    $('#confirm-ok').textContent = okLabel;
    const done = (ok) => { dialog.close(); resolve(ok); };
    $('#confirm-ok').onclick = () => done(true);
    $('#confirm-cancel').onclick = () => done(false);
    dialog.oncancel = (ev) => { ev.preventDefault(); done(false); };
    dialog.showModal();
    $('#confirm-cancel').focus();
  });
}

// ---- helpers --------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

// fill replaces node's children with those given, skipping null ones.
function fill(node, ...children) {
  node.replaceChildren(...children.filter((c) => c != null));
}

function setStatus(text, ok) {
  const s = $('#status');
  s.textContent = text;
  s.className = 'status ' + (ok === true ? 'ok' : ok === false ? 'bad' : '');
}

function time(iso) {
  const d = new Date(iso);
  return isNaN(d) ? '' : d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}

const short = (id) => (id && id.length > 13 ? id.slice(0, 8) + '…' + id.slice(-4) : id || '');
const firstLine = (s) => (s || '').split('\n')[0];

function kvTable(entries) {
  const t = el('table');
  for (const [k, v] of entries) t.append(el('tr', {}, el('td', { text: k }), el('td', { class: 'mono', text: v == null ? '' : String(v) })));
  return t;
}

function pretty(text) {
  try { return JSON.stringify(JSON.parse(text), null, 2); } catch { return text; }
}

// traceCell is the trace id, linked to the tracing UI when admin.trace_url
// is set.
function traceCell(id) {
  if (!id) return el('span', { id: 'detail-trace', class: 'mono', text: '— (no traceparent)' });
  if (!state.config.trace_url) return el('span', { id: 'detail-trace', class: 'mono', text: id });
  const href = state.config.trace_url.split('{trace_id}').join(encodeURIComponent(id));
  return el('a', { id: 'detail-trace', class: 'mono', href, target: '_blank', rel: 'noopener noreferrer', text: id });
}

function fillDatalists(flow) {
  const fill = (id, values) => $(id).replaceChildren(...values.map((v) => el('option', { value: v })));
  fill('#topics', flow.topics.map((t) => t.name).concat(flow.poison_topic ? [flow.poison_topic] : []));
  fill('#contexts', flow.contexts);
  fill('#handlers', flow.handlers.map((h) => h.name));
}

function formFilter(form) {
  const f = {};
  for (const [k, v] of new FormData(form)) if (String(v).trim()) f[k] = String(v).trim();
  return f;
}

// ---- views ------------------------------------------------------------------

function show(view) {
  state.view = view;
  for (const v of ['live', 'flow', 'dead']) {
    $('#view-' + v).hidden = v !== view;
    $('#tab-' + v).classList.toggle('active', v === view);
  }
  history.replaceState(null, '', '#' + view);
  clearInterval(state.flow.timer);
  if (view === 'flow') { refreshFlow(); state.flow.timer = setInterval(refreshFlow, 3000); }
  if (view === 'dead') refreshDead();
}

// ---- Live ---------------------------------------------------------------------

async function connectLive() {
  if (state.live.source) state.live.source.close();
  clearTimeout(state.live.retry);
  const q = new URLSearchParams(state.live.filter);
  try {
    const { ticket } = await api('POST', '/console/api/ticket');
    q.set('ticket', ticket);
  } catch (e) {
    setStatus('live: ' + e.message, false);
    state.live.retry = setTimeout(connectLive, 3000);
    return;
  }
  const source = new EventSource('/console/api/live?' + q);
  state.live.source = source;
  source.addEventListener('open', () => setStatus('live', true));
  source.addEventListener('row', (ev) => { if (!state.live.paused) addLiveRow(JSON.parse(ev.data)); });
  source.addEventListener('dropped', (ev) => {
    $('#live-note').textContent = JSON.parse(ev.data).dropped + ' event(s) dropped: the console fell behind';
  });
  // A ticket opens one stream: reconnect with a fresh one.
  source.addEventListener('error', () => {
    source.close();
    if (state.live.source !== source) return;
    setStatus('live: reconnecting', false);
    state.live.retry = setTimeout(connectLive, 2000);
  });
}

function addLiveRow(r) {
  const env = r.envelope || {};
  const tr = el('tr', { 'data-result': r.result, 'data-topic': r.topic, 'data-handler': r.handler, 'data-event': env.event_id || r.message_id, onclick: () => showLiveDetail(tr, r) },
    el('td', { class: 'mono', text: time(r.at) }),
    el('td', {}, el('span', { class: 'badge ' + r.result, text: r.result })),
    el('td', { text: r.handler || '—' }),
    el('td', { text: r.topic }),
    el('td', { class: 'mono', title: env.event_id || r.message_id, text: short(env.event_id || r.message_id) }),
    el('td', { class: 'mono', title: env.correlation_id || '', text: short(env.correlation_id) }),
    el('td', { text: r.attempts }),
    el('td', { text: r.duration_ms.toFixed(1) }));
  const body = $('#live-table tbody');
  body.prepend(tr);
  while (body.rows.length > MAX_ROWS) body.deleteRow(-1);
  $('#live-empty').hidden = true;
}

function showLiveDetail(tr, r) {
  for (const s of document.querySelectorAll('#live-table tr.selected')) s.classList.remove('selected');
  tr.classList.add('selected');
  const env = r.envelope;
  const payload = r.payload !== undefined ? JSON.stringify(r.payload, null, 2) : (r.payload_text || '');
  const filterBy = (key, value) => el('button', { type: 'button', text: 'Only ' + key.replace('_', ' ') + ' ' + short(value), onclick: () => {
    const form = $('#live-filters');
    form.elements[key].value = value;
    form.requestSubmit();
  } });
  fill($('#live-detail'),
    el('h2', { text: r.handler ? r.topic + ' → ' + r.handler : r.topic + ' published' }),
    kvTable(r.handler
      ? [['result', r.result + (r.error ? ': ' + firstLine(r.error) : '')], ['attempts', r.attempts], ['duration', r.duration_ms.toFixed(2) + ' ms'], ['finished', r.at]]
      : [['result', 'published by ' + ((r.envelope && r.envelope.source) || r.context)], ['publish took', r.duration_ms.toFixed(2) + ' ms'], ['at', r.at]]),
    el('h3', { text: 'Trace' }),
    el('table', {}, el('tr', {}, el('td', { text: 'trace id' }), el('td', {}, traceCell(r.trace_id)))),
    el('h3', { text: 'Envelope' }),
    env ? el('div', { id: 'detail-envelope' }, kvTable(Object.entries(env))) : el('p', { id: 'detail-envelope', class: 'error', text: 'Not an event: no envelope in its metadata.' }),
    el('h3', { text: 'Payload' + (r.truncated ? ' (first 64 KiB of ' + r.payload_size + ' bytes)' : '') }),
    el('pre', { id: 'detail-payload', text: payload }),
    r.error ? el('h3', { text: 'Error' }) : null,
    r.error ? el('pre', { text: r.error }) : null,
    el('h3', { text: 'Metadata' }),
    kvTable(Object.entries(r.metadata || {}).sort()),
    el('div', { class: 'buttons' }, env && env.correlation_id ? filterBy('correlation_id', env.correlation_id) : null, r.handler ? filterBy('handler', r.handler) : filterBy('topic', r.topic)),
  );
  $('#live-detail').hidden = false;
}

// ---- Flow ---------------------------------------------------------------------

async function refreshFlow() {
  let flow;
  try {
    flow = await api('GET', '/console/api/flow');
  } catch (e) {
    setStatus('flow: ' + e.message, false);
    return;
  }
  fillDatalists(flow);
  // Rates and lag come from the ops stats, the same figures `app stats` prints.
  let stats = { handlers: [] };
  try {
    stats = await api('GET', '/api/ops/stats');
  } catch { /* the flow still draws, without rates or lag */ }
  const live = statsByHandler(stats);
  const win = stats.rates && stats.rates.window_seconds;
  $('#flow-window').textContent = win ? Math.round(win) + ' s' : 'minute (after a second sample)';
  drawFlow(flow, live);
  const body = $('#flow-table tbody');
  body.replaceChildren(...flow.handlers.map((h) => {
    const s = live[h.name] || {};
    return el('tr', { 'data-handler': h.name },
      el('td', { text: h.name + (h.broadcast ? ' (broadcast)' : '') }),
      el('td', { text: h.topic }),
      el('td', { text: h.concurrency }),
      el('td', { class: 'rate', text: rate(s.runs_per_second) }),
      el('td', { class: 'errors', text: rate(s.errors_per_second) }),
      el('td', { text: h.succeeded }),
      el('td', { text: h.failed }),
      el('td', { text: h.poisoned }),
      el('td', { class: 'lag', text: s.waiting ?? '—' }));
  }));
}

const rate = (v) => (v == null ? '—' : v.toFixed(v >= 10 ? 0 : 2));

// statsByHandler indexes the handlers of GET /api/ops/stats
// ({handlers: [{handler, runs_per_second, errors_per_second, waiting}]}) by name.
function statsByHandler(stats) {
  const out = {};
  for (const h of stats.handlers || []) out[h.handler] = h;
  return out;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

// drawFlow lays out three columns: publishing contexts, topics, handlers.
function drawFlow(flow, live) {
  const map = $('#flow-map');
  const topics = flow.topics.map((t) => ({ name: t.name, context: t.context, consumers: t.consumers }));
  if (flow.poison_topic) topics.push({ name: flow.poison_topic, context: 'bus (poison)', consumers: flow.handlers.filter((h) => h.topic === flow.poison_topic).map((h) => h.name) });
  const handlers = [];
  for (const t of topics) for (const name of t.consumers) handlers.push(flow.handlers.find((h) => h.name === name));
  const row = 46, top = 34;
  const colX = [16, 236, 556], colW = [170, 270, 330];
  const height = top + Math.max(topics.length, handlers.length, 1) * row + 10;
  map.setAttribute('width', colX[2] + colW[2] + 16);
  map.setAttribute('height', height);
  map.setAttribute('viewBox', `0 0 ${colX[2] + colW[2] + 16} ${height}`);
  const nodes = [svg('text', { x: colX[0], y: 20, class: 'head' }, 'publishing context'), svg('text', { x: colX[1], y: 20, class: 'head' }, 'topic'), svg('text', { x: colX[2], y: 20, class: 'head' }, 'handler (rate · errors · lag)')];
  const topicY = new Map(), handlerY = new Map();
  topics.forEach((t, i) => topicY.set(t.name, top + i * row));
  handlers.forEach((h, i) => handlerY.set(h.name, top + i * row));
  const contexts = [...new Set(topics.map((t) => t.context))];
  const ctxY = new Map();
  for (const c of contexts) {
    const ys = topics.filter((t) => t.context === c).map((t) => topicY.get(t.name));
    ctxY.set(c, ys.reduce((a, b) => a + b, 0) / ys.length);
  }
  const edges = [];
  const curve = (x1, y1, x2, y2, cls) => {
    const mx = (x1 + x2) / 2;
    edges.push(svg('path', { d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, class: 'edge ' + cls }));
  };
  for (const t of topics) {
    const y = topicY.get(t.name) + 17;
    curve(colX[0] + colW[0], ctxY.get(t.context) + 17, colX[1], y, '');
    for (const name of t.consumers) {
      const h = flow.handlers.find((x) => x.name === name);
      curve(colX[1] + colW[1], y, colX[2], handlerY.get(name) + 17, h && h.broadcast ? 'broadcast' : '');
    }
  }
  for (const c of contexts) {
    const y = ctxY.get(c);
    nodes.push(svg('rect', { x: colX[0], y, width: colW[0], height: 34, rx: 5, class: 'context' }), svg('text', { x: colX[0] + 10, y: y + 21 }, c));
  }
  for (const t of topics) {
    const y = topicY.get(t.name);
    nodes.push(svg('rect', { x: colX[1], y, width: colW[1], height: 34, rx: 5, class: 'topic' }), svg('text', { x: colX[1] + 10, y: y + 15 }, t.name),
      svg('text', { x: colX[1] + 10, y: y + 28, class: 'small' }, t.consumers.length ? t.consumers.length + ' handler(s)' : 'not handled'));
  }
  for (const h of handlers) {
    const y = handlerY.get(h.name);
    const s = live[h.name] || {};
    const failing = (s.errors_per_second || 0) > 0;
    nodes.push(svg('rect', { x: colX[2], y, width: colW[2], height: 34, rx: 5, class: 'handler' + (failing ? ' failing' : ''), 'data-handler': h.name }),
      svg('text', { x: colX[2] + 10, y: y + 15 }, h.name + (h.broadcast ? ' (broadcast)' : '')),
      svg('text', { x: colX[2] + 10, y: y + 28, class: 'small' }, `${rate(s.runs_per_second)}/s · ${rate(s.errors_per_second)} err/s · ${h.poisoned} poisoned · lag ${s.waiting ?? '—'}`));
  }
  map.replaceChildren(...edges, ...nodes);
}

// ---- Dead letters -------------------------------------------------------------

function deadQuery(extra = {}) {
  return new URLSearchParams({ ...state.dead.filter, ...extra }).toString();
}

async function refreshDead() {
  let list, audit;
  try {
    [list, audit] = await Promise.all([api('GET', '/api/ops/poison?' + deadQuery({ limit: '200' })), api('GET', '/api/ops/poison/audit?limit=10')]);
  } catch (e) {
    $('#dead-note').textContent = e.message;
    return;
  }
  const body = $('#dead-table tbody');
  const shownNow = new Set(list.messages.map((m) => m.id));
  body.replaceChildren(...list.messages.map((m) => {
    const tr = el('tr', { 'data-id': m.id, 'data-topic': m.topic, 'data-handler': m.handler, onclick: () => showDead(m.id) },
      el('td', { class: 'mono', text: new Date(m.poisoned_at).toLocaleString() }),
      el('td', { text: m.topic }),
      el('td', { text: m.handler }),
      el('td', { class: 'attempts', text: m.attempts }),
      el('td', { class: 'reason', title: m.reason, text: firstLine(m.reason) }),
      el('td', {},
        el('button', { type: 'button', class: 'replay', text: 'Replay', onclick: (ev) => { ev.stopPropagation(); replayOne(m); } }), ' ',
        el('button', { type: 'button', class: 'purge danger', text: 'Purge', onclick: (ev) => { ev.stopPropagation(); purgeOne(m); } })));
    if (m.id === state.dead.selected) tr.classList.add('selected');
    return tr;
  }));
  $('#dead-empty').hidden = list.messages.length > 0;
  const filtered = Object.keys(state.dead.filter).length > 0;
  $('#dead-note').textContent = `${list.total} message(s)${filtered ? ' match' : ''}` + (list.total > list.messages.length ? `, the oldest ${list.messages.length} shown` : '');
  if (!filtered) $('#dead-count').textContent = list.total ? String(list.total) : '';
  $('#dead-replay-all').disabled = $('#dead-purge-all').disabled = list.total === 0;
  if (state.dead.selected && !shownNow.has(state.dead.selected)) { $('#dead-detail').hidden = true; state.dead.selected = null; }
  $('#audit-table tbody').replaceChildren(...audit.entries.map((a) => el('tr', {},
    el('td', { class: 'mono', text: new Date(a.at).toLocaleString() }), el('td', { text: a.who }), el('td', { text: a.via }),
    el('td', { text: a.action }), el('td', { class: 'mono', text: a.message_id || [a.topic && 'topic=' + a.topic, a.handler && 'handler=' + a.handler].filter(Boolean).join(' ') || 'all' }),
    el('td', { text: a.messages }))));
}

async function refreshDeadCount() {
  try {
    const list = await api('GET', '/api/ops/poison?limit=1');
    $('#dead-count').textContent = list.total ? String(list.total) : '';
  } catch { /* shown when the view opens */ }
}

function decodePayload(b64) {
  try {
    const bytes = Uint8Array.from(atob(b64 || ''), (c) => c.charCodeAt(0));
    return pretty(new TextDecoder().decode(bytes));
  } catch { return b64; }
}

async function showDead(id) {
  let m;
  try { m = await api('GET', '/api/ops/poison/' + encodeURIComponent(id)); } catch (e) { $('#dead-note').textContent = e.message; return; }
  state.dead.selected = id;
  for (const tr of document.querySelectorAll('#dead-table tbody tr')) tr.classList.toggle('selected', tr.dataset.id === id);
  const md = m.metadata || {};
  fill($('#dead-detail'),
    el('h2', { text: m.topic + ' → ' + m.handler }),
    kvTable([['id', m.id], ['message id', m.message_id], ['poisoned at', m.poisoned_at], ['attempts', m.attempts], ['correlation id', md.correlation_id]]),
    el('h3', { text: 'Reason' }), el('pre', { id: 'dead-reason', text: m.reason }),
    el('h3', { text: 'Payload' }), el('pre', { text: decodePayload(m.payload) }),
    el('h3', { text: 'Metadata' }), kvTable(Object.entries(md).sort()),
    el('div', { class: 'buttons' },
      el('button', { type: 'button', text: 'Replay', onclick: () => replayOne(m) }),
      el('button', { type: 'button', class: 'danger', text: 'Purge', onclick: () => purgeOne(m) })));
  $('#dead-detail').hidden = false;
}

async function act(what, method, path) {
  try {
    const r = await api(method, path);
    $('#dead-note').textContent = what + ': ' + JSON.stringify(r);
  } catch (e) {
    $('#dead-note').textContent = what + ' failed: ' + e.message;
  }
  await refreshDead();
}

async function replayOne(m) {
  if (await confirmAction('Replay this message?', `Send ${m.message_id} of ${m.topic} back to ${m.handler}, the handler that gave up on it after ${m.attempts} attempt(s). If it fails again it comes back here.`, 'Replay')) {
    await act('Replayed', 'POST', '/api/ops/poison/' + encodeURIComponent(m.id) + '/replay');
  }
}

async function purgeOne(m) {
  if (await confirmAction('Purge this message?', `Delete ${m.message_id} of ${m.topic} (handler ${m.handler}) for good. It will never be handled.`, 'Purge')) {
    await act('Purged', 'DELETE', '/api/ops/poison/' + encodeURIComponent(m.id));
  }
}

function filterText() {
  const f = state.dead.filter;
  return Object.keys(f).length ? Object.entries(f).map(([k, v]) => `${k}=${v}`).join(' ') : '';
}

async function replayAll() {
  const f = filterText();
  if (await confirmAction('Replay all matching?', f ? `Replay every poisoned message matching ${f}, each to the handler that gave up on it.` : 'No filter is set: replay EVERY poisoned message, each to the handler that gave up on it.', 'Replay all')) {
    await act('Replayed', 'POST', '/api/ops/poison/replay?' + deadQuery());
  }
}

async function purgeAll() {
  const f = filterText();
  if (await confirmAction('Purge all matching?', f ? `Delete every poisoned message matching ${f} for good.` : 'No filter is set: delete EVERY poisoned message for good.', 'Purge all')) {
    await act('Purged', 'DELETE', '/api/ops/poison?' + (f ? deadQuery() : 'all=true'));
  }
}

// ---- start ----------------------------------------------------------------------

async function start() {
  for (const b of document.querySelectorAll('.tab')) b.addEventListener('click', () => show(b.dataset.view));
  $('#forget-token').hidden = !state.token;
  $('#forget-token').addEventListener('click', () => { sessionStorage.removeItem('console.token'); location.reload(); });
  $('#live-filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.live.filter = formFilter(ev.target);
    $('#live-table tbody').replaceChildren();
    $('#live-empty').hidden = false;
    connectLive();
  });
  $('#live-pause').addEventListener('click', (ev) => {
    state.live.paused = !state.live.paused;
    ev.target.textContent = state.live.paused ? 'Resume' : 'Pause';
  });
  $('#live-clear').addEventListener('click', () => { $('#live-table tbody').replaceChildren(); $('#live-detail').hidden = true; $('#live-note').textContent = ''; });
  $('#dead-filters').addEventListener('submit', (ev) => { ev.preventDefault(); state.dead.filter = formFilter(ev.target); refreshDead(); });
  $('#dead-replay-all').addEventListener('click', replayAll);
  $('#dead-purge-all').addEventListener('click', purgeAll);

  try {
    state.config = await api('GET', '/console/api/config');
  } catch (e) {
    setStatus(e.message, false);
    return;
  }
  api('GET', '/console/api/flow').then(fillDatalists, () => {});
  connectLive();
  refreshDeadCount();
  setInterval(() => { if (state.view === 'dead') refreshDead(); else refreshDeadCount(); }, 3000);
  const initial = location.hash.slice(1);
  show(['live', 'flow', 'dead'].includes(initial) ? initial : 'live');
  document.body.dataset.ready = 'true';
}

start();
