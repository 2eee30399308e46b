// Incidents, open and resolved, from the alerter's own state (works with
// ClickHouse down), filtered by state, customer, class and severity.

import { api, qs } from '../api.js';
import { badge, errorBox, h, link, rate, table, when } from '../dom.js';
import { navigate } from '../nav.js';

export const CLASSES = ['volumetric', 'syn_flood', 'udp_flood', 'icmp_flood', 'fragment_flood', 'amplification',
  'carpet_bombing', 'scan', 'traffic_drop'];
export const SEVERITIES = ['critical', 'warning', 'info'];

function select(name, label, options, value) {
  return h('label', {}, label + ' ',
    h('select', { name, id: 'f-' + name }, options.map(([v, text]) => h('option', { value: v, selected: v === value }, text))));
}

export async function incidentsPage(view, { params }) {
  const f = {
    state: params.has('state') ? params.get('state') : 'open',
    customer: params.get('customer') || '',
    class: params.get('class') || '',
    severity: params.get('severity') || '',
  };
  const form = h('form', { class: 'filters', id: 'incident-filters' },
    select('state', 'State', [['open', 'open'], ['resolved', 'resolved'], ['', 'all']], f.state === 'all' ? '' : f.state),
    h('label', {}, 'Customer ', h('input', { name: 'customer', id: 'f-customer', value: f.customer, size: 14 })),
    select('class', 'Class', [['', 'any'], ...CLASSES.map((c) => [c, c])], f.class),
    select('severity', 'Severity', [['', 'any'], ...SEVERITIES.map((c) => [c, c])], f.severity),
    h('button', { type: 'submit' }, 'Apply'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const d = new FormData(form);
    navigate('/incidents' + qs({ state: d.get('state') || 'all', customer: d.get('customer'), class: d.get('class'),
      severity: d.get('severity') }));
  });
  view.append(h('h1', {}, 'Incidents'), form);
  let list;
  try {
    list = (await api('/api/v1/incidents' + qs({ ...f, state: f.state === 'all' ? '' : f.state }))).incidents;
  } catch (e) {
    view.append(errorBox(e, 'Incidents'));
    return;
  }
  const rows = list.map((i) => [
    when(i.started_at),
    badge('state', i.state),
    badge('sev', i.severity),
    link('/incidents/' + encodeURIComponent(i.id), i.class),
    i.customer,
    i.subnet || '(customer-wide)',
    i.direction,
    `${rate(i.observed, i.unit)} vs ${rate(i.expected, i.unit)}`,
    `${rate(i.peak_bps, 'bps')} / ${rate(i.peak_pps, 'pps')}`,
    i.ack ? 'ack by ' + i.ack.by : '',
  ]);
  view.append(h('p', { class: 'count' }, `${list.length} incident${list.length === 1 ? '' : 's'}`),
    table('incidents', ['Started', 'State', 'Severity', 'Class', 'Customer', 'Subnet', 'Dir', 'Observed vs expected', 'Peak', ''],
      rows, 'No incidents match.'));
}
