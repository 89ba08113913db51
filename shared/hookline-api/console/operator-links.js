// Operator's portal links page: mint a one-time portal link for a tenant (capabilities,
// expiry; the URL shown once with Copy), revoke a minted link, revoke all of a tenant's.

import { api, enc } from './api.js';
import { h, fill, uid, time, pageHead, errorBox, confirmDialog, announce, copyButton } from './dom.js';

const CAPS = [
  ['view', 'View webhooks and deliveries'],
  ['manage', 'Create, edit, enable, disable and delete webhooks'],
  ['secrets', 'Rotate signing secrets'],
  ['deliveries', 'Redeliver and send tests'],
];
const EXPIRIES = [['15m', '15 minutes'], ['1h', '1 hour'], ['24h', '24 hours'], ['7d', '7 days']];

export async function portalLinksPage(page, ctx, params, query) {
  const tId = uid('tenant');
  const eId = uid('exp');
  const tenantIn = h('input', { id: tId, class: 'input mono', type: 'text', value: query.get('tenant') || '', autocomplete: 'off', spellcheck: 'false', placeholder: 'acme' });
  const expiry = h('select', { id: eId, class: 'input' }, EXPIRIES.map(([v, t]) => h('option', { value: v, text: t, selected: v === '1h' })));
  const boxes = CAPS.map(([c]) => h('input', { type: 'checkbox', id: uid('cap'), value: c, checked: true, disabled: c === 'view' }));
  const error = errorBox();
  const minted = h('ul', { class: 'plain list-rows', 'aria-label': 'Links minted in this tab' });
  const mint = h('button', { type: 'submit', class: 'btn btn-primary', text: 'Mint link' });
  const revokeAll = h('button', { type: 'button', class: 'btn btn-danger', text: 'Revoke all of this tenant\'s links' });
  const form = h('form', { class: 'form' },
    error,
    h('div', { class: 'form-row' },
      h('div', { class: 'form-field' }, h('label', { for: tId, text: 'Tenant' }), tenantIn),
      h('div', { class: 'form-field' }, h('label', { for: eId, text: 'Link expires after' }), expiry)),
    h('fieldset', { class: 'form-section' }, h('legend', { text: 'Capabilities' }),
      boxes.map((b, i) => h('div', { class: 'check' }, b, h('label', { for: b.id }, h('strong', { text: CAPS[i][0] }), ` — ${CAPS[i][1]}`)))),
    h('div', { class: 'form-actions' }, mint, revokeAll));
  const tenant = () => tenantIn.value.trim();
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.show('');
    if (!tenant()) { error.show('Give the tenant.'); tenantIn.focus(); return; }
    mint.disabled = true;
    try {
      const capabilities = boxes.filter((b) => b.checked).map((b) => b.value);
      const link = await api('POST', '/portal/links', { query: { tenant: tenant() }, body: { capabilities, expires_in: expiry.value } });
      announce('Portal link minted');
      const urlCode = h('code', { class: 'mono wrap', text: link.url });
      const item = h('li', { class: 'minted' },
        h('div', { class: 'minted-head' },
          h('strong', { class: 'mono', text: link.tenant }), ' ',
          h('span', { class: 'muted' }, `${link.capabilities.join(', ')} · expires `, time(link.expires_at))),
        h('div', { class: 'copyable' }, urlCode, copyButton(link.url, 'portal link', urlCode)));
      const revoke = h('button', { type: 'button', class: 'btn btn-small', text: 'Revoke', 'aria-label': `Revoke the link for ${link.tenant}` });
      revoke.addEventListener('click', async () => {
        try {
          await api('DELETE', `/portal/links/${enc(link.id)}`, { query: { tenant: link.tenant } });
          item.classList.add('revoked');
          revoke.replaceWith(h('span', { class: 'badge badge-disabled', text: 'Revoked' }));
          announce('Link revoked');
        } catch (err) { error.show(err.message); }
      });
      item.querySelector('.copyable').append(revoke);
      minted.prepend(item);
    } catch (err) {
      error.show(err.message);
    }
    mint.disabled = false;
  });
  revokeAll.addEventListener('click', async () => {
    error.show('');
    if (!tenant()) { error.show('Give the tenant.'); tenantIn.focus(); return; }
    const ok = await confirmDialog('Revoke every portal link?', `Every link of tenant ${tenant()} stops working, and every portal session opened from one ends.`, 'Revoke all');
    if (!ok) return;
    try {
      const res = await api('DELETE', '/portal/links', { query: { tenant: tenant() } });
      announce(`${res && res.revoked !== undefined ? res.revoked : 'All'} link(s) revoked`);
      error.show('');
      for (const li of minted.children) li.classList.add('revoked');
    } catch (err) { error.show(err.message); }
  });
  fill(page,
    pageHead('Portal links', { sub: 'A portal link signs a tenant\'s user into this console once. Your product\'s backend mints them the same way (POST /portal/links).' }),
    h('section', { class: 'panel', 'aria-labelledby': 'mint-h' }, h('h2', { id: 'mint-h', text: 'Mint a link' }), form),
    h('section', { class: 'panel', 'aria-labelledby': 'minted-h' }, h('h2', { id: 'minted-h', text: 'Minted in this tab' }),
      h('p', { class: 'muted', text: 'Each link works once. Open it in a private window to see the console as the tenant does.' }), minted));
}
