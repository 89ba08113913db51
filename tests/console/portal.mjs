// Portal scenario (steps a-c): a product backend mints a portal link, the browser opens
// it; the customer creates a webhook with the picker (secret shown once), an event is
// published and delivered to a real receiver, the delivery and its attempt are read in
// the console, redelivered, a test is sent, and the webhook is disabled and re-enabled.

import crypto from 'node:crypto';
import { BASE, assert, ok, call, expectStatus, waitFor, newPage, checkPage, settled, mainText, sleep } from './lib.mjs';

const ALL_CAPS = ['view', 'manage', 'secrets', 'deliveries'];

export async function mintLink(tenant, capabilities = ALL_CAPS, expiresIn = '1h') {
  const link = await expectStatus(201, 'POST', '/portal/links', { query: { tenant }, body: { capabilities, expires_in: expiresIn } });
  assert(link.token && link.url && link.id, `portal link answer lacks id/token/url: ${JSON.stringify(link)}`);
  const url = new URL(link.url, BASE);
  assert(url.hash.includes('portal='), `portal link url has no #portal= fragment: ${link.url}`);
  return { ...link, url: new URL(`${url.pathname}${url.search}${url.hash}`, BASE).href };
}

/** Opens a link in a fresh tab, measuring the first load; returns the page. */
export async function openPortal(context, link, label, measure) {
  const page = await newPage(context, label);
  const sizes = [];
  if (measure) {
    page.on('response', (r) => sizes.push(r.body().then((b) => ({ url: r.url(), bytes: b.length })).catch(() => ({ url: r.url(), bytes: 0 }))));
  }
  await page.goto(link.url, { waitUntil: 'networkidle' });
  if (measure) measure.push(...(await Promise.all(sizes)));
  return page;
}

function verifyStandardSignature(req, secret) {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signed = `${req.headers['webhook-id']}.${req.headers['webhook-timestamp']}.${req.body}`;
  const expected = crypto.createHmac('sha256', key).update(signed).digest('base64');
  return (req.headers['webhook-signature'] || '').split(' ').some((s) => s === `v1,${expected}`);
}

export async function portalScenario(context, { tenant, tenantKey, receiver, firstLoad }) {
  // a. a product backend mints a link with every capability; the browser opens it.
  const link = await mintLink(tenant);
  const page = await openPortal(context, link, 'portal', firstLoad);
  await page.waitForFunction(() => location.hash.startsWith('#/webhooks'), null, { timeout: 10000 });
  assert(!page.url().includes('portal='), `the link's token is still in the URL: ${page.url()}`);
  const stored = await page.evaluate(() => JSON.parse(sessionStorage.getItem('hookline.portal') || 'null'));
  assert(stored && stored.tenant === tenant && /^hks_/.test(stored.token || ''), `no portal session in sessionStorage: ${JSON.stringify(stored)}`);
  const local = await page.evaluate(() => JSON.stringify(localStorage));
  assert(!local.includes(stored.token) && !(await context.cookies()).length, 'the session leaked into localStorage or cookies');
  ok('portal link opened: fragment removed from the URL, session in sessionStorage only');
  await settled(page);
  if (process.env.PRODUCT_NAME) {
    const theme = await page.evaluate(() => ({ title: document.title, brand: document.getElementById('brand-name').textContent, onAccent: getComputedStyle(document.querySelector('.btn-primary')).color }));
    assert(theme.title === process.env.PRODUCT_NAME && theme.brand === process.env.PRODUCT_NAME, `product name not applied: ${JSON.stringify(theme)}`);
    assert(theme.onAccent === 'rgb(0, 0, 0)', `text on the pale accent ${process.env.ACCENT} is not black: ${theme.onAccent}`);
    ok(`theming: product name "${theme.title}" (escaped by the server, shown as text), black text on accent ${process.env.ACCENT}`);
  }
  assert(/No webhooks yet/.test(await mainText(page)), 'empty webhook list shows no empty state');
  await checkPage(page, 'portal-webhooks-empty');

  // b. create a webhook with the picker.
  await page.getByRole('link', { name: 'Create webhook' }).first().click();
  await settled(page);
  const count = async () => Number(await page.locator('#events-preview').getAttribute('data-count'));
  assert((await count()) === 0, 'the preview does not start at 0');
  await page.getByLabel('Endpoint URL').fill(receiver.url);
  await page.getByLabel('Description (optional)').fill('E2E receiver');
  await page.getByLabel('Wildcard patterns (comma-separated)').fill('project.*');
  const afterPattern = await count();
  const total = await page.locator('.event-groups input[type=checkbox]').count();
  assert(afterPattern > 0 && afterPattern < total, `"project.*" matches ${afterPattern} of ${total} names`);
  const previewText = await page.locator('#events-preview').innerText();
  assert(previewText.includes(`Matches ${afterPattern} of ${total}`), `preview text: ${previewText}`);
  const other = page.locator('.event-groups input[type=checkbox]:not([value^="project."])').first();
  const otherName = await other.getAttribute('value');
  await other.check();
  assert((await count()) === afterPattern + 1, 'ticking one more name did not add one to the preview');
  await page.getByLabel('Wildcard patterns (comma-separated)').fill('project.*, nope');
  assert(await page.getByText('Not a valid pattern: nope').isVisible(), 'an invalid pattern is not flagged');
  await page.getByLabel('Wildcard patterns (comma-separated)').fill('project.*');
  ok(`picker: "project.*" matches ${afterPattern} of ${total}; ticking ${otherName} makes ${afterPattern + 1}; bad pattern flagged`);
  await page.getByRole('button', { name: 'Add header' }).click();
  await page.getByLabel('Header name').fill('X-E2E');
  await page.getByLabel('Header value').fill('console-test');
  await page.getByLabel(/Standard Webhooks/).check();
  await checkPage(page, 'portal-webhook-create', { settle: false });
  await page.getByRole('button', { name: 'Create webhook' }).click();
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor({ timeout: 10000 });
  const secret = (await dialog.locator('[data-secret]').innerText()).trim();
  assert(/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret), `the dialog shows no secret: ${secret}`);
  assert(await dialog.getByRole('button', { name: /Copy/ }).isVisible(), 'the secret dialog has no Copy button');
  await checkPage(page, 'portal-secret-dialog', { settle: false });
  await dialog.getByRole('button', { name: 'Done' }).click();
  await page.waitForFunction(() => /^#\/webhooks\/wh_/.test(location.hash), null, { timeout: 10000 });
  await settled(page);
  const leaked = await page.evaluate((s) => document.documentElement.outerHTML.includes(s) || JSON.stringify(sessionStorage).includes(s) || JSON.stringify(localStorage).includes(s), secret);
  assert(!leaked, 'the secret is still in the page or storage after the dialog closed');
  const webhookId = (await page.evaluate(() => location.hash)).match(/wh_[0-9a-f]+/)[0];
  const hook = await expectStatus(200, 'GET', `/webhooks/${webhookId}`, { query: { tenant } });
  assert(hook.listened_events.includes('project.*') && hook.listened_events.includes(otherName), `listened_events: ${hook.listened_events}`);
  assert(hook.signatures.includes('standard_webhooks') && hook.signatures.includes('jwt'), `signatures: ${hook.signatures}`);
  assert(hook.headers['x-e2e'] === 'console-test', `headers: ${JSON.stringify(hook.headers)}`);
  ok(`webhook ${webhookId} created from the form; secret shown once then gone from the page`);

  // c. publish an event; the receiver gets it; the console shows the delivery.
  const event = await expectStatus(201, 'POST', '/events', { token: tenantKey, body: { subject_type: 'project', event_type: 'CREATED', subject_id: '34', metadata: { code: 'PROJECT-1', name: 'Project one' } } });
  const first = await waitFor(() => receiver.requests.find((r) => r.json && r.json.event && r.json.event.id === event.id), 'the receiver to get the event');
  assert(first.headers['x-e2e'] === 'console-test', 'the custom header did not arrive');
  assert(verifyStandardSignature(first, secret), 'the Standard Webhooks signature does not verify with the secret the dialog showed');
  assert(first.headers['x-webhook-signature'], 'no JWT signature header');
  const deliveryId = first.json.delivery.id;
  ok(`receiver got event ${event.id} (delivery ${deliveryId}), signature verified with the shown secret`);
  await checkPage(page, 'portal-webhook-detail-empty');
  const row = page.locator(`a[href*="/deliveries/${deliveryId}"]`);
  await waitFor(async () => {
    if (await row.count()) return true;
    await page.getByRole('button', { name: 'Refresh' }).click();
    await sleep(500);
    return false;
  }, 'the delivery to show in the list');
  await waitFor(async () => {
    if (/Succeeded/.test(await page.locator('.deliveries').innerText())) return true;
    await page.getByRole('button', { name: 'Refresh' }).click();
    await sleep(500);
    return false;
  }, 'the delivery to show as succeeded');
  await page.getByLabel('Status').selectOption('failed');
  await waitFor(async () => /No deliveries match/.test(await page.locator('.deliveries').innerText()), 'the failed filter to empty the list');
  await page.getByLabel('Status').selectOption('succeeded');
  await row.waitFor({ timeout: 10000 });
  await page.getByLabel('Event name', { exact: true }).selectOption(otherName);
  await waitFor(async () => /No deliveries match/.test(await page.locator('.deliveries').innerText()), 'the event-name filter to empty the list');
  await page.getByLabel('Event name', { exact: true }).selectOption('project.created');
  await row.waitFor({ timeout: 10000 });
  ok('the delivery shows in the console; status and event-name filters narrow the list');
  await checkPage(page, 'portal-webhook-detail');

  await row.click();
  await settled(page);
  assert((await mainText(page)).includes(deliveryId), 'the delivery page does not show its id');
  await checkPage(page, 'portal-delivery');
  await page.locator('a.attempt-link').first().click();
  await settled(page);
  const attemptText = await mainText(page);
  assert(attemptText.includes('HTTP 200'), 'the attempt page does not show the 200');
  assert(/webhook-id/i.test(attemptText) && attemptText.includes(deliveryId), 'the attempt page does not show the request headers');
  assert(attemptText.includes(event.id) && attemptText.includes('PROJECT-1'), 'the attempt page does not show the request body');
  assert(attemptText.includes('received'), 'the attempt page does not show the answer body');
  ok('attempt detail shows request headers, body and the 200 answer');
  await checkPage(page, 'portal-attempt');

  await page.locator('a.back').click();
  await settled(page);
  const before = receiver.requests.length;
  await page.getByRole('button', { name: 'Redeliver' }).click();
  const again = await waitFor(() => receiver.requests.slice(before).find((r) => r.json && r.json.delivery && r.json.delivery.id === deliveryId), 'the redelivery to reach the receiver');
  assert(again.headers['webhook-id'] === deliveryId && again.json.delivery.attempt_id !== first.json.delivery.attempt_id, 'the redelivery is not the same delivery with a new attempt');
  await waitFor(async () => {
    if ((await page.locator('a.attempt-link').count()) >= 2) return true;
    await page.reload();
    await settled(page);
    return false;
  }, 'the second attempt to show', 15000, 500);
  ok('redeliver: the receiver got the same delivery id again, the console lists 2 attempts');

  await page.locator('a.back').click();
  await settled(page);
  const beforeTest = receiver.requests.length;
  await page.getByLabel('Event', { exact: true }).selectOption('project.created');
  await page.getByRole('button', { name: 'Send test' }).click();
  await page.locator('.result-list').waitFor({ timeout: 15000 });
  const testText = await page.locator('.test-results').innerText();
  assert(testText.includes('project.created') && testText.includes('Delivered') && testText.includes('HTTP 200'), `test result: ${testText}`);
  assert(receiver.requests.length > beforeTest, 'the test did not reach the receiver');
  ok('send test: result shown (project.created, delivered, HTTP 200) and the receiver got it');
  await checkPage(page, 'portal-webhook-test-results', { settle: false });

  await page.getByRole('button', { name: 'Disable' }).click();
  await page.getByRole('button', { name: 'Enable' }).waitFor({ timeout: 10000 });
  assert((await expectStatus(200, 'GET', `/webhooks/${webhookId}`, { query: { tenant } })).active === false, 'Disable did not set active false');
  await page.getByRole('button', { name: 'Enable' }).click();
  await page.getByRole('button', { name: 'Disable' }).waitFor({ timeout: 10000 });
  assert((await expectStatus(200, 'GET', `/webhooks/${webhookId}`, { query: { tenant } })).active === true, 'Enable did not set active true');
  ok('disable then enable flipped active (checked through the API)');

  await page.getByRole('link', { name: 'Webhooks', exact: true }).first().click();
  await settled(page);
  await page.locator('.card-stats svg.chart').waitFor({ timeout: 10000 });
  const cardText = await page.locator('.webhook-card').first().innerText();
  assert(/success/.test(cardText) && /Last delivery/.test(cardText), `webhook card lacks health or last delivery: ${cardText}`);
  assert((await page.locator('.card-stats svg.chart rect').count()) >= 1, 'the chart has no bar');
  ok('webhook list shows 24 h health, a chart with bars and the last delivery');
  await checkPage(page, 'portal-webhooks');
  await page.getByRole('link', { name: 'Event catalogue' }).click();
  await settled(page);
  await page.locator('details.event-item').first().locator('summary').click();
  assert(/"subject_type": "[a-z_]+"/.test(await page.locator('details.event-item[open] pre').first().innerText()), 'no example payload');
  await checkPage(page, 'portal-event-catalogue');
  await page.getByRole('link', { name: 'How to verify' }).click();
  await settled(page);
  const verifyText = await mainText(page);
  assert(verifyText.includes(`${BASE}/jwks/webhooks`), 'the verify page does not show the absolute JWKS URL');
  const jwks = await (await fetch(`${BASE}/jwks/webhooks`)).json();
  assert(jwks.keys.some((k) => verifyText.includes(k.kid)), 'the verify page does not show the current kid');
  ok('how to verify: absolute JWKS URL and the current kid');
  await checkPage(page, 'portal-verify');
  await page.close();
  return { webhookId, deliveryId, link };
}

export { call };
