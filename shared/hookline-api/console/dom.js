// DOM helpers shared by every page: element building (never innerHTML with API data),
// dates, the live status region, Copy buttons, dialogs (confirm / shown-once secret),
// and small presentational pieces (badges, key-value lists, empty states).

/** Builds an element. attrs: class, text, on<Event> handlers, dataset, boolean and string attributes. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'selected' || k === 'disabled') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let idSeq = 0;
/** A unique id for label/aria wiring. */
export function uid(prefix = 'f') {
  idSeq += 1;
  return `${prefix}-${idSeq}`;
}

/** A <time> showing local time, the ISO time in its title. */
export function time(iso, { relative = false } = {}) {
  if (!iso) return h('span', { class: 'muted', text: '—' });
  const d = new Date(iso);
  const text = relative ? ago(d) : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  return h('time', { datetime: iso, title: iso, text });
}

export function ago(d) {
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (s < 0) return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return d.toLocaleDateString(undefined, { dateStyle: 'medium' });
}

/** Announces a status message in the polite live region. */
export function announce(message) {
  const region = document.getElementById('status');
  if (!region) return;
  region.textContent = '';
  window.setTimeout(() => { region.textContent = message; }, 30);
}

/** Copies text; falls back to selecting `selectTarget` when the clipboard is unavailable. */
export async function copyText(text, selectTarget) {
  try {
    await navigator.clipboard.writeText(text);
    announce('Copied to the clipboard');
    return true;
  } catch {
    if (selectTarget) {
      const range = document.createRange();
      range.selectNodeContents(selectTarget);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      announce('Selected: press Ctrl+C (or ⌘C) to copy');
    }
    return false;
  }
}

/** A Copy button for `getText()`, labelled with what it copies. */
export function copyButton(getText, label, selectTarget) {
  const btn = h('button', { type: 'button', class: 'btn btn-small', 'aria-label': `Copy ${label}`, text: 'Copy' });
  btn.addEventListener('click', async () => {
    const ok = await copyText(typeof getText === 'function' ? getText() : getText, selectTarget);
    if (ok) {
      btn.textContent = 'Copied';
      window.setTimeout(() => { btn.textContent = 'Copy'; }, 1500);
    }
  });
  return btn;
}

/** A code block with a Copy button. */
export function codeBlock(code, label) {
  const pre = h('pre', { class: 'code', tabindex: '0', 'aria-label': label }, h('code', { text: code }));
  return h('div', { class: 'code-wrap' }, h('div', { class: 'code-bar' }, h('span', { class: 'code-label', text: label }), copyButton(code, label, pre)), pre);
}

/**
 * Opens a modal <dialog>: focus moves in, Escape closes, focus returns to the opener.
 * build(close) returns the body; resolves with the value passed to close().
 */
export function openDialog(title, build, { wide = false } = {}) {
  const opener = document.activeElement;
  const titleId = uid('dlg');
  const dialog = h('dialog', { class: wide ? 'dialog dialog-wide' : 'dialog', 'aria-labelledby': titleId });
  return new Promise((resolve) => {
    let result;
    const close = (value) => { result = value; dialog.close(); };
    dialog.addEventListener('close', () => {
      dialog.remove();
      if (opener && opener.isConnected && typeof opener.focus === 'function') opener.focus();
      resolve(result);
    });
    dialog.append(h('h2', { id: titleId, class: 'dialog-title', text: title }), build(close));
    document.body.append(dialog);
    dialog.showModal();
    const first = dialog.querySelector('[autofocus], input, select, textarea, button');
    if (first) first.focus();
  });
}

/** Confirmation dialog; resolves true when confirmed. */
export function confirmDialog(title, message, confirmLabel, { danger = true } = {}) {
  return openDialog(title, (close) => h('div', {},
    h('p', {}, message),
    h('div', { class: 'dialog-actions' },
      h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: () => close(false), autofocus: true }),
      h('button', { type: 'button', class: danger ? 'btn btn-danger' : 'btn btn-primary', text: confirmLabel, onclick: () => close(true) })))).then(Boolean);
}

/** Shows a secret once, with Copy and the warning that it will not be shown again. */
export function showSecretOnce(title, secret, what) {
  return openDialog(title, (close) => {
    const value = h('code', { class: 'secret-value', 'data-secret': '', text: secret });
    const box = h('div', { class: 'secret-box' }, value);
    return h('div', {},
      h('p', { class: 'warning', role: 'note' }, `Copy this ${what} now and store it safely: it will not be shown again.`),
      box,
      h('div', { class: 'dialog-actions' },
        copyButton(secret, what, value),
        h('button', { type: 'button', class: 'btn btn-primary', text: 'Done', onclick: () => close() })));
  }, { wide: true });
}

/** Status badge: succeeded / failed / pending / active / disabled. */
export function badge(kind, text = kind) {
  return h('span', { class: `badge badge-${kind}`, text });
}

/** A <dl> from [label, value] pairs. */
export function fields(pairs) {
  const dl = h('dl', { class: 'fields' });
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    dl.append(h('div', { class: 'field' }, h('dt', { text: k }), h('dd', {}, v)));
  }
  return dl;
}

export function emptyState(title, text, action) {
  return h('div', { class: 'empty' }, h('p', { class: 'empty-title', text: title }), text ? h('p', { class: 'muted', text }) : null, action || null);
}

/** A form error area (role=alert) that shows an API error's message. */
export function errorBox() {
  const el = h('p', { class: 'form-error', role: 'alert', hidden: true });
  el.show = (msg) => { el.textContent = msg; el.hidden = !msg; };
  return el;
}

export function pretty(value) {
  if (typeof value === 'string') {
    try { return JSON.stringify(JSON.parse(value), null, 2); } catch { return value; }
  }
  return JSON.stringify(value, null, 2);
}

/** Page heading row: h1 plus optional actions and a back link. */
export function pageHead(title, { back, actions = [], sub } = {}) {
  return h('div', { class: 'page-head' },
    back ? h('a', { class: 'back', href: back.href, text: `← ${back.text}` }) : null,
    h('div', { class: 'page-title-row' },
      h('div', { class: 'page-title-block' }, h('h1', { text: title, tabindex: '-1', class: 'page-title' }), sub ? h('p', { class: 'muted page-sub' }, sub) : null),
      actions.length ? h('div', { class: 'actions' }, actions) : null));
}

export function spinner(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status', text });
}
