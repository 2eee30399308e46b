// Subnet explorer: find a customer or prefix, then its traffic against the
// baseline over a range (flows_1m for hours, flows_1h for days) and its top
// talkers (raw flows, a bounded window at the end of the range).

import { api, iso, qs } from '../api.js';
import { bytes, errorBox, h, link, rate, section, table, when } from '../dom.js';
import { navigate } from '../nav.js';
import { CHART_METRICS, chartPanel } from './incident.js';

const RANGES = [['1h', 1], ['6h', 6], ['24h', 24], ['3d', 72], ['7d', 168], ['30d', 720]];

export async function subnetsPage(view, { params }) {
  const text = params.get('q') || '';
  const input = h('input', { name: 'q', id: 'subnet-q', value: text, size: 28, placeholder: 'customer or prefix, e.g. acme or 203.0.113' });
  const form = h('form', { class: 'filters', id: 'subnet-search' }, input, h('button', { type: 'submit' }, 'Search'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    navigate('/subnets' + qs({ q: input.value.trim() || '*' }));
  });
  view.append(h('h1', {}, 'Subnet explorer'), form);

  const customer = params.get('customer');
  const subnet = params.get('subnet');
  if (customer || subnet) {
    await explore(view, params);
    return;
  }
  if (!params.has('q')) {
    view.append(h('p', {}, 'Search a customer name or part of a prefix (an empty search, *, lists the busiest subnets of the last 7 days).'));
    return;
  }
  const q = text === '*' ? '' : text;
  try {
    const res = await api('/api/v1/subnets' + qs({ q, days: 7 }));
    view.append(section(`Matches (traffic of the last 7 days, flows_1h)`, table('subnets', ['Customer', 'Subnet', 'Bytes (7 days)', 'Last traffic'],
      res.subnets.map((m) => [m.customer, link('/subnets' + qs({ customer: m.customer, subnet: m.subnet }), m.subnet || '(none)'),
        bytes(m.bytes), when(m.last_seen)]), 'No customer or subnet with traffic matches.')));
  } catch (e) {
    view.append(errorBox(e, 'Search'));
  }
}

async function explore(view, params) {
  const customer = params.get('customer') || '';
  const subnet = params.get('subnet') || '';
  const direction = params.get('direction') || 'inbound';
  const metric = params.get('metric') || 'bps';
  let from;
  let to;
  const range = params.get('range') || '6h';
  if (params.get('from') && params.get('to')) {
    from = new Date(params.get('from'));
    to = new Date(params.get('to'));
  } else {
    const hours = (RANGES.find(([r]) => r === range) || RANGES[1])[1];
    to = new Date();
    from = new Date(to.getTime() - hours * 3600e3);
  }
  const base = { customer, subnet, direction, metric, range };
  const go = (over) => navigate('/subnets' + qs({ ...base, ...over }));
  const dirSel = h('select', { id: 'x-direction' }, ['inbound', 'outbound'].map((d) => h('option', { value: d, selected: d === direction }, d)));
  dirSel.addEventListener('change', () => go({ direction: dirSel.value, from: params.get('from'), to: params.get('to') }));
  const metricSel = h('select', { id: 'x-metric' }, CHART_METRICS.map((m) => h('option', { value: m, selected: m === metric }, m)));
  metricSel.addEventListener('change', () => go({ metric: metricSel.value, from: params.get('from'), to: params.get('to') }));
  const ranges = h('span', { class: 'ranges' }, RANGES.map(([r]) =>
    h('button', { type: 'button', class: r === range && !params.get('from') ? 'on' : '', 'data-range': r, onclick: () => go({ range: r }) }, r)));
  view.append(h('h2', { id: 'explore-title' }, `${customer} ${subnet || '(customer-wide)'} ${direction}`),
    h('div', { class: 'filters' }, h('label', {}, 'Direction ', dirSel), h('label', {}, 'Metric ', metricSel), ranges),
    h('p', { class: 'note' }, `${when(from)} to ${when(to)} UTC`));

  const holder = h('div', { class: 'chart-holder', id: 'explore-chart' });
  view.append(section('Traffic against baseline', holder));
  const talkers = h('div', { id: 'talkers' }, h('p', { class: 'loading' }, 'Loading…'));
  view.append(section('Top talkers (raw flows)', talkers));
  await chartPanel(holder, { customer, subnet, direction, metric, from: iso(from), to: iso(to) }, []);
  if (!subnet) {
    talkers.replaceChildren(h('p', { class: 'empty' }, 'Pick a subnet for its top talkers.'));
    return;
  }
  try {
    const t = await api('/api/v1/talkers' + qs({ customer, subnet, direction, from: iso(from), to: iso(to), limit: 10 }));
    const rows = (list) => list.map((x) => [x.key, bytes(x.bytes), rate(x.packets), x.flows]);
    talkers.replaceChildren(
      h('p', { class: 'note' }, `${when(t.from)} to ${when(t.to)}` + (t.clamped ? ' (the last part of the range: raw flows are read for a bounded window)' : '')),
      h('div', { class: 'tops' },
        h('div', { class: 'top' }, h('h3', {}, 'Sources'), table('small', ['Address', 'Bytes', 'Packets', 'Flows'], rows(t.sources))),
        h('div', { class: 'top' }, h('h3', {}, 'Destinations'), table('small', ['Address', 'Bytes', 'Packets', 'Flows'], rows(t.destinations))),
        h('div', { class: 'top' }, h('h3', {}, 'Protocol / port'), table('small', ['proto/port', 'Bytes', 'Packets', 'Flows'], rows(t.ports)))));
  } catch (e) {
    talkers.replaceChildren(errorBox(e, 'Top talkers'));
  }
}
