import { test, expect } from '@playwright/test';
import { PASSWORD, fillCard, fillCredentials, gotoHydrated, openCheckout, signUp, uniqueEmail } from './helpers';

test('subscribe to Pro with a test card and start a trial', async ({ page }) => {
  await signUp(page, uniqueEmail('subscribe'));
  await openCheckout(page, 1);
  await expect(page.getByTestId('trial-notice')).toContainText('14 days free');

  await fillCard(page, '4000 0000 0000 0002');
  await page.getByRole('button', { name: 'Start trial' }).click();
  await expect(page.getByTestId('checkout-error')).toHaveText('Your card was declined.');
  await expect(page).toHaveURL(/\/sandbox\/checkout\//);

  await fillCard(page, '4242 4242 4242 4242');
  await page.getByRole('button', { name: 'Start trial' }).click();
  await expect(page).toHaveURL(/\/checkout\/success\?session_id=cs_test_/);
  await expect(page.getByTestId('checkout-done')).toContainText('Pro');

  await page.getByRole('link', { name: 'Go to your dashboard' }).click();
  await expect(page.getByTestId('plan-status')).toContainText('Pro');
  await expect(page.getByTestId('plan-status')).toContainText('Free trial');
  await expect(page.getByTestId('plan-timeline')).toContainText('days left');
  await page.getByRole('button', { name: 'Run a report' }).click();
  await expect(page.getByTestId('feature-result')).toContainText('Report generated');

  // The pricing page marks the plan the customer is on, and only that one.
  await gotoHydrated(page, '/pricing');
  const pro = page
    .getByRole('article')
    .filter({ has: page.getByRole('heading', { name: 'Pro', exact: true }) });
  await expect(pro.getByText('Your current plan')).toBeVisible();
  await expect(page.getByText('Your current plan')).toHaveCount(1);
});

test('going back from checkout returns to pricing with nothing bought', async ({ page }) => {
  await signUp(page, uniqueEmail('changed-mind'));
  await openCheckout(page, 0);
  await page.getByRole('link', { name: '← Back' }).click();
  await expect(page).toHaveURL(/\/pricing$/);
  await gotoHydrated(page, '/dashboard');
  await expect(page.getByTestId('feature-locked')).toBeVisible();
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('subscribe, wait for the webhook and run a report with plain forms', async ({ page }) => {
    const email = uniqueEmail('nojs-subscribe');
    await page.goto('/signup');
    await fillCredentials(page, email, PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect(page).toHaveURL(/\/dashboard$/);

    await page.goto('/pricing');
    await page.getByTestId('plan').nth(1).getByRole('button', { name: /Start 14-day trial/ }).click();
    await expect(page).toHaveURL(/\/sandbox\/checkout\/cs_test_/);
    await fillCard(page, '4242 4242 4242 4242');
    await page.getByRole('button', { name: 'Start trial' }).click();
    // The success page asks again on its own (a refresh) until the webhook has landed.
    await expect(page).toHaveURL(/\/checkout\/success\?session_id=cs_test_/);
    await expect(page.getByTestId('checkout-done')).toContainText('Pro');

    await page.getByRole('link', { name: 'Go to your dashboard' }).click();
    await page.getByRole('button', { name: 'Run a report' }).click();
    await expect(page).toHaveURL(/\/dashboard$/);
    await expect(page.getByTestId('feature-result')).toContainText('Report generated');
    // The answer shows once: a reload does not repeat it.
    await page.reload();
    await expect(page.getByTestId('feature-result')).toHaveText('');
  });
});
