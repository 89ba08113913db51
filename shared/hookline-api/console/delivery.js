// Delivery detail (its attempts, Redeliver) and attempt detail (the request as sent:
// method, URL, headers, pretty body; and the answer: status, duration, error, body).

import { api, enc } from './api.js';
import { h, fill, time, badge, fields, pageHead, spinner, pretty, errorBox, announce, codeBlock } from './dom.js';
import { deliveryBadge } from './webhooks.js';

function attemptBadge(a) {
  if (a.status_code !== null && a.status_code >= 200 && a.status_code < 300) return badge('active', `HTTP ${a.status_code}`);
  return badge('failed', a.status_code === null ? 'No answer' : `HTTP ${a.status_code}`);
}

export async function deliveryPage(page, ctx, [id, did]) {
  const back = { href: ctx.link(`/webhooks/${id}`), text: 'Webhook' };
  fill(page, pageHead('Delivery', { back }), spinner());
  const d = await api('GET', `/webhooks/${enc(id)}/deliveries/${enc(did)}`);
  const actions = [];
  const actionError = errorBox();
  if (ctx.can('deliveries')) {
    const btn = h('button', { type: 'button', class: 'btn btn-primary', text: 'Redeliver' });
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      actionError.show('');
      try {
        await api('POST', `/webhooks/${enc(id)}/deliveries/${enc(did)}/redeliver`);
        announce('Redelivery queued: a new attempt is being made now');
        window.setTimeout(() => deliveryPage(page, ctx, [id, did]), 1200);
      } catch (e) {
        actionError.show(e.message);
        btn.disabled = false;
      }
    });
    actions.push(btn);
  }
  const attempts = d.attempts || [];
  fill(page,
    pageHead('Delivery', { back, actions, sub: h('span', { class: 'mono', text: d.id }) }),
    actionError,
    h('section', { class: 'panel', 'aria-label': 'Delivery' }, fields([
      ['Event', h('span', { class: 'mono', text: d.event_name })],
      ['Status', deliveryBadge(d)],
      ['Event id', h('span', { class: 'mono', text: d.event_id })],
      ['Created', time(d.created_at)],
      ['Delivered', d.delivered_at ? time(d.delivered_at) : undefined],
      ['Next attempt', d.next_attempt_at ? time(d.next_attempt_at) : undefined],
    ])),
    h('section', { class: 'panel', 'aria-labelledby': 'attempts-h' },
      h('h2', { id: 'attempts-h', text: `Attempts (${attempts.length})` }),
      attempts.length ? h('ol', { class: 'attempts' }, attempts.map((a, i) => h('li', { class: 'attempt' },
        h('a', { href: ctx.link(`/webhooks/${id}/deliveries/${did}/attempts/${a.id}`), class: 'attempt-link' },
          h('span', { class: 'attempt-n', text: `Attempt ${i + 1}` }),
          attemptBadge(a),
          time(a.attempted_at),
          h('span', { class: 'muted', text: `${a.duration_ms} ms` }),
          h('span', { class: 'attempt-more', text: 'Request and answer →' })),
        a.error ? h('p', { class: 'bad-text small', text: a.error }) : null)))
        : h('p', { class: 'muted', text: 'No attempt yet.' })));
}

function headerTable(headers) {
  const entries = Object.entries(headers || {});
  return h('table', { class: 'table kv' },
    h('caption', { class: 'visually-hidden', text: 'Request headers' }),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Header' }), h('th', { scope: 'col', text: 'Value' }))),
    h('tbody', {}, entries.map(([k, v]) => h('tr', {},
      h('th', { scope: 'row', class: 'mono', text: k }),
      h('td', { class: 'mono wrap', text: String(v) })))));
}

export async function attemptPage(page, ctx, [id, did, aid]) {
  const back = { href: ctx.link(`/webhooks/${id}/deliveries/${did}`), text: 'Delivery' };
  fill(page, pageHead('Attempt', { back }), spinner());
  const a = await api('GET', `/webhooks/${enc(id)}/deliveries/${enc(did)}/attempts/${enc(aid)}`);
  const req = a.request || {};
  fill(page,
    pageHead('Attempt', { back, sub: h('span', { class: 'mono', text: a.id }) }),
    h('section', { class: 'panel', 'aria-labelledby': 'answer-h' },
      h('h2', { id: 'answer-h', text: 'Answer' }),
      fields([
        ['Status', attemptBadge(a)],
        ['Attempted', time(a.attempted_at)],
        ['Duration', `${a.duration_ms} ms`],
        ['Error', a.error ? h('span', { class: 'bad-text', text: a.error }) : undefined],
      ]),
      a.response_body ? codeBlock(pretty(a.response_body), 'Response body (first 4 KiB)') : h('p', { class: 'muted', text: 'The response had no body.' })),
    h('section', { class: 'panel', 'aria-labelledby': 'request-h' },
      h('h2', { id: 'request-h', text: 'Request as sent' }),
      h('p', { class: 'request-line mono' }, h('strong', { text: req.method || 'POST' }), ' ', h('span', { class: 'wrap', text: req.url || '' })),
      h('h3', { text: 'Headers' }),
      h('div', { class: 'table-scroll' }, headerTable(req.headers)),
      h('h3', { text: 'Body' }),
      codeBlock(pretty(req.body || ''), 'Request body')));
}
