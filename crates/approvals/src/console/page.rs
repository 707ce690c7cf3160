//! The console's page, script and style: one screen for a phone, no outside resources.

pub const INDEX: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="csrf" content="{{csrf}}">
<meta name="referrer" content="no-referrer">
<title>cordon approvals</title>
<link rel="stylesheet" href="/app.css">
</head>
<body>
<header>
  <h1>cordon</h1>
  <nav>
    <button id="tab-pending" class="tab on" type="button">Pending <span id="count">0</span></button>
    <button id="tab-history" class="tab" type="button">History</button>
  </nav>
</header>
<main>
  <section id="pending">
    <p id="empty" class="muted">Nothing waiting. Requests from sandboxed commands appear here.</p>
    <div id="cards"></div>
  </section>
  <section id="history" hidden>
    <form id="filters">
      <input id="f-command" name="command" placeholder="command contains" autocomplete="off">
      <select id="f-decision" name="decision">
        <option value="">any decision</option>
        <option value="allow">allowed</option>
        <option value="deny">denied</option>
        <option value="allow_once">allow once</option>
        <option value="allow_session">allow session</option>
        <option value="allow_always">allow always</option>
      </select>
      <label>since <input id="f-since" type="datetime-local"></label>
      <label>until <input id="f-until" type="datetime-local"></label>
      <button type="submit">Filter</button>
    </form>
    <ol id="events"></ol>
  </section>
</main>
<footer><span id="status" class="muted">connecting…</span></footer>
<script src="/app.js"></script>
</body>
</html>
"#;

pub const UNPAIRED: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cordon: not paired</title></head>
<body><h1>Not paired</h1>
<p>Open the pairing URL (or scan the QR code) that <code>cordon console</code> printed in its terminal.</p>
</body></html>
"#;

pub const CSS: &str = r#"
:root { color-scheme: light dark; --bg: #f6f6f4; --card: #fff; --ink: #1b1b1b; --muted: #6b6b6b;
  --ok: #0a7d32; --no: #b3261e; --line: #ddd; --code: #f0f0ee; }
@media (prefers-color-scheme: dark) { :root { --bg: #121212; --card: #1e1e1e; --ink: #eee;
  --muted: #9a9a9a; --line: #333; --code: #2a2a2a; } }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--ink);
  padding-bottom: env(safe-area-inset-bottom); }
header { position: sticky; top: 0; background: var(--bg); padding: 10px 12px 6px;
  border-bottom: 1px solid var(--line); z-index: 1; }
h1 { font-size: 18px; margin: 0 0 6px; }
nav { display: flex; gap: 8px; }
.tab { flex: 1; padding: 10px; border: 1px solid var(--line); border-radius: 10px;
  background: var(--card); color: var(--ink); font-size: 15px; }
.tab.on { border-color: var(--ink); font-weight: 600; }
main { padding: 12px; max-width: 720px; margin: 0 auto; }
.muted { color: var(--muted); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 14px;
  padding: 12px; margin-bottom: 14px; }
.kind { display: inline-block; font-size: 12px; text-transform: uppercase; letter-spacing: .05em;
  border: 1px solid var(--line); border-radius: 6px; padding: 1px 6px; margin-right: 6px; }
.cmd { font: 15px/1.35 ui-monospace, monospace; background: var(--code); border-radius: 8px;
  padding: 8px; margin: 8px 0; white-space: pre-wrap; word-break: break-all; }
.row { margin: 4px 0; overflow-wrap: anywhere; }
.row b { font-weight: 600; }
details { margin: 6px 0; }
pre { font: 12px/1.35 ui-monospace, monospace; background: var(--code); border-radius: 8px;
  padding: 8px; max-height: 40vh; overflow: auto; white-space: pre-wrap; word-break: break-all; }
.buttons { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; margin-top: 10px; }
.buttons button { min-height: 48px; font-size: 16px; border-radius: 10px; border: 1px solid var(--line);
  background: var(--card); color: var(--ink); }
.buttons .allow_once { background: var(--ok); color: #fff; border-color: var(--ok); }
.buttons .deny { background: var(--no); color: #fff; border-color: var(--no); }
.buttons button:disabled { opacity: .5; }
.error { color: var(--no); }
#filters { display: grid; grid-template-columns: 1fr 1fr; gap: 8px; margin-bottom: 12px; }
#filters input, #filters select, #filters button { width: 100%; min-height: 40px; font-size: 15px; }
#filters label { font-size: 13px; color: var(--muted); }
#f-command { grid-column: 1 / -1; }
#events { list-style: none; padding: 0; margin: 0; }
#events li { border-bottom: 1px solid var(--line); padding: 8px 0; overflow-wrap: anywhere; }
.ev-allow { color: var(--ok); font-weight: 600; }
.ev-deny { color: var(--no); font-weight: 600; }
footer { text-align: center; font-size: 12px; padding: 8px; }
"#;

pub const JS: &str = r#"'use strict';
// Every value shown comes from the agent's side of the sandbox: it is put in the page with
// textContent only, never as markup.
const csrf = document.querySelector('meta[name=csrf]').content;
const LABELS = { allow_once: 'Allow once', allow_session: 'This session',
  allow_always: 'Always', deny: 'Deny' };
const $ = (id) => document.getElementById(id);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function row(label, value) {
  const r = el('div', 'row');
  r.append(el('b', null, label + ': '), document.createTextNode(String(value)));
  return r;
}
let shown = '';
function card(p) {
  const c = el('article', 'card');
  c.dataset.id = p.id;
  c.dataset.run = p.run;
  const head = el('div');
  head.append(el('span', 'kind', p.kind), el('span', 'muted', p.seconds_left + ' s left'));
  c.append(head, el('div', 'cmd', (p.subject || []).join(' ')));
  if (p.cwd) c.append(row('in', p.cwd));
  c.append(row('why', p.reason));
  if (p.rule) c.append(row('rule', p.rule));
  if (p.diff !== null && p.diff !== undefined) {
    const d = el('details');
    d.append(el('summary', null, 'Changes'),
      el('pre', 'diff', typeof p.diff === 'string' ? p.diff : JSON.stringify(p.diff, null, 2)));
    c.append(d);
  }
  if (p.output_tail) {
    const d = el('details');
    d.open = true;
    d.append(el('summary', null, 'Terminal output'), el('pre', 'tail', p.output_tail));
    c.append(d);
  }
  const b = el('div', 'buttons');
  for (const choice of p.choices) {
    const btn = el('button', choice, LABELS[choice] || choice);
    btn.type = 'button';
    btn.dataset.choice = choice;
    btn.addEventListener('click', () => decide(p, choice, c));
    b.append(btn);
  }
  c.append(b);
  return c;
}
async function decide(p, choice, c) {
  for (const btn of c.querySelectorAll('button')) btn.disabled = true;
  const res = await fetch('/api/decide', {
    method: 'POST', credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-Cordon-CSRF': csrf },
    body: JSON.stringify({ run: p.run, id: p.id, choice }),
  });
  if (res.ok) {
    c.replaceChildren(el('div', choice === 'deny' ? 'ev-deny' : 'ev-allow',
      (LABELS[choice] || choice) + ': ' + (p.subject || []).join(' ')));
    c.dataset.answered = choice;
  } else {
    const body = await res.json().catch(() => ({}));
    c.append(el('div', 'error', body.error || ('refused: ' + res.status)));
    for (const btn of c.querySelectorAll('button')) btn.disabled = false;
  }
  setTimeout(refresh, 600);
}
async function refresh() {
  try {
    const res = await fetch('/api/pending', { credentials: 'same-origin' });
    if (!res.ok) { $('status').textContent = 'not paired (' + res.status + ')'; return; }
    const data = await res.json();
    const list = data.pending || [];
    $('count').textContent = list.length;
    $('empty').hidden = list.length > 0;
    const key = JSON.stringify(list.map((p) => [p.run, p.id]));
    const cards = $('cards');
    if (key !== shown) {
      shown = key;
      cards.replaceChildren(...list.map(card));
    } else {
      for (const p of list) {
        const c = cards.querySelector('[data-id="' + CSS.escape(p.id) + '"] .muted');
        if (c) c.textContent = p.seconds_left + ' s left';
      }
    }
    $('status').textContent = data.runs + ' run(s) · updated ' + new Date().toLocaleTimeString();
  } catch (e) {
    $('status').textContent = 'connection lost, retrying…';
  }
}
function iso(v) { return v ? new Date(v).toISOString() : ''; }
async function loadHistory(ev) {
  if (ev) ev.preventDefault();
  const q = new URLSearchParams({
    command: $('f-command').value, decision: $('f-decision').value,
    since: iso($('f-since').value), until: iso($('f-until').value),
  });
  const res = await fetch('/api/history?' + q, { credentials: 'same-origin' });
  const list = $('events');
  if (!res.ok) { list.replaceChildren(el('li', 'error', 'refused: ' + res.status)); return; }
  const data = await res.json();
  list.replaceChildren(...(data.events || []).map((e) => {
    const li = el('li');
    const d = e.decision || '';
    const cls = d.startsWith('allow') ? 'ev-allow' : (d === 'deny' || d === 'refused') ? 'ev-deny' : '';
    const what = e.subject ? e.subject.join(' ') : e.argv ? e.argv.join(' ')
      : e.host ? e.host + ':' + e.port : '';
    li.append(el('div', 'muted', e.ts + ' · ' + e.event.replace(/_/g, ' ')));
    if (d) li.append(el('span', cls, d + ' '));
    if (e.by) li.append(el('span', 'muted', 'by ' + e.by + ' via ' + e.channel + ' '));
    li.append(el('div', 'cmd', what));
    return li;
  }));
  if (!list.children.length) list.append(el('li', 'muted', 'No events match.'));
}
function tab(which) {
  $('pending').hidden = which !== 'pending';
  $('history').hidden = which !== 'history';
  $('tab-pending').classList.toggle('on', which === 'pending');
  $('tab-history').classList.toggle('on', which === 'history');
  if (which === 'history') loadHistory();
}
$('tab-pending').addEventListener('click', () => tab('pending'));
$('tab-history').addEventListener('click', () => tab('history'));
$('filters').addEventListener('submit', loadHistory);
refresh();
setInterval(refresh, 1000);
"#;
