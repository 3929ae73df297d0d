import { test, expect, type Page } from '@playwright/test';
import { fillCard, gotoHydrated, openCheckout, signUp, uniqueEmail } from './helpers';

// Runs in the "phone" project (Pixel 7 viewport).

async function expectNoSidewaysScroll(page: Page, what: string): Promise<void> {
  // Against the device width (clientWidth): Chromium widens window.innerWidth to fit content
  // that overflows, which would hide exactly what this looks for.
  const overflow = await page.evaluate(() =>
    document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow, `${what} scrolls sideways by ${overflow}px`).toBeLessThanOrEqual(0);
}

for (const path of ['/', '/pricing', '/signup', '/login']) {
  test(`${path} fits a phone screen without sideways scrolling`, async ({ page }) => {
    await gotoHydrated(page, path);
    await expectNoSidewaysScroll(page, path);
    await expect(page.getByRole('link', { name: 'Pricing' })).toBeVisible();
  });
}

test('a subscriber\'s pages and the hosted Checkout and portal fit a phone screen', async ({ page }) => {
  test.setTimeout(120_000);
  await signUp(page, uniqueEmail('phone'));
  await openCheckout(page, 1);
  await expectNoSidewaysScroll(page, 'hosted Checkout');
  await fillCard(page, '4242 4242 4242 4242');
  await page.getByRole('button', { name: 'Start trial' }).click();
  await expect(page.getByTestId('checkout-done')).toBeVisible();
  await expectNoSidewaysScroll(page, 'checkout success');

  for (const path of ['/dashboard', '/settings/billing']) {
    await gotoHydrated(page, path);
    await expect(page.getByTestId('plan-status')).toContainText('Pro');
    await expectNoSidewaysScroll(page, path);
  }
  await page.getByTestId('manage-billing').click();
  await expect(page).toHaveURL(/\/sandbox\/portal\/bps_/);
  await expect(page.getByTestId('portal-plan')).toBeVisible();
  await expectNoSidewaysScroll(page, 'hosted portal');

  for (const path of ['/dev/mailbox', '/sandbox']) {
    await page.goto(path);
    await expectNoSidewaysScroll(page, path);
  }
});

test('a lifetime license\'s pages fit a phone screen: Buy once, Checkout, the key, /licenses', async ({ page }) => {
  test.setTimeout(120_000);
  await signUp(page, uniqueEmail('phone-license'));
  await gotoHydrated(page, '/pricing');
  const buyOnce = page.getByRole('region', { name: 'Buy once' });
  await buyOnce.scrollIntoViewIfNeeded();
  await expectNoSidewaysScroll(page, 'pricing with Buy once');
  await buyOnce.getByRole('button', { name: /^Buy for/ }).click();
  await expect(page).toHaveURL(/\/sandbox\/checkout\/cs_test_/);
  await fillCard(page, '4242 4242 4242 4242');
  await page.getByRole('button', { name: 'Pay', exact: true }).click();
  await expect(page.getByLabel('Your license key')).toBeVisible();
  await expectNoSidewaysScroll(page, 'purchase success with the key');
  await gotoHydrated(page, '/licenses');
  await page.getByText('Show key').click();
  await expectNoSidewaysScroll(page, '/licenses with the key shown');
});
