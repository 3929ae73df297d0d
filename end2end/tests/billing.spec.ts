import { test, expect, type Page } from '@playwright/test';
import { advanceClock, eventually, gotoHydrated, mail, subscribeWithTrial } from './helpers';

// Each journey moves a test clock through weeks of billing and waits for the webhooks.
test.describe.configure({ timeout: 240_000 });

const CARD_FAILS_LATER = '4000 0000 0000 0341';
const VISA = '4242 4242 4242 4242';
const PRO = 1;

async function openPortal(page: Page): Promise<void> {
  await gotoHydrated(page, '/settings/billing');
  await page.getByTestId('manage-billing').click();
  await expect(page).toHaveURL(/\/sandbox\/portal\/bps_/);
}

async function backToApp(page: Page): Promise<void> {
  await page.getByTestId('portal-return').click();
  await expect(page).toHaveURL(/\/settings\/billing$/);
}

test('a card that fails at renewal: past due, emails, new card in the portal, recovered', async ({ page }) => {
  const email = await subscribeWithTrial(page, 'dunning', PRO, CARD_FAILS_LATER);

  // Past the 14-day trial: the first charge fails.
  await advanceClock(page, email, 15);
  await eventually(page, '/dashboard', async () => {
    await expect(page.getByTestId('plan-status')).toContainText('Payment failed');
  });
  // Still inside the grace period: access continues, and the page says until when.
  await expect(page.getByTestId('plan-banner')).toContainText('Your last payment failed');
  await expect(page.getByTestId('plan-timeline')).toContainText('Access continues until');
  await page.getByRole('button', { name: 'Run a report' }).click();
  await expect(page.getByTestId('feature-result')).toContainText('Report generated');

  await gotoHydrated(page, '/settings/billing');
  await expect(page.getByTestId('past-due-banner')).toContainText(/Your payment of \$\d+\.\d\d failed/);
  await expect(page.getByTestId('pay-now')).toHaveAttribute('href', /\/sandbox\/invoices\/in_/);

  await page.goto('/dev/mailbox');
  const failed = mail(page, email, 'payment_failed');
  await expect(failed).toHaveCount(1);
  await expect(failed).toContainText('We will try your card again on');
  await expect(failed).toContainText('Reason: Your card was declined.');
  await expect(mail(page, email, 'trial_will_end')).toHaveCount(1);

  // The customer puts a good card in the portal ...
  await openPortal(page);
  await page.getByText('Update card').click();
  await page.getByLabel('Card number').fill(VISA);
  await page.getByLabel('Expiry').fill('12 / 40');
  await page.getByLabel('CVC').fill('123');
  await page.getByTestId('save-card').click();
  await expect(page.getByTestId('portal-card')).toContainText('4242');
  await backToApp(page);
  await eventually(page, '/settings/billing', async () => {
    await expect(page.getByTestId('card-on-file')).toContainText('4242');
  });

  // ... and the scheduled retry (3 days after the failure) charges it.
  await advanceClock(page, email, 3);
  await eventually(page, '/dashboard', async () => {
    await expect(page.getByTestId('plan-status')).toContainText('Pro · Active');
  });
  await expect(page.getByTestId('plan-banner')).toHaveCount(0);
  await gotoHydrated(page, '/settings/billing');
  await expect(page.getByTestId('past-due-banner')).toHaveCount(0);
  await page.goto('/dev/mailbox');
  await expect(mail(page, email, 'payment_recovered')).toHaveCount(1);
  await expect(mail(page, email, 'payment_failed')).toHaveCount(1);
});

test('the portal switches Pro to Team with proration, cancels at period end, resumes, and ends', async ({ page }) => {
  const email = await subscribeWithTrial(page, 'portal', PRO, VISA);
  // A paid period, so that switching plans has something to prorate.
  await advanceClock(page, email, 15);
  await eventually(page, '/dashboard', async () => {
    await expect(page.getByTestId('plan-status')).toContainText('Pro · Active');
  });

  await openPortal(page);
  await expect(page.getByTestId('portal-plan')).toContainText('Pro');
  await page.locator('li', { hasText: 'Team' }).filter({ hasText: '/ month' }).getByRole('link', { name: 'Select' }).click();
  const preview = page.getByTestId('proration-preview');
  await expect(preview).toContainText('Switch to Team');
  // Most of a month of Team less the unused Pro: well above zero, below a full Team month.
  const due = Number((await page.getByTestId('amount-due-now').innerText()).replace(/[^0-9.]/g, ''));
  expect(due).toBeGreaterThan(29);
  expect(due).toBeLessThan(99);
  await page.getByTestId('confirm-switch').click();
  await expect(page.getByTestId('portal-notice')).toBeVisible();
  await expect(page.getByTestId('portal-plan')).toContainText('Team');
  await backToApp(page);
  await eventually(page, '/settings/billing', async () => {
    await expect(page.getByTestId('plan-status')).toContainText('Team · Active');
  });

  // Cancel at the end of the period, with a reason.
  await openPortal(page);
  await page.getByLabel('Why are you canceling?').selectOption('too_expensive');
  await page.getByTestId('cancel-plan').click();
  await expect(page.getByTestId('portal-cancels')).toBeVisible();
  await backToApp(page);
  await eventually(page, '/settings/billing', async () => {
    await expect(page.getByTestId('plan-timeline')).toContainText(/Cancels on \w+ \d+, \d{4}/);
  });
  await expect(page.getByTestId('plan-banner')).toContainText('set to end');
  await expect(page.getByTestId('next-invoice')).toHaveCount(0);

  // Changed their mind.
  await openPortal(page);
  await page.getByTestId('resume').click();
  await expect(page.getByTestId('portal-cancels')).toHaveCount(0);
  await backToApp(page);
  await eventually(page, '/settings/billing', async () => {
    await expect(page.getByTestId('plan-timeline')).toContainText('Renews');
  });
  await expect(page.getByTestId('plan-banner')).toHaveCount(0);
  // Stripe's preview of the next invoice: the plan with US tax (7.25 %), no usage yet.
  await expect(page.getByTestId('next-invoice')).toContainText('$106.18');

  // Cancel for good, and let the period run out: access ends with it.
  await openPortal(page);
  await page.getByLabel('Why are you canceling?').selectOption('unused');
  await page.getByTestId('cancel-plan').click();
  await expect(page.getByTestId('portal-cancels')).toBeVisible();
  await advanceClock(page, email, 31);
  await eventually(page, '/dashboard', async () => {
    await expect(page.getByTestId('plan-status')).toContainText('Team · Canceled');
  });
  await expect(page.getByTestId('feature-locked')).toBeVisible();
  await expect(page.getByTestId('plan-banner')).toContainText('no longer gives access');
  await page.goto('/dev/mailbox');
  await expect(mail(page, email, 'subscription_ended')).toHaveCount(1);
});
