// DOM building and formatting. Text always goes in as text nodes, never
// as HTML, so names from flows and configs cannot inject markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// link is an in-console link (followed without reloading the page).
export function link(href, ...children) {
  return h('a', { href, 'data-nav': true }, ...children);
}

// table builds a table from column headers and rows of cells.
export function table(cls, headers, rows, empty) {
  if (!rows.length) return h('p', { class: 'empty' }, empty || 'Nothing to show.');
  return h('table', { class: cls },
    h('thead', {}, h('tr', {}, headers.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

export function section(title, ...children) {
  return h('section', { class: 'panel' }, h('h2', {}, title), ...children);
}

// errorBox explains a failed call; a 503 is ClickHouse being unavailable.
export function errorBox(err, what) {
  const cls = err && err.status === 503 ? 'error unavailable' : 'error';
  const prefix = err && err.status === 503 ? 'ClickHouse is unavailable' : 'Failed';
  return h('div', { class: cls, role: 'alert' }, (what ? what + ': ' : '') + prefix + ' — ' + (err ? err.message : 'unknown error'));
}

export function badge(kind, text) {
  return h('span', { class: 'badge ' + kind + '-' + text }, text);
}

const prefixes = ['', 'k', 'M', 'G', 'T', 'P'];

// rate formats like the notifications do: 2.00 Mpps, 1.20 Gbps.
export function rate(v, unit) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  let i = 0;
  let a = Math.abs(v);
  while (a >= 1000 && i < prefixes.length - 1) {
    a /= 1000;
    v /= 1000;
    i++;
  }
  let num;
  if (i === 0 && Number.isInteger(v)) num = v.toFixed(0);
  else if (a >= 100) num = v.toFixed(0);
  else if (a >= 10) num = v.toFixed(1);
  else num = v.toFixed(2);
  return unit ? num + ' ' + prefixes[i] + unit : num + prefixes[i];
}

export function bytes(v) {
  return rate(v, 'B');
}

function pad(n) {
  return String(n).padStart(2, '0');
}

// when prints a time in UTC: 2026-11-20 11:30:05.
export function when(t) {
  if (!t) return '–';
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() <= 1970) return '–';
  return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()) + ' ' +
    pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()) + ':' + pad(d.getUTCSeconds());
}

// duration prints milliseconds as 1h5m, 42s.
export function duration(ms) {
  let s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + 's';
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const hh = Math.floor(s / 3600);
  s -= hh * 3600;
  const mm = Math.floor(s / 60);
  return (d ? d + 'd' : '') + (hh ? hh + 'h' : '') + (mm ? mm + 'm' : '') || '0m';
}

export function pct(v) {
  return v === null || v === undefined ? '–' : (v * 100).toFixed(0) + '%';
}
