// Portal link scenarios (steps d-e): refusal pages for a reused, revoked, revoked-all and
// expired link; a view-only session shows no write controls and its token
// is refused (403) by the API for every write.

import { execFileSync } from 'node:child_process';
import { BASE, DATA_DIR, assert, ok, call, expectStatus, newPage, checkPage, settled } from './lib.mjs';
import { mintLink, openPortal } from './portal.mjs';

async function expectRefusal(context, url, pattern, name) {
  const page = await newPage(context, name);
  page.expectErrors(/status of 401/);
  await page.goto(url, { waitUntil: 'networkidle' });
  const alert = page.locator('[role=alert]');
  await alert.first().waitFor({ timeout: 10000 });
  const text = await alert.first().innerText();
  assert(pattern.test(text), `${name}: expected ${pattern}, the page says: ${text}`);
  assert(!page.url().includes('portal='), `${name}: the token stayed in the URL`);
  assert((await page.evaluate(() => sessionStorage.getItem('hookline.portal'))) === null, `${name}: a session was stored`);
  await checkPage(page, name, { settle: false });
  await page.close();
  ok(`${name}: full-page message "${text.split('\n')[0]}"`);
}

export async function linksScenario(context, { tenant, usedLink }) {
  // A link works once.
  await expectRefusal(context, usedLink.url, /already used/i, 'link-reused');

  // A revoked link.
  const revoked = await mintLink(tenant);
  await expectStatus(204, 'DELETE', `/portal/links/${revoked.id}`, { query: { tenant } });
  await expectRefusal(context, revoked.url, /not valid/i, 'link-revoked');

  // Revoke all of a tenant's links.
  const a = await mintLink(tenant);
  const b = await mintLink(tenant);
  const res = await expectStatus(200, 'DELETE', '/portal/links', { query: { tenant } });
  assert(res.revoked >= 2, `revoke-all revoked ${res.revoked}, expected at least 2`);
  await expectRefusal(context, a.url, /not valid/i, 'link-revoked-all');
  await expectRefusal(context, b.url, /not valid/i, 'link-revoked-all-2');

  // Expired: links live 5 minutes at least, so the test ages one in the database (the
  // API's own tests check expiry on a test clock); the page must say it has expired.
  const old = await mintLink(tenant, ['view'], '5m');
  const aged = execFileSync('python3', ['-c', `
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], timeout=10)
n = db.execute("UPDATE api_keys SET expires_at = ? WHERE id = ? AND kind = 'portal_link'", (int(time.time() * 1e6) - 1, sys.argv[2])).rowcount
db.commit()
print(n)`, `${DATA_DIR}/hookline.db`, old.id]).toString().trim();
  assert(aged === '1', `ageing the link in the database changed ${aged} rows`);
  await expectRefusal(context, old.url, /expired/i, 'link-expired');
}

export async function viewOnlyScenario(context, { tenant, webhookId, deliveryId }) {
  const link = await mintLink(tenant, ['view']);
  const page = await openPortal(context, link, 'view-only');
  await page.waitForFunction(() => location.hash.startsWith('#/webhooks'), null, { timeout: 10000 });
  await settled(page);
  const controls = /^(Create webhook|Create your first webhook|Edit|Disable|Enable|Delete|Rotate secret|Redeliver|Send test)$/;
  const visibleWrites = async () => {
    const names = await page.locator('#main a, #main button').evaluateAll((els) => els.map((e) => e.textContent.trim()));
    return names.filter((n) => controls.test(n));
  };
  assert((await page.locator('.webhook-card').count()) >= 1, 'the view-only session sees no webhook');
  assert((await visibleWrites()).length === 0, `view-only list shows: ${await visibleWrites()}`);
  await checkPage(page, 'view-only-webhooks');
  await page.locator('.webhook-card a.card-title').first().click();
  await settled(page);
  await page.locator('.deliveries table').waitFor({ timeout: 10000 });
  assert((await visibleWrites()).length === 0, `view-only detail shows: ${await visibleWrites()}`);
  assert(!(await page.getByRole('heading', { name: 'Send a test' }).count()), 'view-only detail shows the test section');
  await checkPage(page, 'view-only-webhook-detail');
  await page.locator(`a[href*="/deliveries/${deliveryId}"]`).first().click();
  await settled(page);
  assert((await visibleWrites()).length === 0, `view-only delivery shows: ${await visibleWrites()}`);
  await page.goto(`${BASE}/console/#/webhooks/${webhookId}/edit`);
  await settled(page);
  assert((await page.locator('form').count()) === 0, 'view-only session gets the edit form');
  ok('view-only session: no create/edit/enable/disable/delete/rotate/redeliver/test controls');

  const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem('hookline.portal')).token);
  await expectStatus(200, 'GET', '/webhooks', { token });
  const writes = [
    ['POST', '/webhooks', { endpoint_url: 'http://127.0.0.1:9/x', listened_events: ['*'] }],
    ['PATCH', `/webhooks/${webhookId}`, { active: false }],
    ['DELETE', `/webhooks/${webhookId}`],
    ['POST', `/webhooks/${webhookId}/deliveries/${deliveryId}/redeliver`],
    ['POST', `/webhooks/${webhookId}/secret/rotate`],
    ['POST', `/webhooks/${webhookId}/test`],
  ];
  for (const [method, p, body] of writes) {
    const r = await call(method, p, { token, body });
    assert(r.status === 403, `view-only ${method} ${p}: expected 403, got ${r.status} ${JSON.stringify(r.body)}`);
  }
  const still = await expectStatus(200, 'GET', `/webhooks/${webhookId}`, { query: { tenant } });
  assert(still.active === true, 'a refused write changed the webhook');
  ok('view-only token: create, update, delete, redeliver, rotate, test all answered 403');
  await page.close();
}
