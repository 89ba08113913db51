// Operator view: sign-in with an admin API key (kept in sessionStorage, see api.js),
// the deployment health overview (first 20 tenants' webhooks and 24 h health, summed),
// and the tenant list with links into each tenant's webhooks, keys and portal links.

import { api, listAll, store, enc } from './api.js';
import { h, fill, uid, pageHead, spinner, errorBox, emptyState, fields, time } from './dom.js';
import { webhookState } from './webhooks.js';

export async function signInPage(page, onDone) {
  const id = uid('key');
  const input = h('input', { type: 'password', id, class: 'input mono', autocomplete: 'off', required: true, spellcheck: 'false', 'aria-describedby': `${id}-hint` });
  const error = errorBox();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Sign in' });
  const form = h('form', { class: 'form narrow' },
    error,
    h('div', { class: 'form-field' }, h('label', { for: id, text: 'Admin API key' }), input,
      h('p', { class: 'hint', id: `${id}-hint`, text: 'A key with the admin scope (hkl_…). It stays in this tab only and is forgotten when you sign out or close the tab.' })),
    h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.show('');
    const key = input.value.trim();
    if (!key) { error.show('Enter the admin API key.'); input.focus(); return; }
    submit.disabled = true;
    try {
      const me = await api('GET', '/me', { token: key, tenant: null, noSessionEvents: true });
      if (!me || !(me.scopes || []).includes('admin')) {
        error.show('This key does not have the admin scope.');
      } else {
        store.setAdmin(key);
        input.value = '';
        onDone();
        return;
      }
    } catch (err) {
      error.show(err.status === 401 ? 'This key was not recognised.' : err.message);
    }
    submit.disabled = false;
    input.focus();
  });
  fill(page, h('section', { class: 'signin' },
    pageHead('Operator sign-in', { sub: 'Manage tenants, API keys and portal links of this Hookline deployment.' }),
    h('div', { class: 'panel' }, form)));
}

export async function tenantsPage(page) {
  fill(page, pageHead('Tenants'), spinner());
  const tenants = await listAll('/tenants', {}, 1000);
  const goId = uid('go');
  const go = h('input', { id: goId, class: 'input mono', type: 'text', placeholder: 'acme', autocomplete: 'off', spellcheck: 'false' });
  const goForm = h('form', { class: 'inline-form' },
    h('div', { class: 'form-field inline' }, h('label', { for: goId, text: 'Open tenant' }), go),
    h('button', { type: 'submit', class: 'btn', text: 'Open webhooks' }));
  goForm.addEventListener('submit', (e) => {
    e.preventDefault();
    if (go.value.trim()) window.location.hash = `#/webhooks?tenant=${enc(go.value.trim())}`;
  });
  fill(page,
    pageHead('Tenants', { sub: 'Every tenant with API keys or webhooks. Open one to act inside it as the operator.' }),
    h('div', { class: 'panel' }, goForm),
    tenants.length ? h('div', { class: 'table-scroll' }, h('table', { class: 'table' },
      h('caption', { class: 'visually-hidden', text: 'Tenants' }),
      h('thead', {}, h('tr', {}, ['Tenant', 'API keys', 'Open'].map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, tenants.map((t) => h('tr', {},
        h('td', { 'data-label': 'Tenant' }, h('a', { class: 'mono', href: `#/webhooks?tenant=${enc(t.id)}`, text: t.id, 'aria-label': `Webhooks of tenant ${t.id}` })),
        h('td', { 'data-label': 'API keys', text: String(t.api_keys ?? '—') }),
        h('td', { 'data-label': 'Open' }, h('span', { class: 'row-links' },
          h('a', { href: `#/webhooks?tenant=${enc(t.id)}`, text: 'Webhooks', 'aria-label': `Webhooks of ${t.id}` }),
          h('a', { href: `#/operator/keys?tenant=${enc(t.id)}`, text: 'Keys', 'aria-label': `API keys of ${t.id}` }),
          h('a', { href: `#/operator/links?tenant=${enc(t.id)}`, text: 'Portal links', 'aria-label': `Portal links of ${t.id}` })))))))) : emptyState('No tenants yet', 'Create an API key for a tenant to get started.'));
}

function stat(label, value, note) {
  return h('div', { class: 'stat-card' }, h('p', { class: 'stat-label', text: label }), h('p', { class: 'stat-value', text: value }), note ? h('p', { class: 'muted small', text: note }) : null);
}

export async function overviewPage(page) {
  fill(page, pageHead('Deployment health'), spinner('Reading every tenant\'s webhooks…'));
  const [me, tenants] = await Promise.all([api('GET', '/me'), listAll('/tenants', {}, 20)]);
  const first = tenants.slice(0, 20);
  const rows = await Promise.all(first.map(async (t) => {
    const hooks = await listAll('/webhooks', { tenant: t.id }, 200).catch(() => []);
    const healths = await Promise.all(hooks.map((w) => api('GET', `/webhooks/${enc(w.id)}/health`, { query: { tenant: t.id } }).catch(() => null)));
    return { tenant: t.id, hooks, healths };
  }));
  let active = 0; let disabled = 0; let total = 0; let ok = 0;
  const disabledList = [];
  for (const r of rows) {
    r.hooks.forEach((w, i) => {
      if (w.active) active += 1; else { disabled += 1; disabledList.push({ tenant: r.tenant, w }); }
      const hl = r.healths[i];
      if (hl) { total += hl.total; ok += hl.succeeded; }
    });
  }
  const rate = total ? `${Math.round((ok / total) * 1000) / 10}%` : '—';
  fill(page,
    pageHead('Deployment health', { sub: `Webhooks of the first ${first.length} tenant${first.length === 1 ? '' : 's'}, attempts over the last 24 hours.` }),
    h('div', { class: 'stat-grid' },
      stat('Tenants', String(tenants.length)),
      stat('Active webhooks', String(active)),
      stat('Disabled webhooks', String(disabled)),
      stat('Attempts (24 h)', String(total), `${ok} succeeded, ${total - ok} failed`),
      stat('Success rate (24 h)', rate)),
    h('section', { class: 'panel', 'aria-labelledby': 'per-tenant-h' },
      h('h2', { id: 'per-tenant-h', text: 'By tenant' }),
      rows.length ? h('div', { class: 'table-scroll' }, h('table', { class: 'table' },
        h('caption', { class: 'visually-hidden', text: 'Health by tenant' }),
        h('thead', {}, h('tr', {}, ['Tenant', 'Webhooks', 'Disabled', 'Attempts (24 h)', 'Success'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, rows.map((r) => {
          const t = r.healths.reduce((s, x) => s + (x ? x.total : 0), 0);
          const s = r.healths.reduce((a, x) => a + (x ? x.succeeded : 0), 0);
          return h('tr', {},
            h('td', { 'data-label': 'Tenant' }, h('a', { class: 'mono', href: `#/webhooks?tenant=${enc(r.tenant)}`, text: r.tenant })),
            h('td', { 'data-label': 'Webhooks', text: String(r.hooks.length) }),
            h('td', { 'data-label': 'Disabled', text: String(r.hooks.filter((w) => !w.active).length) }),
            h('td', { 'data-label': 'Attempts (24 h)', text: String(t) }),
            h('td', { 'data-label': 'Success', text: t ? `${Math.round((s / t) * 1000) / 10}%` : '—' }));
        })))) : emptyState('No tenants yet', null)),
    h('section', { class: 'panel', 'aria-labelledby': 'disabled-h' },
      h('h2', { id: 'disabled-h', text: 'Disabled webhooks' }),
      disabledList.length ? h('ul', { class: 'plain list-rows' }, disabledList.map(({ tenant, w }) => h('li', {},
        h('a', { class: 'url', href: `#/webhooks/${enc(w.id)}?tenant=${enc(tenant)}`, text: w.endpoint_url }), ' ',
        h('span', { class: 'muted' }, `(${tenant}) `), webhookState(w),
        w.disabled_reason ? h('span', { class: 'muted small' }, ` ${w.disabled_reason}`, w.disabled_at ? [' · ', time(w.disabled_at)] : '') : null)))
        : h('p', { class: 'muted', text: 'None: every webhook is active.' })),
    h('section', { class: 'panel', 'aria-labelledby': 'me-h' },
      h('h2', { id: 'me-h', text: 'Signed in as' }),
      fields([
        ['Key id', h('span', { class: 'mono', text: me.id || '—' })],
        ['Tenant', h('span', { class: 'mono', text: me.tenant || '—' })],
        ['Scopes', (me.scopes || []).join(', ')],
      ])));
}
