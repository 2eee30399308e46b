// The console's entry point: the token, the navigation bar and a router on
// the page path (so /incidents/{id} links from Slack and PagerDuty open the
// right page).

import { api, setToken, token } from './api.js';
import { h } from './dom.js';
import { navigate, onNavigate } from './nav.js';
import { incidentsPage } from './pages/incidents.js';
import { incidentPage } from './pages/incident.js';
import { subnetsPage } from './pages/subnets.js';
import { capacityPage } from './pages/capacity.js';
import { silencesPage } from './pages/silences.js';

const routes = [
  [/^\/(incidents)?$/, 'incidents', incidentsPage],
  [/^\/incidents\/([^/]+)$/, 'incidents', incidentPage],
  [/^\/subnets$/, 'subnets', subnetsPage],
  [/^\/capacity$/, 'capacity', capacityPage],
  [/^\/silences$/, 'silences', silencesPage],
];

// me is the caller behind the token ({name, role}), or null.
const session = { me: null };

async function whoami() {
  if (!token()) return null;
  try {
    session.me = await api('/api/v1/whoami');
  } catch (e) {
    session.me = null;
    if (e.status === 401) setToken('');
    else throw e;
  }
  return session.me;
}

function showWho() {
  const who = document.getElementById('who');
  if (!session.me) {
    who.replaceChildren();
    return;
  }
  who.replaceChildren(
    h('span', { class: 'me', id: 'me' }, `${session.me.name} (${session.me.role})`),
    h('button', { type: 'button', class: 'link', onclick: () => { setToken(''); session.me = null; render(); } }, 'Sign out'));
}

// tokenForm asks for an API token once per tab.
function tokenForm(main, message) {
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', size: 48, required: true,
    placeholder: 'API token (read-only or operator)' });
  const err = h('p', { class: 'error', role: 'alert', hidden: !message }, message || '');
  const form = h('form', { class: 'login', id: 'login' },
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Paste an alerter API token. It is kept in this browser tab only (sessionStorage) and sent with every call.'),
    input, h('button', { type: 'submit' }, 'Use token'), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setToken(input.value.trim());
    try {
      if (await whoami()) render();
      else {
        err.textContent = 'This token is not accepted.';
        err.hidden = false;
      }
    } catch (e) {
      err.textContent = e.message;
      err.hidden = false;
    }
  });
  main.replaceChildren(form);
  input.focus();
}

async function render() {
  const main = document.getElementById('main');
  const path = location.pathname;
  let match = null;
  let section = '';
  let page = null;
  for (const [re, sec, fn] of routes) {
    const m = path.match(re);
    if (m) {
      match = m;
      section = sec;
      page = fn;
      break;
    }
  }
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.dataset.section === section);
  if (!session.me) {
    try {
      await whoami();
    } catch (e) {
      main.replaceChildren(h('p', { class: 'error' }, e.message));
      return;
    }
  }
  showWho();
  if (!session.me) {
    tokenForm(main);
    return;
  }
  // A fresh container per render: an older page still loading writes into
  // a detached element, never into the new page.
  const view = h('div', { class: 'view', 'data-page': section });
  main.replaceChildren(view);
  if (!page) {
    view.append(h('h1', {}, 'Not found'), h('p', {}, 'No console page at ' + path));
    return;
  }
  document.title = 'Flowsentry · ' + section;
  try {
    await page(view, { match, params: new URLSearchParams(location.search), me: session.me });
  } catch (e) {
    view.append(h('p', { class: 'error', role: 'alert' }, e.message));
  }
}

document.addEventListener('click', (ev) => {
  const a = ev.target.closest('a[data-nav]');
  if (!a || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
  ev.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', render);
onNavigate(render);
window.addEventListener('fs-unauthorized', () => {
  session.me = null;
  setToken('');
  tokenForm(document.getElementById('main'), 'The token was refused (401): sign in again.');
  showWho();
});
render();
