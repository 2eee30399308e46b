// Silences through the alerter's API: list, create (operator), expire
// (operator). Silences from the config file are read-only.

import { api, iso } from '../api.js';
import { badge, errorBox, h, table, when } from '../dom.js';

const DURATIONS = [['1h', 1], ['2h', 2], ['4h', 4], ['12h', 12], ['1d', 24], ['7d', 168]];

export async function silencesPage(view, { params, me }) {
  view.append(h('h1', {}, 'Silences'));
  const listHolder = h('div', { id: 'silence-list' });
  const result = h('p', { class: 'note', id: 'silence-result', role: 'status' });

  const matchers = h('textarea', { name: 'matchers', id: 's-matchers', rows: 3, cols: 40, required: true,
    placeholder: 'one matcher a line: customer=acme, class=~"syn_flood|udp_flood", severity>=warning' }, params.get('matchers') || '');
  const dur = h('select', { name: 'duration', id: 's-duration' }, DURATIONS.map(([d, hrs]) => h('option', { value: hrs, selected: d === '2h' }, d)));
  const comment = h('input', { name: 'comment', id: 's-comment', size: 40, required: true, placeholder: 'why (change ticket, maintenance...)' });
  const form = h('form', { class: 'silence-form', id: 'silence-form' },
    h('label', {}, 'Matchers', matchers), h('label', {}, 'For ', dur), h('label', {}, 'Comment ', comment),
    h('button', { type: 'submit' }, 'Create silence'), result);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const now = new Date();
    const body = {
      matchers: matchers.value.split(/\n|,(?=\s*[a-z_]+\s*(?:=|!=|=~|!~|>=|<=))/).map((m) => m.trim()).filter(Boolean),
      starts_at: iso(now),
      ends_at: iso(new Date(now.getTime() + Number(dur.value) * 3600e3)),
      comment: comment.value.trim(),
    };
    try {
      const s = await api('/api/v1/silences', { method: 'POST', body });
      result.textContent = `Silence ${s.id} created, ${s.status} until ${when(s.ends_at)}.`;
      result.dataset.id = s.id;
      await list(listHolder, me, result);
    } catch (e) {
      result.textContent = e.status === 403 ? 'Your token is read-only: creating a silence needs the operator role.' : e.message;
    }
  });
  view.append(h('section', { class: 'panel' }, h('h2', {}, 'New silence'),
    me.role !== 'operator' ? h('p', { class: 'note' }, 'Your token is read-only: creating and expiring silences need the operator role.') : null, form));
  view.append(h('section', { class: 'panel' }, h('h2', {}, 'All silences'), listHolder));
  await list(listHolder, me, result);
}

async function list(holder, me, result) {
  let res;
  try {
    res = await api('/api/v1/silences');
  } catch (e) {
    holder.replaceChildren(errorBox(e, 'Silences'));
    return;
  }
  const order = { active: 0, pending: 1, expired: 2 };
  const rows = res.silences.sort((a, b) => order[a.status] - order[b.status] || (a.ends_at < b.ends_at ? 1 : -1)).map((s) => {
    let action = s.source === 'config' ? h('span', { class: 'note' }, 'config file') : '';
    if (s.source !== 'config' && s.status !== 'expired') {
      action = h('button', { type: 'button', class: 'expire', 'data-id': s.id, onclick: async () => {
        try {
          await api('/api/v1/silences/' + encodeURIComponent(s.id), { method: 'DELETE' });
          result.textContent = `Silence ${s.id} expired.`;
          await list(holder, me, result);
        } catch (e) {
          result.textContent = e.status === 403 ? 'Expiring needs the operator role.' : e.message;
        }
      } }, 'Expire');
    }
    return [badge('silence', s.status), s.matchers.join(', '), when(s.starts_at), when(s.ends_at), s.created_by, s.comment, s.id, action];
  });
  holder.replaceChildren(table('silences', ['Status', 'Matchers', 'Starts', 'Ends', 'By', 'Comment', 'Id', ''], rows, 'No silences.'));
}
