import { test, expect, type Page } from '@playwright/test';
import { PASSWORD, fillCard, fillCredentials, gotoHydrated, logOut, mail, signUp, uniqueEmail } from './helpers';

// A lifetime license bought with 4242, verified by the desktop app's API, refunded by an
// admin, and revoked everywhere once Stripe's webhook says so.

const ADMIN = process.env.ADMIN_EMAIL ?? 'admin@example.com';

async function logIn(page: Page, email: string) {
  await gotoHydrated(page, '/login');
  await fillCredentials(page, email, PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/dashboard$/);
}

/** Signs the admin up, or logs in when another journey already did. */
async function asAdmin(page: Page) {
  await gotoHydrated(page, '/signup');
  await fillCredentials(page, ADMIN, PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/(dashboard|login)/);
  if (page.url().includes('/login')) await logIn(page, ADMIN);
}

test('buy a lifetime license, verify it, an admin refunds it, and it is revoked', async ({ page, request }) => {
  test.skip(!process.env.ADMIN_EMAIL, 'scripts/e2e names the admin');
  const buyer = uniqueEmail('license');
  await signUp(page, buyer);

  // Pricing → Buy once → Stripe's hosted Checkout in payment mode.
  await gotoHydrated(page, '/pricing');
  const buyOnce = page.getByRole('region', { name: 'Buy once' });
  await expect(buyOnce.getByRole('heading', { name: 'Desktop app' })).toBeVisible();
  await buyOnce.getByRole('button', { name: /^Buy for \$49/ }).click();
  await expect(page).toHaveURL(/\/sandbox\/checkout\/cs_test_/);
  await fillCard(page, '4242 4242 4242 4242');
  await page.getByRole('button', { name: 'Pay', exact: true }).click();

  // The success page waits for the webhook, then shows the key.
  await expect(page).toHaveURL(/\/checkout\/success\?session_id=cs_test_/);
  await expect(page.getByRole('heading', { name: 'Thank you for your purchase' })).toBeVisible();
  const key = (await page.getByLabel('Your license key').textContent())!.trim();
  expect(key).toMatch(/^([0-9A-Z]{4}-){6}[0-9A-Z]{4}$/);

  // /licenses: the key hidden until asked for, active, on no machine yet.
  await page.getByRole('link', { name: 'Go to your licenses' }).click();
  const license = page.getByRole('article', { name: 'Desktop app' });
  await expect(license).toContainText('Active');
  await expect(license).toContainText('0 of 3 machines');
  await expect(license.getByText(key, { exact: true })).toBeHidden();
  await license.getByText('Show key').click();
  await expect(license.getByText(key, { exact: true })).toBeVisible();
  // Once interactive, Copy puts the key on the clipboard.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await license.getByRole('button', { name: 'Copy key' }).click();
  await expect(license.getByRole('button', { name: 'Copied' })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);

  // The desktop app's view of it.
  let verified = await request.post('/api/v1/licenses/verify', { data: { key } });
  expect(await verified.json()).toMatchObject({ valid: true, status: 'active', product: 'Desktop app' });

  // An admin refunds the order in full.
  await logOut(page);
  await asAdmin(page);
  await gotoHydrated(page, '/admin');
  await page.getByRole('searchbox', { name: 'Customer email' }).fill(buyer);
  await page.getByRole('button', { name: 'Search' }).click();
  const orders = page.getByRole('table', { name: 'Orders' });
  const row = orders.getByRole('row').filter({ hasText: buyer });
  await expect(row).toContainText('Paid');
  await row.getByLabel('Reason').selectOption('requested_by_customer');
  await row.getByRole('button', { name: 'Refund' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Refund requested' })).toBeVisible();
  // The order changes once Stripe's webhook says so.
  await expect(async () => {
    await page.reload();
    await expect(orders.getByRole('row').filter({ hasText: buyer })).toContainText('Refunded', { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(page.getByRole('table', { name: 'License audit log' })).toContainText('Revoked: refunded');

  // The buyer sees it revoked; the desktop app is told so.
  await logOut(page);
  await logIn(page, buyer);
  await gotoHydrated(page, '/licenses');
  await expect(page.getByRole('article', { name: 'Desktop app' })).toContainText('was revoked');
  verified = await request.post('/api/v1/licenses/verify', { data: { key } });
  expect(await verified.json()).toMatchObject({ valid: false, status: 'revoked' });

  // Both emails are in the mailbox: the key, then the revocation.
  await page.goto('/dev/mailbox');
  await expect(mail(page, buyer, 'license_purchased')).toContainText(key);
  await expect(mail(page, buyer, 'license_revoked')).toContainText('was revoked');
});
