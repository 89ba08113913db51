// The console's end-to-end test in headless Chromium against a real Hookline (started
// by run.sh) and a real receiver: portal link landing, webhook creation with the picker,
// delivery, attempt, redelivery, tests, enable/disable, link refusals, a view-only
// session, the operator view; axe-core, screenshots, phone width and first-load size on
// the way. Prints a summary; exits non-zero on any failure.

import crypto from 'node:crypto';
import { BASE, ADMIN, SHOTS, results, assert, ok, expectStatus, startReceiver, launch } from './lib.mjs';
import { portalScenario } from './portal.mjs';
import { linksScenario, viewOnlyScenario } from './links.mjs';
import { operatorScenario } from './operator.mjs';

const FIRST_LOAD_LIMIT = 200 * 1024;

async function main() {
  assert(BASE && ADMIN, 'HOOKLINE_BASE and HOOKLINE_ADMIN_KEY must be set (run.sh sets them)');
  const receiver = await startReceiver();
  const browser = await launch();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  try {
    const tenant = `acme-${crypto.randomBytes(3).toString('hex')}`;
    const key = await expectStatus(201, 'POST', '/api-keys', { body: { tenant, scopes: ['webhooks:read', 'webhooks:write', 'events:read', 'events:write'], description: 'e2e product backend' } });
    ok(`tenant ${tenant}: key with events:write created (the product backend's)`);

    const firstLoad = [];
    const portal = await portalScenario(context, { tenant, tenantKey: key.key, receiver, firstLoad });
    const bytes = firstLoad.reduce((s, r) => s + r.bytes, 0);
    assert(firstLoad.length > 3, `first load measured only ${firstLoad.length} responses`);
    assert(bytes <= FIRST_LOAD_LIMIT, `first console load is ${bytes} bytes (> 200 KiB):\n${firstLoad.map((r) => `  ${r.bytes}\t${r.url}`).join('\n')}`);
    ok(`first console load: ${firstLoad.length} responses, ${(bytes / 1024).toFixed(1)} KiB (limit 200 KiB)`);

    await linksScenario(context, { tenant, usedLink: portal.link });
    await viewOnlyScenario(context, { tenant, webhookId: portal.webhookId, deliveryId: portal.deliveryId });
    await operatorScenario(context, { tenant, receiver });
  } finally {
    await context.close().catch(() => {});
    await browser.close().catch(() => {});
    receiver.close();
  }
}

main().then(() => {
  console.log(`\nconsole e2e: PASS — ${results.passed.length} checks, ${results.pages.length} pages checked with axe and screenshots in ${SHOTS}`);
  if (results.notes.length) console.log(`notes:\n  ${results.notes.join('\n  ')}`);
}, (err) => {
  console.error(`\nconsole e2e: FAIL after ${results.passed.length} passing checks\n${err.stack || err}`);
  if (results.notes.length) console.error(`notes:\n  ${results.notes.join('\n  ')}`);
  process.exit(1);
});
