// The API client: base path, credentials kept in sessionStorage, the bearer header,
// `?tenant=` for an operator acting inside a tenant, `{data}` envelopes and errors.
//
// Credentials live in sessionStorage (this tab only), never localStorage or cookies:
// the console works inside a third-party iframe, where cookies are blocked or
// partitioned; a bearer header cannot be sent by a cross-site form, so there is no
// CSRF; and XSS is shut out by the strict CSP the server sends (no inline script, no
// eval) plus DOM building with textContent only.

const PORTAL_KEY = 'hookline.portal';
const ADMIN_KEY = 'hookline.admin';

/** API base: the console's path with the trailing `console/...` removed (`/prod/console/` -> `/prod`). */
export const apiBase = (() => {
  const p = window.location.pathname;
  const i = p.lastIndexOf('/console');
  return i >= 0 ? p.slice(0, i) : '';
})();

/** The console's own URL path (for links minted elsewhere). */
export const consolePath = `${apiBase}/console/`;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `Request failed (${status})`);
    this.status = status;
    this.code = code || 'error';
  }
}

export const store = {
  portal() {
    try { return JSON.parse(sessionStorage.getItem(PORTAL_KEY) || 'null'); } catch { return null; }
  },
  setPortal(session) { sessionStorage.setItem(PORTAL_KEY, JSON.stringify(session)); },
  clearPortal() { sessionStorage.removeItem(PORTAL_KEY); },
  admin() { return sessionStorage.getItem(ADMIN_KEY); },
  setAdmin(key) { sessionStorage.setItem(ADMIN_KEY, key); },
  clearAdmin() { sessionStorage.removeItem(ADMIN_KEY); },
};

// The credential and tenant the current page acts with (set by the router).
let current = { token: null, tenant: null };
export function useCredential(token, tenant = null) { current = { token, tenant }; }
export function currentTenant() { return current.tenant; }

/**
 * Calls the API. opts: body (wrapped in {data}), query (object), token (overrides the
 * current credential; null = none), tenant (overrides), raw (return the whole envelope).
 */
export async function api(method, path, opts = {}) {
  const token = 'token' in opts ? opts.token : current.token;
  const tenant = 'tenant' in opts ? opts.tenant : current.tenant;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(opts.query || {})) {
    if (v !== undefined && v !== null && v !== '') params.set(k, v);
  }
  if (tenant) params.set('tenant', tenant);
  const qs = params.toString();
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify({ data: opts.body });
  }
  let res;
  try {
    res = await fetch(`${apiBase}${path}${qs ? `?${qs}` : ''}`, { method, headers, body, credentials: 'omit', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'network', 'Hookline could not be reached. Check your connection and try again.');
  }
  if (res.status === 204) return null;
  let json = null;
  try { json = await res.json(); } catch { json = null; }
  if (!res.ok) {
    const err = json && json.error;
    const e = new ApiError(res.status, err && err.code, err && err.message);
    if (res.status === 401 && token && !opts.noSessionEvents) {
      window.dispatchEvent(new CustomEvent('hookline:unauthorized', { detail: e }));
    }
    throw e;
  }
  return opts.raw ? json : json && json.data;
}

/** Follows next_cursor until the list ends (or `max` items). */
export async function listAll(path, query = {}, max = 1000) {
  const out = [];
  let cursor = null;
  do {
    const page = await api('GET', path, { query: { ...query, limit: 100, cursor }, raw: true });
    out.push(...(page.data || []));
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}

export const enc = encodeURIComponent;
