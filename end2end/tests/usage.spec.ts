import { test, expect, type APIRequestContext } from '@playwright/test';
import { advanceClock, eventually, gotoHydrated, mail, subscribeWithTrial } from './helpers';

// Usage-based billing as a customer meets it: reports past 80% of the plan's limit (a
// warning on the dashboard and by email), the limit itself (a clear refusal), and, once the
// period ends, the usage on the invoice in billing settings.

async function runReports(request: APIRequestContext, token: string, n: number) {
  for (let i = 0; i < n; i++) {
    const res = await request.post('/api/v1/reports', { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status(), await res.text()).toBe(201);
  }
}

test('reports are metered: 80% warns, the limit refuses, and the invoice bills the usage', async ({ page, request }) => {
  test.setTimeout(180_000);
  // Starter: 200 reports a month, 100 of them included, then $0.10 each.
  const email = await subscribeWithTrial(page, 'usage', 0, '4242 4242 4242 4242');

  // A token for a script.
  await gotoHydrated(page, '/settings/api');
  await page.getByLabel('Name').fill('Nightly export');
  await page.getByRole('button', { name: 'Create token' }).click();
  const token = (await page.getByLabel('New API token').textContent())!.trim();
  expect(token).toMatch(/^sbt_[0-9a-f]{48}$/);
  await expect(page.getByRole('listitem').filter({ hasText: 'Nightly export' })).toBeVisible();

  // 159 from the script, the 160th from the dashboard's button: 80% of 200.
  await runReports(request, token, 159);
  await gotoHydrated(page, '/dashboard');
  await page.getByRole('button', { name: 'Run a report' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'Report generated' })).toContainText('160 of 200 reports used');
  await expect(page.getByTestId('usage-warning')).toContainText('You have used 80%');
  await expect(page.getByRole('figure')).toContainText('Reports per day');
  await page.goto('/dev/mailbox');
  await expect(mail(page, email, 'usage_warning')).toContainText('160 of the 200 reports');

  // The limit: the button is refused with a reason.
  await runReports(request, token, 40);
  await gotoHydrated(page, '/dashboard');
  await page.getByRole('button', { name: 'Run a report' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'all the reports your plan allows' })).toBeVisible();
  await expect(page.getByTestId('usage-warning')).toContainText('You have used all 200 reports');
  const refused = await request.post('/api/v1/reports', { headers: { Authorization: `Bearer ${token}` } });
  expect(refused.status()).toBe(429);
  expect(Number(refused.headers()['retry-after'])).toBeGreaterThan(0);

  // Once Stripe's meter has the usage, the trial ends: the invoice bills 100 reports beyond
  // the included 100.
  await expect(async () => {
    await page.goto('/sandbox');
    await expect(page.locator(`tr[data-email="${email}"]`).getByTestId('customer-usage')).toHaveText('200', { timeout: 1_000 });
  }).toPass({ timeout: 30_000 });
  await advanceClock(page, email, 15);
  await eventually(page, '/settings/billing', async () => {
    await expect(page.getByTestId('invoice-row').first()).toContainText('200 × Starter (usage): $10.00', { timeout: 1_000 });
  });
});
