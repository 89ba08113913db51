// Webhook detail page: its fields, the actions the session may take (edit,
// enable/disable, delete with confirmation, rotate secret, send tests per event name),
// and its recent deliveries with status / event name / time filters.

import { api, enc } from './api.js';
import { h, fill, uid, time, badge, fields, pageHead, spinner, emptyState, confirmDialog, showSecretOnce, announce, errorBox, openDialog } from './dom.js';
import { webhookState, deliveryBadge } from './webhooks.js';
import { loadCatalog } from './webhook-form.js';
import { matchedNames } from './patterns.js';

const RANGES = [['1h', 'Last hour', 3600], ['24h', 'Last 24 hours', 86400], ['7d', 'Last 7 days', 7 * 86400], ['all', 'All time', 0]];

function select(label, options, value) {
  const id = uid('sel');
  const el = h('select', { id, class: 'input' }, options.map(([v, t]) => h('option', { value: v, text: t, selected: v === value })));
  return { el, wrap: h('div', { class: 'form-field inline' }, h('label', { for: id, text: label }), el) };
}

function deliveriesSection(w, ctx, names) {
  const status = select('Status', [['', 'Any status'], ['pending', 'Pending'], ['succeeded', 'Succeeded'], ['failed', 'Failed']], '');
  const event = select('Event name', [['', 'Any event'], ...names.map((n) => [n, n])], '');
  const range = select('Time', RANGES.map(([v, t]) => [v, t]), '7d');
  const refresh = h('button', { type: 'button', class: 'btn btn-small', text: 'Refresh' });
  const results = h('div', { class: 'deliveries' });
  const load = async () => {
    fill(results, h('p', { class: 'loading', text: 'Loading deliveries…' }));
    const secs = RANGES.find((r) => r[0] === range.el.value)[2];
    const query = { limit: 25, status: status.el.value, event_name: event.el.value, since: secs ? new Date(Date.now() - secs * 1000).toISOString() : '' };
    try {
      const list = await api('GET', `/webhooks/${enc(w.id)}/deliveries`, { query });
      if (!list.length) {
        fill(results, emptyState('No deliveries match', 'Deliveries appear here when events this webhook listens to are published.'));
        return;
      }
      fill(results, h('table', { class: 'table' },
        h('caption', { class: 'visually-hidden', text: 'Recent deliveries' }),
        h('thead', {}, h('tr', {}, ['Event', 'Status', 'Attempts', 'Last answer', 'Last attempt'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, list.map((d) => h('tr', {},
          h('td', { 'data-label': 'Event' }, h('a', { href: ctx.link(`/webhooks/${w.id}/deliveries/${d.id}`), class: 'mono', text: d.event_name, 'aria-label': `Delivery ${d.id} of ${d.event_name}` })),
          h('td', { 'data-label': 'Status' }, deliveryBadge(d)),
          h('td', { 'data-label': 'Attempts', text: String(d.attempts) }),
          h('td', { 'data-label': 'Last answer', text: d.last_status_code === null ? '—' : String(d.last_status_code) }),
          h('td', { 'data-label': 'Last attempt' }, time(d.last_attempt_at || d.created_at)))))));
    } catch (e) {
      fill(results, h('p', { class: 'form-error', role: 'alert', text: e.message }));
    }
  };
  for (const s of [status, event, range]) s.el.addEventListener('change', load);
  refresh.addEventListener('click', load);
  load();
  return h('section', { class: 'panel', 'aria-labelledby': 'deliveries-h' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'deliveries-h', text: 'Recent deliveries' }), refresh),
    h('div', { class: 'filters' }, status.wrap, event.wrap, range.wrap),
    results);
}

function testSection(w, names) {
  const matching = matchedNames(w.listened_events, names);
  const pick = select('Event', [['', `All matching events (${matching.length})`], ...matching.map((n) => [n, n])], '');
  const results = h('div', { class: 'test-results', 'aria-live': 'polite' });
  const send = h('button', { type: 'button', class: 'btn', text: 'Send test' });
  send.addEventListener('click', async () => {
    send.disabled = true;
    fill(results, h('p', { class: 'loading', text: 'Sending…' }));
    try {
      const body = pick.el.value ? { event_name: pick.el.value } : undefined;
      const list = await api('POST', `/webhooks/${enc(w.id)}/test`, { body });
      fill(results, h('ul', { class: 'result-list', 'aria-label': 'Test results' }, list.map((r) => h('li', { class: 'result' },
        h('div', { class: 'result-head' },
          h('span', { class: 'mono', text: r.event_name }),
          r.success ? badge('active', 'Delivered') : badge('failed', 'Failed'),
          h('span', { class: 'muted', text: `${r.status_code === null ? 'no answer' : `HTTP ${r.status_code}`} · ${r.duration_ms} ms` })),
        r.error ? h('p', { class: 'bad-text', text: r.error }) : null,
        r.response_body ? h('pre', { class: 'code small', tabindex: '0', 'aria-label': `Response body for ${r.event_name}` }, h('code', { text: r.response_body })) : null))));
      announce(`Test sent: ${list.filter((r) => r.success).length} of ${list.length} delivered`);
    } catch (e) {
      fill(results, h('p', { class: 'form-error', role: 'alert', text: e.message }));
    }
    send.disabled = false;
  });
  return h('section', { class: 'panel', 'aria-labelledby': 'test-h' },
    h('h2', { id: 'test-h', text: 'Send a test' }),
    h('p', { class: 'muted', text: 'Sends a sample event now and shows the answer. Tests are not recorded in the delivery history.' }),
    h('div', { class: 'filters' }, pick.wrap, send),
    results);
}

async function rotate(w, reload) {
  const choice = await openDialog('Rotate signing secret', (close) => {
    const grace = select('Keep the old secret valid for', [['24h', '24 hours (recommended)'], ['1h', '1 hour'], ['7d', '7 days'], ['0s', 'No grace: end it now (leaked secret)']], '24h');
    const err = errorBox();
    return h('form', { onsubmit: (e) => { e.preventDefault(); close(grace.el.value); } },
      h('p', { text: 'A new secret will sign deliveries from now on. The current one keeps signing beside it during the grace period, so your endpoint can switch at its pace.' }),
      grace.wrap, err,
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: () => close(null) }),
        h('button', { type: 'submit', class: 'btn btn-primary', text: 'Rotate secret' })));
  });
  if (!choice) return;
  try {
    const res = await api('POST', `/webhooks/${enc(w.id)}/secret/rotate`, { body: { grace_period: choice } });
    announce('Secret rotated');
    if (res && res.secret) await showSecretOnce('New signing secret', res.secret, 'signing secret');
    reload();
  } catch (e) {
    announce(e.message);
    await confirmDialog('Rotation failed', e.message, 'OK', { danger: false });
  }
}

export async function webhookDetailPage(page, ctx, [id]) {
  const back = { href: ctx.link('/webhooks'), text: 'Webhooks' };
  fill(page, pageHead('Webhook', { back }), spinner());
  const [w, names] = await Promise.all([api('GET', `/webhooks/${enc(id)}`), loadCatalog()]);
  const reload = () => webhookDetailPage(page, ctx, [id]);
  const actionError = errorBox();
  const act = async (btn, fn) => {
    btn.disabled = true;
    actionError.show('');
    try { await fn(); } catch (e) { actionError.show(e.message); btn.disabled = false; }
  };
  const actions = [];
  if (ctx.can('manage')) {
    actions.push(h('a', { class: 'btn', href: ctx.link(`/webhooks/${w.id}/edit`), text: 'Edit' }));
    const toggle = h('button', { type: 'button', class: 'btn', text: w.active ? 'Disable' : 'Enable' });
    toggle.addEventListener('click', () => act(toggle, async () => {
      await api('PATCH', `/webhooks/${enc(w.id)}`, { body: { active: !w.active } });
      announce(w.active ? 'Webhook disabled' : 'Webhook enabled');
      await reload();
      page.querySelector('h1').focus();
    }));
    actions.push(toggle);
  }
  if (ctx.can('secrets') && w.signatures.includes('standard_webhooks')) {
    actions.push(h('button', { type: 'button', class: 'btn', text: 'Rotate secret', onclick: () => rotate(w, reload) }));
  }
  if (ctx.can('manage')) {
    const del = h('button', { type: 'button', class: 'btn btn-danger', text: 'Delete' });
    del.addEventListener('click', async () => {
      const ok = await confirmDialog('Delete this webhook?', h('span', {}, 'Deliveries to ', h('strong', { class: 'url', text: w.endpoint_url }), ' stop, and its pending deliveries end as failed. This cannot be undone.'), 'Delete webhook');
      if (ok) {
        await act(del, async () => {
          await api('DELETE', `/webhooks/${enc(w.id)}`);
          announce('Webhook deleted');
          window.location.hash = ctx.link('/webhooks');
        });
      }
    });
    actions.push(del);
  }
  const secrets = w.secrets && w.secrets.length ? h('ul', { class: 'plain' }, w.secrets.map((s, i) => h('li', {},
    i === 0 ? 'Current, created ' : 'Older, created ', time(s.created_at), s.expires_at ? h('span', {}, ', valid until ', time(s.expires_at)) : ''))) : null;
  fill(page,
    pageHead('Webhook', { back, actions, sub: h('span', { class: 'url', text: w.endpoint_url }) }),
    actionError,
    !w.active && (w.disabled_reason || w.disabled_at) ? h('p', { class: 'notice', role: 'note' },
      'Hookline disabled this webhook', w.disabled_at ? [' on ', time(w.disabled_at)] : '', w.disabled_reason ? `: ${w.disabled_reason}` : '', '.') : null,
    h('section', { class: 'panel', 'aria-label': 'Settings' }, fields([
      ['State', webhookState(w)],
      ['Endpoint URL', h('span', { class: 'url', text: w.endpoint_url })],
      ['Name', w.name || undefined],
      ['Description', w.description || h('span', { class: 'muted', text: 'None' })],
      ['Events', h('ul', { class: 'chips', 'aria-label': 'Events' }, w.listened_events.map((e) => h('li', { class: 'chip', text: e })))],
      ['Signatures', w.signatures.map((s) => (s === 'jwt' ? 'JWT' : 'Standard Webhooks')).join(', ')],
      ['Secrets', secrets || undefined],
      ['Custom headers', Object.keys(w.headers).length ? h('ul', { class: 'plain mono' }, Object.keys(w.headers).map((k) => h('li', { text: `${k}: ••••` }))) : h('span', { class: 'muted', text: 'None' })],
      ['Delivery', `${w.method} · ${w.payload_format === 'standard_webhooks' ? 'Standard Webhooks body' : 'envelope body'}`],
      ['Retry schedule', w.retry_schedule === null ? h('span', { class: 'muted', text: "The deployment's" }) : h('span', { class: 'mono', text: w.retry_schedule || 'none (no retries)' })],
      ['Maximum age', w.max_age ? h('span', { class: 'mono', text: w.max_age }) : undefined],
      ['Rate limit', w.rate_limit ? h('span', { class: 'mono', text: w.rate_limit }) : undefined],
      ['Most in flight', w.max_in_flight ? h('span', { text: String(w.max_in_flight) }) : undefined],
      ['Filter', w.filter ? h('pre', { class: 'mono code', text: JSON.stringify(w.filter, null, 2) }) : undefined],
      ['Failing since', w.failing_since ? time(w.failing_since) : undefined],
      ['Webhook id', h('span', { class: 'mono', text: w.id })],
      ['Created', time(w.created_at)],
      ['Updated', time(w.updated_at)],
    ])),
    ctx.can('deliveries') ? testSection(w, names) : null,
    deliveriesSection(w, ctx, matchedNames(w.listened_events, names)));
}
