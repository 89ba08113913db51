// Operator scenario (step f): sign in with the admin key, the health overview, tenants,
// create an API key (shown once) and revoke it (then refused with 401), a tenant's
// webhooks through ?tenant=, and minting a portal link from the console.

import { BASE, ADMIN, assert, ok, note, call, waitFor, newPage, checkPage, settled, mainText } from './lib.mjs';

export async function operatorScenario(context, { tenant, receiver }) {
  const page = await newPage(context, 'operator');
  await page.goto(`${BASE}/console/#/operator`, { waitUntil: 'networkidle' });
  await settled(page);
  await checkPage(page, 'operator-sign-in');
  page.expectErrors(/status of 401/);
  await page.getByLabel('Admin API key').fill('hkl_not_a_real_key_0000000000');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('This key was not recognised.').waitFor({ timeout: 10000 });
  page.clearExpected();
  await page.getByLabel('Admin API key').fill(ADMIN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Deployment health' }).waitFor({ timeout: 15000 });
  await settled(page);
  assert((await page.evaluate(() => sessionStorage.getItem('hookline.admin'))) === ADMIN, 'the admin key is not in sessionStorage');
  assert(!(await page.evaluate(() => JSON.stringify(localStorage))).includes(ADMIN), 'the admin key is in localStorage');
  const overview = await mainText(page);
  assert(/Active webhooks\s*\n?\s*[1-9]/.test(overview), `overview shows no active webhook: ${overview.slice(0, 400)}`);
  assert(overview.includes(tenant), 'overview does not list the tenant');
  ok('operator signed in (bad key refused first); overview counts the active webhook and lists the tenant');
  await checkPage(page, 'operator-overview');

  await page.getByRole('link', { name: 'Tenants', exact: true }).click();
  await settled(page);
  assert((await mainText(page)).includes(tenant), 'tenant list lacks the tenant');
  await checkPage(page, 'operator-tenants');

  await page.getByRole('link', { name: 'API keys', exact: true }).click();
  await settled(page);
  await page.getByRole('textbox', { name: 'Tenant', exact: true }).fill(tenant);
  const desc = `e2e temporary ${Date.now()}`;
  await page.getByLabel('Description').fill(desc);
  await page.getByRole('button', { name: 'Create key' }).click();
  const dialog = page.locator('dialog[open]');
  await dialog.waitFor({ timeout: 10000 });
  const key = (await dialog.locator('[data-secret]').innerText()).trim();
  assert(/^hkl_/.test(key), `no key in the dialog: ${key}`);
  await checkPage(page, 'operator-key-created', { settle: false });
  await dialog.getByRole('button', { name: 'Done' }).click();
  const row = page.locator('tr', { hasText: desc });
  await row.waitFor({ timeout: 10000 });
  assert(!(await page.evaluate((k) => document.documentElement.outerHTML.includes(k), key)), 'the new key is still in the page');
  const works = await call('GET', '/webhooks', { token: key });
  assert(works.status === 200, `the new key does not work: ${works.status}`);
  ok('API key created from the console, shown once, works');
  await checkPage(page, 'operator-api-keys');
  await row.getByRole('button', { name: /Revoke/ }).click();
  await page.locator('dialog[open]').getByRole('button', { name: 'Revoke key' }).click();
  await row.waitFor({ state: 'detached', timeout: 10000 });
  const t0 = Date.now();
  await waitFor(async () => (await call('GET', '/webhooks', { token: key })).status === 401, 'the revoked key to be refused (401)', 75000, 1000);
  const secs = Math.round((Date.now() - t0) / 1000);
  if (secs > 2) note(`the revoked key kept working for ${secs} s (the API's 60 s key cache)`);
  ok('API key revoked from the console: gone from the list, then refused with 401');

  await page.getByRole('link', { name: 'Tenants', exact: true }).click();
  await settled(page);
  await page.getByRole('link', { name: `Webhooks of tenant ${tenant}` }).click();
  await settled(page);
  await page.locator('.webhook-card').first().waitFor({ timeout: 10000 });
  assert((await mainText(page)).includes(receiver.url), 'the tenant\'s webhook list lacks the receiver webhook');
  assert((await page.locator('#context').innerText()).includes(tenant), 'no operator context banner');
  ok(`operator browses tenant ${tenant}'s webhooks through ?tenant=`);
  await checkPage(page, 'operator-tenant-webhooks');
  await page.locator('.webhook-card a.card-title').first().click();
  await settled(page);
  assert(await page.getByRole('button', { name: 'Disable' }).isVisible(), 'operator lacks webhook controls');
  await checkPage(page, 'operator-tenant-webhook-detail');

  await page.getByRole('link', { name: 'Portal links', exact: true }).click();
  await settled(page);
  await page.getByRole('textbox', { name: 'Tenant', exact: true }).fill(tenant);
  await page.getByRole('button', { name: 'Mint link' }).click();
  await page.locator('li.minted').waitFor({ timeout: 10000 });
  const url = await page.locator('li.minted code').innerText();
  assert(/#portal=/.test(url), `minted url: ${url}`);
  ok('operator minted a portal link from the console');
  await checkPage(page, 'operator-portal-links');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Admin API key').waitFor({ timeout: 10000 });
  assert((await page.evaluate(() => sessionStorage.getItem('hookline.admin'))) === null, 'sign out kept the key');
  ok('sign out cleared the admin key');
  await page.close();
}

export { note };
