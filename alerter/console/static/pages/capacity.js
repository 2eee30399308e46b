// Capacity: per customer, subnet and direction, the p95 and peak of the
// per-minute rates and the growth over 30 or 90 days (flows_1h), with a
// CSV export of the same table.

import { api, download, qs } from '../api.js';
import { bytes, errorBox, h, link, rate, table } from '../dom.js';
import { navigate } from '../nav.js';

export async function capacityPage(view, { params }) {
  const days = params.get('days') || '30';
  const customer = params.get('customer') || '';
  const daysSel = h('select', { name: 'days', id: 'cap-days' }, ['30', '90'].map((d) => h('option', { value: d, selected: d === days }, d + ' days')));
  const cust = h('input', { name: 'customer', id: 'cap-customer', value: customer, size: 14, placeholder: 'all customers' });
  const note = h('span', { class: 'note', id: 'csv-note' });
  const csv = h('button', { type: 'button', id: 'csv' }, 'Download CSV');
  csv.addEventListener('click', async () => {
    try {
      const blob = await download('/api/v1/capacity.csv' + qs({ days, customer }), `flowsentry-capacity-${days}d.csv`);
      note.textContent = `saved (${blob.size} bytes)`;
    } catch (e) {
      note.textContent = e.message;
    }
  });
  const form = h('form', { class: 'filters', id: 'capacity-filters' }, h('label', {}, 'Window ', daysSel),
    h('label', {}, 'Customer ', cust), h('button', { type: 'submit' }, 'Show'), csv, note);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    navigate('/capacity' + qs({ days: daysSel.value, customer: cust.value.trim() }));
  });
  view.append(h('h1', {}, 'Capacity'), form,
    h('p', { class: 'note' }, 'p95 and peak of the per-minute rates of the minutes with traffic; growth compares the mean rate of the last 7 days with the first 7 (from flowsentry.flows_1h).'));
  let c;
  try {
    c = await api('/api/v1/capacity' + qs({ days, customer }));
  } catch (e) {
    view.append(errorBox(e, 'Capacity'));
    return;
  }
  const growth = (g) => (g === null || g === undefined ? h('span', { class: 'note' }, 'new') :
    h('span', { class: g > 20 ? 'up' : g < -20 ? 'down' : '' }, (g > 0 ? '+' : '') + g.toFixed(1) + '%'));
  view.append(table('capacity', ['Customer', 'Subnet', 'Dir', 'p95', 'Peak', 'Average', 'Volume', 'First week', 'Last week', 'Growth'],
    c.rows.map((r) => [r.customer,
      link('/subnets' + qs({ customer: r.customer, subnet: r.subnet, direction: r.direction, range: '30d' }), r.subnet || '(none)'),
      r.direction, rate(r.p95_bps, 'bps'), rate(r.peak_bps, 'bps'), rate(r.avg_bps, 'bps'), bytes(r.bytes),
      rate(r.first_bps, 'bps'), rate(r.last_bps, 'bps'), growth(r.growth_pct)]),
    'No traffic in this window.'));
}
