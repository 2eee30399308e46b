// Calls to the alerter's API. The bearer token the user pasted lives in
// sessionStorage (this tab only, gone when it closes) and goes with every
// call as an Authorization header; the API checks it and logs the caller.

const KEY = 'flowsentry.token';

export function token() {
  return sessionStorage.getItem(KEY) || '';
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body || {};
  }
  // ClickHouse could not answer: the rest of the console still works.
  get unavailable() {
    return this.status === 503;
  }
}

async function call(path, { method = 'GET', body } = {}) {
  const headers = { Authorization: 'Bearer ' + token() };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'the alerter did not answer: ' + e.message);
  }
  if (!r.ok) {
    let b = {};
    try {
      b = await r.json();
    } catch (_) {
      // not JSON: keep the status text
    }
    if (r.status === 401) window.dispatchEvent(new CustomEvent('fs-unauthorized'));
    throw new ApiError(r.status, b.error || r.statusText || 'HTTP ' + r.status, b);
  }
  return r;
}

// api returns the parsed JSON of a call.
export async function api(path, opts) {
  const r = await call(path, opts);
  return r.json();
}

// download saves a call's body as a file (the token cannot ride on a
// plain link).
export async function download(path, filename) {
  const r = await call(path);
  const blob = await r.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  return blob;
}

// qs builds a query string from an object, leaving out empty values.
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') p.set(k, v instanceof Date ? iso(v) : String(v));
  }
  const s = p.toString();
  return s ? '?' + s : '';
}

// iso is RFC 3339 in UTC without milliseconds, as the API parses it.
export function iso(d) {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
