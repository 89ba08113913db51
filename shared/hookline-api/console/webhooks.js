// Webhook list page: each webhook with its state (and why Hookline disabled it), its
// 24 h health, a 24-bar SVG chart of recent deliveries, and the last delivery.
// Also the shared bits other pages use: status badge and the chart builder.

import { api, listAll, enc } from './api.js';
import { h, fill, time, badge, emptyState, pageHead, spinner, announce } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** State badge for a webhook. */
export function webhookState(w) {
  if (w.active) return w.failing_since ? badge('warning', 'Failing') : badge('active', 'Active');
  return badge('disabled', 'Disabled');
}

/** Hourly buckets (oldest first) of the last 24 h: {ok, failed, pending} counts. */
export function hourlyBuckets(deliveries, now = Date.now()) {
  const buckets = Array.from({ length: 24 }, () => ({ ok: 0, failed: 0, pending: 0 }));
  for (const d of deliveries) {
    const t = Date.parse(d.last_attempt_at || d.created_at);
    const age = now - t;
    if (!(age >= 0 && age < 24 * 3600 * 1000)) continue;
    const b = buckets[23 - Math.floor(age / 3600000)];
    if (d.status === 'succeeded') b.ok += 1;
    else if (d.status === 'failed') b.failed += 1;
    else b.pending += 1;
  }
  return buckets;
}

/** A small inline SVG bar chart of 24 hourly buckets. */
export function deliveryChart(deliveries) {
  const buckets = hourlyBuckets(deliveries);
  const max = Math.max(1, ...buckets.map((b) => b.ok + b.failed + b.pending));
  const ok = buckets.reduce((s, b) => s + b.ok, 0);
  const failed = buckets.reduce((s, b) => s + b.failed, 0);
  const pending = buckets.reduce((s, b) => s + b.pending, 0);
  const W = 24 * 6;
  const H = 32;
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', preserveAspectRatio: 'none', focusable: 'false' });
  const title = svg('title');
  title.textContent = `Deliveries in the last 24 hours: ${ok} succeeded, ${failed} failed, ${pending} pending`;
  chart.append(title);
  chart.setAttribute('aria-label', title.textContent);
  chart.append(svg('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: 'chart-base' }));
  buckets.forEach((b, i) => {
    let y = H;
    for (const [n, cls] of [[b.ok, 'bar-ok'], [b.failed, 'bar-failed'], [b.pending, 'bar-pending']]) {
      if (!n) continue;
      const hgt = Math.max(2, (n / max) * (H - 2));
      y -= hgt;
      chart.append(svg('rect', { x: i * 6 + 1, y, width: 4, height: hgt, class: cls, rx: 1 }));
    }
  });
  return chart;
}

function healthText(health) {
  if (!health) return h('span', { class: 'muted', text: 'Health unavailable' });
  if (!health.total) return h('span', { class: 'muted', text: 'No attempts in 24 h' });
  const pct = Math.round((health.success_rate || 0) * 1000) / 10;
  return h('span', {},
    h('strong', { class: pct >= 95 ? 'ok-text' : pct >= 50 ? 'warn-text' : 'bad-text', text: `${pct}%` }),
    ` success · ${health.succeeded} ok, ${health.failed} failed (${health.window_hours} h)`);
}

export function deliveryBadge(d) {
  const kind = d.status === 'succeeded' ? 'active' : d.status === 'failed' ? 'failed' : 'pending';
  return badge(kind, d.status.charAt(0).toUpperCase() + d.status.slice(1));
}

/** Enables a webhook Hookline (or someone) disabled. */
export async function enableWebhook(id) {
  await api('PATCH', `/webhooks/${enc(id)}`, { body: { active: true } });
  announce('Webhook enabled');
}

function webhookCard(w, ctx, onChange) {
  const stats = h('div', { class: 'card-stats' }, spinner('Loading health…'));
  const li = h('li', { class: 'card webhook-card' },
    h('div', { class: 'card-main' },
      h('div', { class: 'card-title-row' },
        h('a', { class: w.name ? 'card-title' : 'card-title url', href: ctx.link(`/webhooks/${w.id}`), text: w.name || w.endpoint_url }),
        webhookState(w)),
      w.name ? h('p', { class: 'card-desc url', text: w.endpoint_url }) : null,
      w.description ? h('p', { class: 'card-desc', text: w.description }) : null,
      h('ul', { class: 'chips', 'aria-label': 'Events' }, w.listened_events.map((e) => h('li', { class: 'chip', text: e }))),
      !w.active && (w.disabled_reason || w.disabled_at) ? h('p', { class: 'disabled-why' },
        `Disabled by Hookline${w.disabled_at ? ' on ' : ''}`, w.disabled_at ? time(w.disabled_at) : '', w.disabled_reason ? `: ${w.disabled_reason}` : '') : null,
      !w.active && ctx.can('manage') ? h('button', {
        type: 'button', class: 'btn btn-small', text: 'Enable', 'aria-label': `Enable ${w.endpoint_url}`,
        onclick: async (e) => {
          e.target.disabled = true;
          try { await enableWebhook(w.id); onChange(); } catch (err) { announce(err.message); e.target.disabled = false; }
        },
      }) : null),
    stats);
  Promise.all([
    api('GET', `/webhooks/${enc(w.id)}/health`).catch(() => null),
    api('GET', `/webhooks/${enc(w.id)}/deliveries`, { query: { limit: 100 } }).catch(() => null),
  ]).then(([health, deliveries]) => {
    const last = deliveries && deliveries[0];
    fill(stats,
      h('div', { class: 'stat' }, healthText(health)),
      deliveries ? deliveryChart(deliveries) : null,
      h('div', { class: 'stat last' }, last
        ? h('span', {}, 'Last delivery ', time(last.last_attempt_at || last.created_at, { relative: true }), ' ', deliveryBadge(last))
        : h('span', { class: 'muted', text: 'No deliveries yet' })));
  });
  return li;
}

export async function webhookListPage(page, ctx) {
  const actions = ctx.can('manage') ? [h('a', { class: 'btn btn-primary', href: ctx.link('/webhooks/new'), text: 'Create webhook' })] : [];
  fill(page, pageHead('Webhooks', { actions, sub: 'Endpoints that receive events, their health over the last 24 hours and their latest delivery.' }), spinner());
  const load = async () => {
    const hooks = await listAll('/webhooks');
    const body = hooks.length
      ? h('ul', { class: 'cards', 'aria-label': 'Webhooks' }, hooks.map((w) => webhookCard(w, ctx, load)))
      : emptyState('No webhooks yet', ctx.can('manage') ? 'Create one to start receiving events at your endpoint.' : 'Nothing has been set up here yet.',
        ctx.can('manage') ? h('a', { class: 'btn btn-primary', href: ctx.link('/webhooks/new'), text: 'Create your first webhook' }) : null);
    page.lastChild.replaceWith(body);
  };
  await load();
}
