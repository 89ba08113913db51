// Theming: reads the product name, logo and accent the server put on <html>, derives
// accent colours that keep WCAG AA contrast in both themes (text on the accent is black
// or white by luminance; links are darkened or lightened until they reach 4.5:1), and
// the light/dark toggle (system by default; the choice, not a secret, in localStorage).

const root = document.documentElement;
const THEME_KEY = 'hookline.theme';
const DEFAULT_ACCENT = '#4f46e5';

function attr(name) {
  const v = (root.getAttribute(name) || '').trim();
  return v.startsWith('__HOOKLINE_') ? '' : v;
}

export const productName = attr('data-product-name') || 'Hookline';
export const logoUrl = attr('data-logo-url');

/** Parses #rgb / #rrggbb / rgb(...) through the browser; null when not a colour. */
function parseColor(text) {
  if (!text || !CSS.supports('color', text)) return null;
  const probe = document.createElement('span');
  probe.style.setProperty('color', text);
  document.body.append(probe);
  const m = getComputedStyle(probe).color.match(/[\d.]+/g);
  probe.remove();
  return m ? m.slice(0, 3).map(Number) : null;
}

function luminance([r, g, b]) {
  const f = (c) => { const s = c / 255; return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
}

function contrast(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

const hex = (rgb) => `#${rgb.map((c) => Math.round(c).toString(16).padStart(2, '0')).join('')}`;

/** Mixes `rgb` towards `target` until it reaches `ratio` against `bg`. */
function readableOn(rgb, bg, target, ratio = 4.6) {
  let c = rgb;
  for (let t = 0; t <= 1.0001 && contrast(c, bg) < ratio; t += 0.05) {
    c = rgb.map((v, i) => v + (target[i] - v) * t);
  }
  return c;
}

// The most demanding backgrounds links sit on (surface-2 in each theme).
const LIGHT_BG = [241, 243, 246];
const DARK_BG = [30, 34, 42];

export function applyTheme() {
  const accent = parseColor(attr('data-accent')) || parseColor(DEFAULT_ACCENT);
  const onAccent = contrast(accent, [0, 0, 0]) >= contrast(accent, [255, 255, 255]) ? '#000000' : '#ffffff';
  root.style.setProperty('--accent', hex(accent));
  root.style.setProperty('--on-accent', onAccent);
  root.style.setProperty('--accent-text-l', hex(readableOn(accent, LIGHT_BG, [0, 0, 0])));
  root.style.setProperty('--accent-text-d', hex(readableOn(accent, DARK_BG, [255, 255, 255])));
  const saved = localStorage.getItem(THEME_KEY);
  if (saved === 'light' || saved === 'dark') root.dataset.theme = saved;
  document.title = productName;
}

function effectiveTheme() {
  if (root.dataset.theme) return root.dataset.theme;
  return window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

/** The light/dark toggle button for the header. */
export function themeToggle() {
  const btn = document.createElement('button');
  btn.type = 'button';
  btn.className = 'btn btn-ghost btn-small theme-toggle';
  const label = () => {
    const dark = effectiveTheme() === 'dark';
    btn.textContent = dark ? 'Light theme' : 'Dark theme';
    btn.setAttribute('aria-label', dark ? 'Switch to the light theme' : 'Switch to the dark theme');
  };
  btn.addEventListener('click', () => {
    const next = effectiveTheme() === 'dark' ? 'light' : 'dark';
    root.dataset.theme = next;
    localStorage.setItem(THEME_KEY, next);
    label();
  });
  label();
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { if (btn.isConnected) label(); });
  return btn;
}
