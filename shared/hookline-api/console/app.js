// Entry point: theme, portal-link landing (#portal=<token>), the hash router, the
// header/navigation for portal and operator modes, and the full-page messages for
// refused links and ended sessions.

import { api, store, useCredential, ApiError } from './api.js';
import { h, fill, announce } from './dom.js';
import { applyTheme, themeToggle, productName, logoUrl } from './theme.js';
import { webhookListPage } from './webhooks.js';
import { webhookFormPage } from './webhook-form.js';
import { webhookDetailPage } from './webhook-detail.js';
import { deliveryPage, attemptPage } from './delivery.js';
import { verifyPage } from './verify.js';
import { catalogPage } from './catalog.js';
import { signInPage, overviewPage, tenantsPage } from './operator.js';
import { apiKeysPage } from './operator-keys.js';
import { portalLinksPage } from './operator-links.js';

const ALL_CAPS = ['view', 'manage', 'secrets', 'deliveries'];

// [pattern, page, needs]: needs 'tenant' = a portal session or an operator inside a tenant.
const routes = [
  [/^\/webhooks$/, webhookListPage, 'tenant'],
  [/^\/webhooks\/new$/, webhookFormPage, 'tenant'],
  [/^\/webhooks\/([^/]+)\/edit$/, webhookFormPage, 'tenant'],
  [/^\/webhooks\/([^/]+)$/, webhookDetailPage, 'tenant'],
  [/^\/webhooks\/([^/]+)\/deliveries\/([^/]+)$/, deliveryPage, 'tenant'],
  [/^\/webhooks\/([^/]+)\/deliveries\/([^/]+)\/attempts\/([^/]+)$/, attemptPage, 'tenant'],
  [/^\/events$/, catalogPage, 'tenant'],
  [/^\/verify$/, verifyPage, 'tenant'],
  [/^\/operator$/, overviewPage, 'admin'],
  [/^\/operator\/tenants$/, tenantsPage, 'admin'],
  [/^\/operator\/keys$/, apiKeysPage, 'admin'],
  [/^\/operator\/links$/, portalLinksPage, 'admin'],
];

function parseHash() {
  const raw = window.location.hash.replace(/^#/, '');
  const [path, qs = ''] = raw.split('?');
  return { path: path || '/', query: new URLSearchParams(qs) };
}

/** Full-page message (refused link, ended session): role=alert, one h1. */
function messagePage(title, text, extra) {
  setChrome(null);
  const main = document.getElementById('main');
  fill(main, h('section', { class: 'message-page', role: 'alert' },
    h('h1', { text: title, tabindex: '-1' }), h('p', { text }), extra || null));
  main.querySelector('h1').focus();
}

const LINK_MESSAGES = {
  portal_link_expired: 'This link has expired.',
  portal_link_used: 'This link was already used.',
  portal_link_invalid: 'This link is not valid.',
};

async function landWithPortalLink(token) {
  // The token must not stay in the address bar, the history or a Referer: drop it first.
  history.replaceState(null, '', window.location.pathname + window.location.search);
  try {
    const session = await api('POST', '/portal/sessions', { body: { token }, token: null, tenant: null });
    store.setPortal(session);
    window.location.hash = '#/webhooks';
  } catch (e) {
    const title = (e instanceof ApiError && LINK_MESSAGES[e.code]) || (e.status === 401 ? LINK_MESSAGES.portal_link_invalid : 'This link could not be opened.');
    messagePage(title, `Ask ${productName} for a new one.`);
    if (!(e instanceof ApiError) || e.status !== 401) announce(e.message);
  }
}

function sessionEnded() {
  store.clearPortal();
  messagePage('Your session has ended', `Open the console again from ${productName} to get a new session.`);
}

/** Header: brand, navigation for the mode, theme toggle, sign out. */
function setChrome(ctx) {
  const nav = document.getElementById('nav');
  const tools = document.getElementById('tools');
  const banner = document.getElementById('context');
  const { path } = parseHash();
  const item = (href, text, active) => h('a', { href, class: active ? 'nav-link active' : 'nav-link', 'aria-current': active ? 'page' : null, text });
  nav.replaceChildren();
  tools.replaceChildren(themeToggle());
  banner.hidden = true;
  if (!ctx) { nav.hidden = true; return; }
  nav.hidden = false;
  const list = h('ul', { class: 'nav-list' });
  const add = (href, text, re) => list.append(h('li', {}, item(href, text, re.test(path))));
  if (ctx.mode === 'operator') {
    add('#/operator', 'Overview', /^\/operator$/);
    add('#/operator/tenants', 'Tenants', /^\/operator\/tenants$|^\/webhooks|^\/events|^\/verify/);
    add('#/operator/keys', 'API keys', /^\/operator\/keys/);
    add('#/operator/links', 'Portal links', /^\/operator\/links/);
    tools.append(h('button', { type: 'button', class: 'btn btn-ghost btn-small', text: 'Sign out', onclick: signOut }));
    if (ctx.tenant) {
      banner.hidden = false;
      fill(banner, h('div', { class: 'context-inner' },
        h('span', {}, 'Acting as operator in tenant ', h('strong', { text: ctx.tenant })),
        h('span', { class: 'context-links' },
          h('a', { href: ctx.link('/webhooks'), text: 'Webhooks' }),
          h('a', { href: ctx.link('/events'), text: 'Events' }),
          h('a', { href: ctx.link('/verify'), text: 'How to verify' }))));
    }
  } else {
    add('#/webhooks', 'Webhooks', /^\/webhooks/);
    add('#/events', 'Event catalogue', /^\/events/);
    add('#/verify', 'How to verify', /^\/verify/);
  }
  nav.append(list);
}

function signOut() {
  store.clearAdmin();
  announce('Signed out');
  window.location.hash = '#/operator';
  render();
}

function makeContext(mode, token, tenant, caps) {
  const set = new Set(caps || []);
  return {
    mode, token, tenant,
    can: (cap) => set.has(cap),
    link: (p) => `#${p}${tenant && mode === 'operator' ? `?tenant=${encodeURIComponent(tenant)}` : ''}`,
  };
}

let renderSeq = 0;

async function render() {
  const { path, query } = parseHash();
  const seq = ++renderSeq;
  const main = document.getElementById('main');
  const admin = store.admin();
  const portal = store.portal();
  let ctx = null;
  let match = null;
  let route = null;
  for (const r of routes) {
    match = path.match(r[0]);
    if (match) { route = r; break; }
  }
  if (route && route[2] === 'admin') {
    if (!admin) {
      useCredential(null);
      setChrome(null);
      const page = h('div', { class: 'page' });
      fill(main, page);
      await signInPage(page, () => render());
      return;
    }
    ctx = makeContext('operator', admin, null, ALL_CAPS);
  } else if (query.get('tenant') && admin) {
    ctx = makeContext('operator', admin, query.get('tenant'), ALL_CAPS);
  } else if (portal) {
    if (portal.expires_at && Date.parse(portal.expires_at) <= Date.now()) { sessionEnded(); return; }
    ctx = makeContext('portal', portal.token, null, portal.capabilities);
    ctx.tenantName = portal.tenant;
  } else if (admin) {
    window.location.replace('#/operator');
    return;
  } else {
    messagePage(`${productName} webhooks`, `Open this console from ${productName}: it gives you a link that signs you in.`,
      h('p', {}, h('a', { href: '#/operator', text: 'Operator sign-in' })));
    return;
  }
  if (!route) {
    window.location.replace(ctx.mode === 'operator' && !ctx.tenant ? '#/operator' : ctx.link('/webhooks'));
    return;
  }
  useCredential(ctx.token, ctx.tenant);
  setChrome(ctx);
  const page = h('div', { class: 'page' });
  fill(main, page);
  try {
    await route[1](page, ctx, match.slice(1).map(decodeURIComponent), query);
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e instanceof ApiError && e.status === 401) return; // handled by the unauthorized event
    fill(page, h('div', { class: 'message-page', role: 'alert' }, h('h1', { text: 'Something went wrong', tabindex: '-1' }), h('p', { text: e.message || String(e) })));
  }
  if (seq === renderSeq) {
    const h1 = page.querySelector('h1');
    if (h1 && document.activeElement === document.body) h1.focus({ preventScroll: true });
  }
}

window.addEventListener('hookline:unauthorized', () => {
  const { path, query } = parseHash();
  if (path.startsWith('/operator') || query.get('tenant')) {
    store.clearAdmin();
    messagePage('Your operator session has ended', 'The admin key was refused. Sign in again.', h('p', {}, h('a', { href: '#/operator', text: 'Sign in' })));
  } else {
    sessionEnded();
  }
});

function boot() {
  applyTheme();
  document.getElementById('brand-name').textContent = productName;
  if (logoUrl) document.getElementById('brand').prepend(h('img', { src: logoUrl, alt: '', class: 'logo' }));
  document.querySelector('.skip').addEventListener('click', (e) => {
    e.preventDefault();
    document.getElementById('main').focus();
  });
  const m = window.location.hash.match(/[#&]portal=([^&]+)/);
  if (m) {
    landWithPortalLink(decodeURIComponent(m[1]));
  } else {
    render();
  }
  window.addEventListener('hashchange', () => {
    render().then(() => {
      const h1 = document.querySelector('#main h1');
      if (h1) h1.focus({ preventScroll: true });
    });
    window.scrollTo(0, 0);
  });
}

boot();
