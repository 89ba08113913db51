// Create / edit webhook form: endpoint URL, description, the event picker (catalogue
// checkboxes plus wildcard patterns with a live "matches N event names" preview),
// custom headers, signature schemes, active toggle; the new secret shown once.

import { api, enc } from './api.js';
import { h, fill, uid, errorBox, pageHead, spinner, showSecretOnce, announce } from './dom.js';
import { validPattern, matchedNames, splitPatterns } from './patterns.js';

export async function loadCatalog() {
  const list = await api('GET', '/event-types');
  return list.map((t) => t.name).sort();
}

function field(label, control, hint) {
  const id = control.id || (control.id = uid('in'));
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  return h('div', { class: 'form-field' }, h('label', { for: id, text: label }), control, hint ? h('p', { class: 'hint', id: hintId, text: hint }) : null);
}

/** The event picker: returns {el, value()} where value() is the listened_events list. */
function eventPicker(names, initial) {
  const exact = new Set(initial.filter((e) => names.includes(e)));
  const patternsText = initial.filter((e) => !names.includes(e)).join(', ');
  const boxes = [];
  const groups = new Map();
  for (const n of names) {
    const subject = n.split('.')[0];
    if (!groups.has(subject)) groups.set(subject, []);
    groups.get(subject).push(n);
  }
  const patternInput = h('input', { type: 'text', id: uid('pat'), class: 'input mono', value: patternsText, placeholder: 'project.*, *.deleted', autocomplete: 'off', spellcheck: 'false' });
  const preview = h('p', { class: 'preview', id: 'events-preview', 'aria-live': 'polite' });
  const patternError = h('p', { class: 'field-error', hidden: true });
  const value = () => {
    const pats = splitPatterns(patternInput.value);
    return [...new Set([...boxes.filter((b) => b.checked).map((b) => b.value), ...pats])];
  };
  const update = () => {
    const pats = splitPatterns(patternInput.value);
    const bad = pats.filter((p) => !validPattern(p));
    patternError.hidden = !bad.length;
    patternError.textContent = bad.length ? `Not a valid pattern: ${bad.join(', ')}` : '';
    patternInput.setAttribute('aria-invalid', bad.length ? 'true' : 'false');
    const covered = new Set(matchedNames(pats.filter(validPattern), names));
    for (const b of boxes) b.closest('.check').classList.toggle('covered', covered.has(b.value) && !b.checked);
    const all = new Set([...covered, ...boxes.filter((b) => b.checked).map((b) => b.value)]);
    preview.textContent = `Matches ${all.size} of ${names.length} event names`;
    preview.dataset.count = String(all.size);
  };
  const groupEls = [...groups.entries()].map(([subject, list]) => h('fieldset', { class: 'event-group' },
    h('legend', { text: subject }),
    list.map((n) => {
      const box = h('input', { type: 'checkbox', id: uid('ev'), value: n, checked: exact.has(n), onchange: update });
      boxes.push(box);
      return h('div', { class: 'check' }, box, h('label', { for: box.id, class: 'mono', text: n.split('.')[1] }));
    })));
  patternInput.addEventListener('input', update);
  const el = h('fieldset', { class: 'picker' },
    h('legend', { text: 'Events' }),
    h('p', { class: 'hint', text: 'Tick event names, and/or give patterns: * matches every event, project.* every project event, *.deleted every deletion.' }),
    field('Wildcard patterns (comma-separated)', patternInput),
    patternError,
    preview,
    h('div', { class: 'event-groups' }, groupEls));
  update();
  return { el, value };
}

function headerRows(initial) {
  const rows = h('div', { class: 'header-rows' });
  const addRow = (name = '', value = '') => {
    const n = h('input', { type: 'text', class: 'input mono', value: name, 'aria-label': 'Header name', placeholder: 'X-Api-Key', autocomplete: 'off' });
    const v = h('input', { type: 'text', class: 'input mono', value, 'aria-label': 'Header value', autocomplete: 'off' });
    const row = h('div', { class: 'header-row' }, n, v);
    row.append(h('button', { type: 'button', class: 'btn btn-small', text: 'Remove', 'aria-label': 'Remove this header', onclick: () => { row.remove(); addBtn.focus(); } }));
    rows.append(row);
    return n;
  };
  const addBtn = h('button', { type: 'button', class: 'btn btn-small', text: 'Add header', onclick: () => addRow().focus() });
  for (const [k, v] of Object.entries(initial || {})) addRow(k, v);
  const el = h('fieldset', { class: 'form-section' }, h('legend', { text: 'Custom headers' }),
    h('p', { class: 'hint', text: 'Sent with every delivery, for example a key your endpoint checks.' }), rows, addBtn);
  const value = () => {
    const out = {};
    for (const row of rows.children) {
      const [n, v] = row.querySelectorAll('input');
      if (n.value.trim()) out[n.value.trim()] = v.value;
    }
    return out;
  };
  return { el, value };
}

export async function webhookFormPage(page, ctx, [id]) {
  const editing = Boolean(id);
  const title = editing ? 'Edit webhook' : 'Create webhook';
  const back = editing ? { href: ctx.link(`/webhooks/${id}`), text: 'Webhook' } : { href: ctx.link('/webhooks'), text: 'Webhooks' };
  fill(page, pageHead(title, { back }), spinner());
  if (!ctx.can('manage')) {
    fill(page, pageHead(title, { back }), h('p', { role: 'alert', text: 'This session cannot create or edit webhooks.' }));
    return;
  }
  const [names, hook] = await Promise.all([loadCatalog(), editing ? api('GET', `/webhooks/${enc(id)}`) : null]);
  const w = hook || { endpoint_url: '', description: '', listened_events: [], headers: {}, signatures: ['jwt'], active: true };
  const url = h('input', { type: 'url', class: 'input', value: w.endpoint_url, required: true, placeholder: 'https://example.com/webhooks', autocomplete: 'off', name: 'endpoint_url' });
  const desc = h('input', { type: 'text', class: 'input', value: w.description || '', maxlength: '1024', name: 'description' });
  const name = h('input', { type: 'text', class: 'input', value: w.name || '', maxlength: '100', name: 'name', autocomplete: 'off' });
  const choice = (field, options, value) => h('select', { class: 'input', name: field },
    options.map(([v, t]) => h('option', { value: v, text: t, selected: v === value })));
  const method = choice('method', [['POST', 'POST'], ['PUT', 'PUT'], ['PATCH', 'PATCH']], w.method || 'POST');
  const format = choice('payload_format', [['envelope', 'Envelope'], ['standard_webhooks', 'Standard Webhooks']], w.payload_format || 'envelope');
  const retry = h('input', { type: 'text', class: 'input mono', value: w.retry_schedule === '' ? 'none' : (w.retry_schedule ?? ''), name: 'retry_schedule', placeholder: 'the deployment\'s', autocomplete: 'off' });
  const maxAge = h('input', { type: 'text', class: 'input mono', value: w.max_age || '', name: 'max_age', placeholder: 'none', autocomplete: 'off' });
  const rateLimit = h('input', { type: 'text', class: 'input mono', value: w.rate_limit || '', name: 'rate_limit', placeholder: 'none', autocomplete: 'off' });
  const inFlight = h('input', { type: 'number', class: 'input', value: w.max_in_flight ?? '', name: 'max_in_flight', min: '1', max: '100', placeholder: 'none' });
  const filter = h('textarea', { class: 'input mono', name: 'filter', rows: '3', placeholder: '{"metadata": {"status": "active"}}' });
  filter.value = w.filter ? JSON.stringify(w.filter, null, 2) : '';
  const picker = eventPicker(names, w.listened_events);
  const headers = headerRows(w.headers);
  const jwt = h('input', { type: 'checkbox', id: uid('sig'), value: 'jwt', checked: w.signatures.includes('jwt') });
  const std = h('input', { type: 'checkbox', id: uid('sig'), value: 'standard_webhooks', checked: w.signatures.includes('standard_webhooks') });
  const active = h('input', { type: 'checkbox', id: uid('act'), checked: w.active });
  const error = errorBox();
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', text: editing ? 'Save changes' : 'Create webhook' });
  const form = h('form', { class: 'form', novalidate: true },
    error,
    field('Endpoint URL', url, 'Where Hookline sends each event (https).'),
    field('Name (optional)', name, 'Shown in lists.'),
    field('Description (optional)', desc),
    picker.el,
    headers.el,
    h('fieldset', { class: 'form-section' }, h('legend', { text: 'Signatures' }),
      h('div', { class: 'check' }, jwt, h('label', { for: jwt.id }, 'JWT ', h('span', { class: 'muted', text: '(RS256 in X-Webhook-Signature, verified with the JWKS)' }))),
      h('div', { class: 'check' }, std, h('label', { for: std.id }, 'Standard Webhooks ', h('span', { class: 'muted', text: '(HMAC-SHA256 with a secret shown once)' })))),
    h('fieldset', { class: 'form-section' }, h('legend', { text: 'Delivery' }),
      field('HTTP method', method),
      field('Body', format, 'Envelope: {event, webhook, delivery}. Standard Webhooks: {type, timestamp, data}. Signatures cover the body as sent.'),
      field('Retry schedule (optional)', retry, 'Delays before each retry, like 1m,10m,1h: up to 20 steps of 1s to 24h. none: no retries. Empty: the deployment\'s.'),
      field('Maximum age (optional)', maxAge, 'No retry starts later than this after the delivery was created, like 6h.'),
      field('Filter (optional)', filter, 'Only events whose fields match this JSON.'),
      field('Rate limit (optional)', rateLimit, 'At most this many requests, like 5/s or 300/min; the others wait, never dropped.'),
      field('Most in flight (optional)', inFlight, 'At most this many attempts at once, 1 to 100.')),
    h('div', { class: 'check' }, active, h('label', { for: active.id, text: 'Active: deliver events to this endpoint' })),
    h('div', { class: 'form-actions' }, submit, h('a', { class: 'btn', href: back.href, text: 'Cancel' })));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.show('');
    const signatures = [jwt, std].filter((b) => b.checked).map((b) => b.value);
    const listened = picker.value();
    if (!url.value.trim()) { error.show('Give the endpoint URL.'); url.focus(); return; }
    if (!listened.length) { error.show('Choose at least one event name or pattern.'); return; }
    if (!signatures.length) { error.show('Choose at least one signature scheme.'); jwt.focus(); return; }
    let filterValue = null;
    if (filter.value.trim()) {
      try { filterValue = JSON.parse(filter.value); } catch { error.show('The filter is not JSON.'); filter.focus(); return; }
    }
    const body = {
      endpoint_url: url.value.trim(),
      listened_events: listened,
      description: desc.value.trim() || null,
      active: active.checked,
      signatures,
      headers: headers.value(),
      name: name.value.trim() || null,
      method: method.value,
      payload_format: format.value,
      retry_schedule: retry.value.trim() === 'none' ? '' : (retry.value.trim() || null),
      max_age: maxAge.value.trim() || null,
      filter: filterValue,
      rate_limit: rateLimit.value.trim() || null,
      max_in_flight: inFlight.value.trim() ? Number(inFlight.value) : null,
    };
    submit.disabled = true;
    try {
      const saved = editing ? await api('PATCH', `/webhooks/${enc(id)}`, { body }) : await api('POST', '/webhooks', { body });
      announce(editing ? 'Webhook saved' : 'Webhook created');
      if (saved.secret) await showSecretOnce('Signing secret', saved.secret, 'signing secret');
      window.location.hash = ctx.link(`/webhooks/${saved.id}`);
    } catch (err) {
      error.show(err.message);
      error.scrollIntoView({ block: 'nearest' });
      submit.disabled = false;
    }
  });
  fill(page, pageHead(title, { back }), form);
}
