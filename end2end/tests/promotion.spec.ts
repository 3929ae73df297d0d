import { test, expect } from '@playwright/test';
import { fillCard, gotoHydrated, signUp, uniqueEmail } from './helpers';

// The app's Checkout asks Stripe for promotion codes and automatic tax: a customer types the
// demo's code on the hosted page, sees the discount and the US tax there, pays, and finds the
// same discount and tax on the invoice in billing settings.

test('a promotion code and tax on the hosted Checkout, then on the invoice in billing settings', async ({ page }) => {
  await signUp(page, uniqueEmail('promo'));
  await gotoHydrated(page, '/pricing');
  await page.getByRole('region', { name: 'Buy once' }).getByRole('button', { name: /^Buy for \$49/ }).click();
  await expect(page).toHaveURL(/\/sandbox\/checkout\/cs_test_/);

  // The billing address decides the tax; the code takes 20% off the $49.00.
  await fillCard(page, '4242 4242 4242 4242');
  await page.getByLabel('Promotion code').fill('LAUNCH20');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Code LAUNCH20 applied' })).toBeVisible();
  await expect(page.getByTestId('discount-line')).toContainText('$9.80');
  await expect(page.getByTestId('tax-line')).toContainText('Tax (US, 7.25%)');
  await expect(page.getByTestId('tax-line')).toContainText('$2.84');
  await expect(page.getByTestId('total-due')).toContainText('$42.04');

  // A wrong code is refused in words, and the right one still applies.
  await page.getByLabel('Promotion code').fill('LAUNCH99');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'This code is invalid.' })).toBeVisible();
  await expect(page.getByTestId('total-due')).toContainText('$52.55');
  await page.getByLabel('Promotion code').fill('LAUNCH20');
  await page.getByRole('button', { name: 'Apply' }).click();
  await expect(page.getByTestId('total-due')).toContainText('$42.04');

  await fillCard(page, '4242 4242 4242 4242');
  await page.getByRole('button', { name: 'Pay', exact: true }).click();
  await expect(page).toHaveURL(/\/checkout\/success\?session_id=cs_test_/);
  await expect(page.getByRole('heading', { name: 'Thank you for your purchase' })).toBeVisible();

  // The invoice: the item, the discount, the tax and the total charged.
  const invoice = page.getByRole('row').filter({ hasText: 'Desktop app' });
  await expect(async () => {
    await gotoHydrated(page, '/settings/billing');
    await expect(invoice).toContainText('Paid', { timeout: 1_000 });
  }).toPass({ timeout: 20_000 });
  await expect(invoice).toContainText('Discount: -$9.80');
  await expect(invoice).toContainText('Tax: $2.84');
  await expect(invoice).toContainText('$42.04');
});
