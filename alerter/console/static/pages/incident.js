// One incident: facts and fingerprint from the alerter's state, the
// subnet's traffic against its baseline band around the incident, the
// timeline and notification attempts from ClickHouse, what each receiver
// was told from the alerter's state, the suggested mitigation.

import { api, iso, qs } from '../api.js';
import { chartLegend, trafficChart } from '../chart.js';
import { badge, bytes, duration, errorBox, h, link, pct, rate, section, table, when } from '../dom.js';

export const CHART_METRICS = ['bps', 'pps', 'flows', 'pps_tcp', 'pps_udp', 'pps_icmp', 'pps_other'];

// chartMetric is the incident's own metric when the rollups can draw it,
// else the volume in its unit.
function chartMetric(i) {
  if (CHART_METRICS.includes(i.metric)) return i.metric;
  return i.unit === 'pps' ? 'pps' : 'bps';
}

// window is 30 minutes before the start to 10 minutes after the end (or now).
function chartWindow(i) {
  const now = Date.now();
  const started = new Date(i.started_at).getTime();
  const last = i.ended_at ? new Date(i.ended_at).getTime() : now;
  return { from: new Date(started - 30 * 60e3), to: new Date(Math.min(now, last + 10 * 60e3)) };
}

export async function chartPanel(holder, q, markers) {
  holder.replaceChildren(h('p', { class: 'loading' }, 'Loading traffic…'));
  try {
    const data = await api('/api/v1/traffic' + qs(q));
    holder.replaceChildren(trafficChart(data, markers), chartLegend(data));
    return data;
  } catch (e) {
    holder.replaceChildren(errorBox(e, 'Traffic chart'));
    return null;
  }
}

function top(title, items) {
  if (!items || !items.length) return null;
  return h('div', { class: 'top' }, h('h3', {}, title),
    table('small', ['', 'share', 'packets', 'bytes'], items.map((t) => [t.key, pct(t.share), rate(t.packets), bytes(t.bytes)])));
}

export async function incidentPage(view, { match, me }) {
  const id = decodeURIComponent(match[1]);
  let data;
  try {
    data = await api('/api/v1/incidents/' + encodeURIComponent(id));
  } catch (e) {
    view.append(h('h1', {}, 'Incident ' + id), errorBox(e, 'Incident'));
    return;
  }
  const i = data.incident;
  const fp = i.fingerprint || {};
  const ended = i.ended_at ? new Date(i.ended_at).getTime() : 0;
  const started = new Date(i.started_at).getTime();
  const win = chartWindow(i);

  view.append(h('h1', { id: 'incident-title' }, data.summary.title, ' ', badge('state', i.state)));
  const facts = [
    ['Incident', i.id],
    ['Customer / subnet', `${i.customer} ${i.subnet || '(customer-wide)'} ${i.direction}`],
    ['Class / severity', `${i.class} / ${i.severity} (highest ${i.max_severity})`],
    ['Started', when(i.started_at)],
    ['Ended', ended ? `${when(i.ended_at)} after ${duration(ended - started)} (${i.resolved_by}: ${i.reason || ''})` : `open for ${duration(Date.now() - started)}`],
    ['Figures', data.summary.figures],
    ['Peak', `${rate(i.peak_bps, 'bps')} / ${rate(i.peak_pps, 'pps')}`],
    ['Total', `${bytes(i.total_bytes)}, ${rate(i.total_packets)} packets`],
    ['Acknowledged', i.ack ? `${i.ack.by} at ${when(i.ack.at)} ${i.ack.comment || ''}` : 'no'],
  ];
  view.append(h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));

  const explore = '/subnets' + qs({ customer: i.customer, subnet: i.subnet, direction: i.direction, from: win.from, to: win.to });
  const silence = '/silences' + qs({ matchers: [`customer=${i.customer}`, i.subnet ? `subnet=${i.subnet}` : '', `class=${i.class}`].filter(Boolean).join('\n') });
  const actions = h('div', { class: 'actions' }, link(explore, 'Explore this subnet'), ' · ', link(silence, 'Silence similar incidents'));
  if (i.state === 'open' && !i.ack && me.role === 'operator') {
    const comment = h('input', { name: 'comment', placeholder: 'comment', size: 24 });
    const out = h('span', { class: 'note' });
    const form = h('form', { class: 'inline', id: 'ack' }, comment, h('button', { type: 'submit' }, 'Acknowledge'), out);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      try {
        await api(`/api/v1/incidents/${encodeURIComponent(id)}/ack`, { method: 'POST', body: { comment: comment.value } });
        out.textContent = 'acknowledged';
      } catch (e) {
        out.textContent = e.message;
      }
    });
    actions.append(' · ', form);
  }
  view.append(actions);

  // Chart: the subnet's traffic and baseline band around the incident.
  const metricSel = h('select', { id: 'chart-metric' }, CHART_METRICS.map((m) => h('option', { value: m, selected: m === chartMetric(i) }, m)));
  const holder = h('div', { class: 'chart-holder', id: 'incident-chart' });
  const markers = [{ t: i.started_at, label: 'start' }];
  if (ended) markers.push({ t: i.ended_at, label: 'end' });
  const draw = () => chartPanel(holder, { customer: i.customer, subnet: i.subnet, direction: i.direction, metric: metricSel.value,
    from: iso(win.from), to: iso(win.to) }, markers);
  metricSel.addEventListener('change', draw);
  view.append(section('Traffic against baseline', h('label', {}, 'Metric ', metricSel), holder));

  // Fingerprint and mitigation, as the detector sent them.
  const tops = [top('Top sources', fp.top_sources), top('Top destinations', fp.top_destinations),
    top('Destination ports', fp.top_dst_ports), top('Source ports', fp.top_src_ports), top('Protocols', fp.top_protocols)].filter(Boolean);
  const distinct = [];
  if (fp.distinct_sources) distinct.push(`~${fp.distinct_sources} distinct sources`);
  if (fp.distinct_destinations) distinct.push(`~${fp.distinct_destinations} distinct destinations`);
  view.append(section('Fingerprint', tops.length ? h('div', { class: 'tops', id: 'fingerprint' }, tops) : h('p', { class: 'empty' }, 'No fingerprint.'),
    distinct.length ? h('p', {}, distinct.join(', ')) : null));
  view.append(section('Suggested mitigation', data.summary.mitigation ? h('pre', { id: 'mitigation' }, data.summary.mitigation) : h('p', { class: 'empty' }, 'None suggested.')),
    section('Query the flows', h('pre', { class: 'sql' }, data.summary.sql)));

  // What each receiver was told (alerter state: always there).
  view.append(section('Receivers (alerter state)', table('small', ['Receiver', 'Told', 'Resolved told', 'Last outcome', 'At'],
    data.notifications.map((n) => [n.receiver, n.told_severity || '–', n.told_resolved ? 'yes' : 'no', n.outcome || '–', when(n.at || n.last_sent_at)]),
    'Not routed to any receiver yet.')));

  // Timeline and attempts (ClickHouse).
  const timeline = h('div', { id: 'timeline' }, h('p', { class: 'loading' }, 'Loading…'));
  view.append(section('Timeline and notifications (ClickHouse)', timeline));
  draw();
  try {
    const hist = await api(`/api/v1/incidents/${encodeURIComponent(id)}/history`);
    timeline.replaceChildren(
      h('h3', {}, 'Detector events'),
      table('small events', ['Seq', 'Event', 'At', 'Severity', 'Observed', 'Expected', 'Score', 'Reason'],
        hist.events.map((e) => [e.seq, e.kind.toUpperCase(), when(e.kind === 'end' ? e.ended_at : e.updated_at), e.severity,
          rate(e.observed, e.unit), rate(e.expected, e.unit), e.score.toFixed(1), e.reason || ''])),
      h('h3', {}, 'Notifications sent'),
      table('small notifications', ['At', 'Record', 'Action', 'Receiver', 'Attempt', 'Outcome', 'Status', 'Latency', 'Actor / error'],
        hist.notifications.map((n) => [when(n.time), n.record, n.action, n.receiver || '', n.attempt || '', n.outcome || '',
          n.status || '', n.latency_ms ? n.latency_ms + ' ms' : '', n.error || n.actor || n.detail || ''])));
  } catch (e) {
    timeline.replaceChildren(errorBox(e, 'Timeline'));
  }
}
