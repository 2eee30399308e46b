// trafficChart draws a rate series against the detector's baseline band as
// SVG: the band (expected ± k spreads) as a filled step area (a snapshot
// holds until the next one), the expected level dashed, the traffic as a
// line, incident markers as vertical lines, and a hover read-out.

import { rate, when } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 960;
const H = 300;
const M = { left: 72, right: 16, top: 14, bottom: 30 };

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

let clipSeq = 0;

// data: {points: [{t, v}], baseline: [{t, expected, low, high, p95}], unit,
// from, to, step_seconds, band_spreads}; markers: [{t, label}].
export function trafficChart(data, markers = []) {
  const from = new Date(data.from).getTime();
  const to = new Date(data.to).getTime();
  const pts = (data.points || []).map((p) => ({ t: new Date(p.t).getTime(), v: p.v }));
  const band = (data.baseline || []).map((b) => ({ ...b, t: new Date(b.t).getTime() }));
  let ymax = 0;
  for (const p of pts) ymax = Math.max(ymax, p.v);
  for (const b of band) if (b.t < to) ymax = Math.max(ymax, b.high);
  ymax = niceMax(ymax > 0 ? ymax * 1.08 : 1);
  const pw = W - M.left - M.right;
  const ph = H - M.top - M.bottom;
  const x = (t) => M.left + ((t - from) / Math.max(1, to - from)) * pw;
  const y = (v) => M.top + ph - (Math.min(v, ymax) / ymax) * ph;
  const f = (n) => n.toFixed(1);

  const clipID = 'fs-clip-' + ++clipSeq;
  const svg = s('svg', {
    class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img',
    'data-points': pts.length, 'data-nonzero': pts.filter((p) => p.v > 0).length, 'data-band': band.length,
    'data-unit': data.unit || '',
  });
  svg.append(s('title', {}, `${data.metric || 'traffic'} against its baseline, ${when(from)} to ${when(to)} UTC`));
  svg.append(s('defs', {}, s('clipPath', { id: clipID }, s('rect', { x: M.left, y: M.top, width: pw, height: ph }))));

  // Grid and y axis labels.
  const grid = s('g', { class: 'grid' });
  for (let i = 0; i <= 4; i++) {
    const v = (ymax * i) / 4;
    grid.append(s('line', { x1: M.left, x2: W - M.right, y1: f(y(v)), y2: f(y(v)) }));
    grid.append(s('text', { x: M.left - 6, y: f(y(v) + 4), 'text-anchor': 'end' }, rate(v, data.unit)));
  }
  for (const t of timeTicks(from, to)) {
    grid.append(s('line', { x1: f(x(t)), x2: f(x(t)), y1: M.top, y2: M.top + ph, class: 'v' }));
    grid.append(s('text', { x: f(x(t)), y: H - 10, 'text-anchor': 'middle' }, tickLabel(t, to - from)));
  }
  svg.append(grid);

  const plot = s('g', { 'clip-path': `url(#${clipID})` });
  // Band and expected level: step functions through the snapshots.
  if (band.length) {
    const upper = [];
    const lower = [];
    const exp = [];
    band.forEach((b, i) => {
      const end = i + 1 < band.length ? band[i + 1].t : Math.max(to, b.t);
      upper.push([x(b.t), y(b.high)], [x(end), y(b.high)]);
      lower.push([x(b.t), y(b.low)], [x(end), y(b.low)]);
      exp.push(`${i ? 'L' : 'M'}${f(x(b.t))},${f(y(b.expected))}`, `L${f(x(end))},${f(y(b.expected))}`);
    });
    const d = upper.map(([a, c], i) => `${i ? 'L' : 'M'}${f(a)},${f(c)}`).join('') +
      lower.reverse().map(([a, c]) => `L${f(a)},${f(c)}`).join('') + 'Z';
    plot.append(s('path', { class: 'band', d }));
    plot.append(s('path', { class: 'expected', d: exp.join('') }));
  }
  // Traffic: a line through the step values, broken where steps are missing.
  if (pts.length) {
    const step = (data.step_seconds || 60) * 1000;
    let d = '';
    pts.forEach((p, i) => {
      const gap = i === 0 || p.t - pts[i - 1].t > step * 1.5;
      d += `${gap ? 'M' : 'L'}${f(x(p.t))},${f(y(p.v))}`;
    });
    plot.append(s('path', { class: 'traffic', d }));
  }
  svg.append(plot);

  for (const m of markers) {
    const t = new Date(m.t).getTime();
    if (!(t >= from && t <= to)) continue;
    svg.append(s('g', { class: 'marker' },
      s('line', { x1: f(x(t)), x2: f(x(t)), y1: M.top, y2: M.top + ph }),
      s('text', { x: f(x(t) + 4), y: M.top + 12 }, m.label)));
  }
  svg.append(s('rect', { class: 'frame', x: M.left, y: M.top, width: pw, height: ph }));

  // Hover read-out: the nearest step and the band in force there.
  const dot = s('circle', { class: 'hover', r: 3.5, cx: -10, cy: -10 });
  const label = s('text', { class: 'hover', x: M.left + 8, y: M.top + ph - 8 }, '');
  const catcher = s('rect', { x: M.left, y: M.top, width: pw, height: ph, fill: 'transparent' });
  catcher.addEventListener('mousemove', (ev) => {
    if (!pts.length) return;
    const box = svg.getBoundingClientRect();
    const t = from + (((ev.clientX - box.left) * (W / box.width)) - M.left) / pw * (to - from);
    let best = pts[0];
    for (const p of pts) if (Math.abs(p.t - t) < Math.abs(best.t - t)) best = p;
    let b = null;
    for (const c of band) if (c.t <= best.t) b = c;
    dot.setAttribute('cx', f(x(best.t)));
    dot.setAttribute('cy', f(y(best.v)));
    label.textContent = `${when(best.t)}  ${rate(best.v, data.unit)}` +
      (b ? `  expected ${rate(b.expected, data.unit)} (band ${rate(b.low, data.unit)}–${rate(b.high, data.unit)})` : '');
  });
  svg.append(dot, label, catcher);
  return svg;
}

// legend explains the chart's marks.
export function chartLegend(data) {
  const k = data.band_spreads;
  const span = (cls, text) => {
    const el = document.createElement('span');
    el.className = 'key ' + cls;
    el.textContent = text;
    return el;
  };
  const div = document.createElement('div');
  div.className = 'legend';
  div.append(span('traffic', `${data.metric} (${data.table}, ${data.step_seconds}s steps)`),
    span('expected', 'expected (baseline)'), span('band', `band: expected ± ${k} spreads`));
  if (!(data.baseline || []).length) div.append(span('none', 'no baseline snapshot in this range'));
  return div;
}

// niceMax rounds an axis maximum up to 1, 2, 2.5 or 5 times a power of ten.
function niceMax(v) {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const MIN = 60e3;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

function timeTicks(from, to) {
  const span = to - from;
  const steps = [MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY];
  const step = steps.find((st) => span / st <= 8) || 30 * DAY;
  const out = [];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) out.push(t);
  return out;
}

function tickLabel(t, span) {
  const s2 = when(t); // YYYY-MM-DD HH:MM:SS
  if (span <= DAY) return s2.slice(11, 16);
  if (span <= 7 * DAY) return s2.slice(5, 16);
  return s2.slice(0, 10);
}
