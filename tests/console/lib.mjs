// Helpers for the console end-to-end test: assertions, the API as a product backend
// calls it, a real HTTP receiver, the browser, and the per-page checks (axe-core in
// light and dark, screenshots at 1280x800 and 375x812, no horizontal scroll at 375 px,
// console errors and CSP violations).

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(path.join(process.env.CONSOLE_NODE_DIR || '.tools/console-node', 'noop.js'));
export const { chromium } = require('playwright-core');
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export const BASE = process.env.HOOKLINE_BASE;
export const ADMIN = process.env.HOOKLINE_ADMIN_KEY;
export const DATA_DIR = process.env.HOOKLINE_E2E_DATA_DIR;
export const SHOTS = process.env.SCREENSHOTS || 'target/console-screenshots';

export const results = { passed: [], notes: [], pages: [] };

export class Failure extends Error {}

export function assert(cond, message) {
  if (!cond) throw new Failure(message);
}

export function ok(message) {
  results.passed.push(message);
  console.log(`  ok  ${message}`);
}

export function note(message) {
  results.notes.push(message);
  console.log(`  note ${message}`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls fn until it returns a truthy value or the time runs out. */
export async function waitFor(fn, message, timeoutMs = 15000, stepMs = 250) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Failure(`timed out: ${message}`);
    await sleep(stepMs);
  }
}

/** Calls the API: returns {status, body}. */
export async function call(method, p, { token = ADMIN, body, query } = {}) {
  const qs = query ? `?${new URLSearchParams(query)}` : '';
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(`${BASE}${p}${qs}`, { method, headers, body: body === undefined ? undefined : JSON.stringify({ data: body }) });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = text; }
  return { status: res.status, body: json };
}

export async function expectStatus(want, method, p, opts) {
  const r = await call(method, p, opts);
  assert(r.status === want, `${method} ${p}: expected ${want}, got ${r.status} ${JSON.stringify(r.body)}`);
  return r.body && r.body.data !== undefined ? r.body.data : r.body;
}

/** A real receiver on 127.0.0.1 that answers 200 and records every request. */
export async function startReceiver() {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json = null;
      try { json = JSON.parse(body); } catch { json = null; }
      requests.push({ method: req.method, url: req.url, headers: req.headers, body, json, at: Date.now() });
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"received":true}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, requests, close: () => server.close() };
}

export async function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * A new tab (own sessionStorage) that records console errors, page errors and CSP
 * violations. page.expectErrors(re) allows matching console errors for a while
 * (e.g. the 401 of a refused link, which Chromium logs as "Failed to load resource").
 */
export async function newPage(context, label) {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1280, height: 800 });
  page.errors = [];
  page.allowed = [];
  page.expectErrors = (re) => { page.allowed.push(re); };
  page.clearExpected = () => { page.allowed = []; };
  page.on('console', (msg) => {
    if (msg.type() !== 'error' && !/Content Security Policy/i.test(msg.text())) return;
    const text = msg.text();
    if (page.allowed.some((re) => re.test(text))) return;
    page.errors.push(`[${label}] console ${msg.type()}: ${text}`);
  });
  page.on('pageerror', (err) => page.errors.push(`[${label}] page error: ${err.message}`));
  return page;
}

export function assertNoErrors(page) {
  assert(page.errors.length === 0, `the page logged errors:\n  ${page.errors.join('\n  ')}`);
}

/** Waits until the page shows no loading placeholders. */
export async function settled(page) {
  await page.waitForFunction(() => !document.querySelector('.loading') && document.querySelector('#main h1'), null, { timeout: 15000 });
  await sleep(150);
}

async function axe(page, label) {
  await page.evaluate(axeSource);
  const res = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`) }));
  });
  const bad = res.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert(bad.length === 0, `axe (${label}): ${bad.length} serious/critical violation(s):\n${bad.map((v) => `  - ${v.id} (${v.impact}): ${v.help}\n      ${v.nodes.join('\n      ')}`).join('\n')}`);
  return res.length;
}

/**
 * Checks the page as it is now: axe in light and dark (no serious/critical), screenshots
 * at 1280x800 and 375x812 (light) and 1280x800 (dark), no horizontal scroll at 375 px,
 * no console errors.
 */
export async function checkPage(page, name, { settle = true } = {}) {
  if (settle) await settled(page);
  fs.mkdirSync(SHOTS, { recursive: true });
  let minor = 0;
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    minor += await axe(page, `${name}, ${scheme}`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
  await page.screenshot({ path: path.join(SHOTS, `${name}-1280.png`), fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: path.join(SHOTS, `${name}-1280-dark.png`), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
  await page.setViewportSize({ width: 375, height: 812 });
  await sleep(100);
  const widths = await page.evaluate(() => ({ scroll: document.scrollingElement.scrollWidth, inner: window.innerWidth }));
  await page.screenshot({ path: path.join(SHOTS, `${name}-375.png`), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });
  assert(widths.scroll <= widths.inner, `${name}: horizontal scroll at 375 px (scrollWidth ${widths.scroll} > ${widths.inner})`);
  assertNoErrors(page);
  results.pages.push(name);
  ok(`${name}: axe clean (light, dark; ${minor} minor/moderate), screenshots, no horizontal scroll at 375 px`);
}

/** The text of the page's main region. */
export const mainText = (page) => page.locator('#main').innerText();
