// Operator's API keys page: every key (or one tenant's with ?tenant=), create a key
// (tenant, scopes, description; the key shown once with Copy), revoke with confirmation.

import { api, listAll, enc } from './api.js';
import { h, fill, uid, time, pageHead, spinner, errorBox, emptyState, confirmDialog, showSecretOnce, announce } from './dom.js';

const SCOPES = ['webhooks:read', 'webhooks:write', 'webhooks:manage', 'webhooks:secrets', 'deliveries:write', 'events:read', 'events:write', 'admin'];
const DEFAULT_SCOPES = ['webhooks:read', 'webhooks:write', 'events:write'];

function createForm(tenant, onCreated) {
  const tId = uid('tenant');
  const dId = uid('desc');
  const tenantIn = h('input', { id: tId, class: 'input mono', type: 'text', value: tenant || '', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'acme' });
  const descIn = h('input', { id: dId, class: 'input', type: 'text', autocomplete: 'off', placeholder: 'Production backend' });
  const boxes = SCOPES.map((s) => h('input', { type: 'checkbox', id: uid('scope'), value: s, checked: DEFAULT_SCOPES.includes(s) }));
  const error = errorBox();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Create key' });
  const form = h('form', { class: 'form' },
    error,
    h('div', { class: 'form-row' },
      h('div', { class: 'form-field' }, h('label', { for: tId, text: 'Tenant' }), tenantIn),
      h('div', { class: 'form-field' }, h('label', { for: dId, text: 'Description' }), descIn)),
    h('fieldset', { class: 'form-section' }, h('legend', { text: 'Scopes' }),
      h('div', { class: 'check-grid' }, boxes.map((b) => h('div', { class: 'check' }, b, h('label', { for: b.id, class: 'mono', text: b.value }))))),
    h('div', { class: 'form-actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.show('');
    const scopes = boxes.filter((b) => b.checked).map((b) => b.value);
    if (!tenantIn.value.trim()) { error.show('Give the tenant.'); tenantIn.focus(); return; }
    if (!scopes.length) { error.show('Choose at least one scope.'); return; }
    submit.disabled = true;
    try {
      const k = await api('POST', '/api-keys', { body: { tenant: tenantIn.value.trim(), scopes, description: descIn.value.trim() || null } });
      announce('API key created');
      descIn.value = '';
      await showSecretOnce('New API key', k.key, 'API key');
      onCreated();
    } catch (err) {
      error.show(err.message);
    }
    submit.disabled = false;
  });
  return form;
}

export async function apiKeysPage(page, ctx, params, query) {
  const tenant = query.get('tenant') || '';
  const title = 'API keys';
  fill(page, pageHead(title), spinner());
  const list = h('div', {}, spinner());
  const load = async () => {
    const [keys, me] = await Promise.all([listAll('/api-keys', { tenant }, 1000), api('GET', '/me').catch(() => null)]);
    if (!keys.length) { fill(list, emptyState('No API keys', tenant ? `Tenant ${tenant} has no keys.` : 'Create one above.')); return; }
    fill(list, h('div', { class: 'table-scroll' }, h('table', { class: 'table' },
      h('caption', { class: 'visually-hidden', text: 'API keys' }),
      h('thead', {}, h('tr', {}, ['Key id', 'Tenant', 'Scopes', 'Description', 'Created', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
      h('tbody', {}, keys.map((k) => {
        const revoke = h('button', { type: 'button', class: 'btn btn-small btn-danger', text: 'Revoke', 'aria-label': `Revoke key ${k.id}` });
        revoke.addEventListener('click', async () => {
          const ok = await confirmDialog('Revoke this API key?', h('span', {}, 'Requests made with ', h('strong', { class: 'mono', text: k.id }), ` (tenant ${k.tenant}) will be refused. This cannot be undone.`), 'Revoke key');
          if (!ok) return;
          try {
            await api('DELETE', `/api-keys/${enc(k.id)}`, { query: { tenant: k.tenant } });
            announce('API key revoked');
            await load();
          } catch (e) {
            announce(e.message);
            await confirmDialog('Revocation failed', e.message, 'OK', { danger: false });
          }
        });
        return h('tr', { dataset: { keyId: k.id } },
          h('td', { 'data-label': 'Key id', class: 'mono wrap', text: k.id }),
          h('td', { 'data-label': 'Tenant', class: 'mono nowrap', text: k.tenant }),
          h('td', { 'data-label': 'Scopes' }, h('ul', { class: 'chips' }, (k.scopes || []).map((s) => h('li', { class: 'chip', text: s })))),
          h('td', { 'data-label': 'Description', text: k.description || '—' }),
          h('td', { 'data-label': 'Created' }, time(k.created_at)),
          h('td', { 'data-label': 'Actions' }, me && me.id === k.id ? h('span', { class: 'muted small', text: 'You are signed in with this key' }) : revoke));
      })))));
  };
  fill(page,
    pageHead(title, { sub: tenant ? `Keys of tenant ${tenant}. ` : 'Keys of every tenant. A key is shown once, when it is created; only its hash is stored.' }),
    tenant ? h('p', {}, h('a', { href: '#/operator/keys', text: 'Show every tenant\'s keys' })) : null,
    h('section', { class: 'panel', 'aria-labelledby': 'new-key-h' }, h('h2', { id: 'new-key-h', text: 'Create a key' }), createForm(tenant, load)),
    h('section', { class: 'panel', 'aria-labelledby': 'keys-h' }, h('h2', { id: 'keys-h', text: 'Keys' }), list));
  await load();
}
