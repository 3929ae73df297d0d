import { test, expect } from '@playwright/test';
import { gotoHydrated } from './helpers';

test('pricing shows the plans from the database, monthly and yearly', async ({ page }) => {
  await gotoHydrated(page, '/pricing');
  const plans = page.getByTestId('plan');
  await expect(plans).toHaveCount(3);
  await expect(plans.nth(0)).toContainText('Starter');
  await expect(plans.nth(0).getByTestId('plan-price')).toHaveText('$9/ month');
  await expect(plans.nth(1).getByTestId('plan-price')).toHaveText('$29/ month');
  await expect(plans.nth(2).getByTestId('plan-price')).toHaveText('$99/ month');
  await expect(page.getByText('14-day free trial').first()).toBeVisible();

  await page.getByTestId('interval-year').click();
  await expect(page).toHaveURL(/interval=year/);
  await expect(plans.nth(1).getByTestId('plan-price')).toHaveText('$290/ year');
  await expect(plans.nth(1)).toContainText('Save 16% with yearly billing');
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the yearly toggle still works as a plain link', async ({ page }) => {
    await page.goto('/pricing');
    await page.getByTestId('interval-year').click();
    await expect(page.getByTestId('plan').nth(2).getByTestId('plan-price')).toHaveText('$990/ year');
  });
});

test('a stranger\'s kept pricing page hydrates under its policy, with nothing refused', async ({ page }) => {
  const refused: string[] = [];
  page.on('console', (message) => {
    if (message.text().includes('Content Security Policy')) refused.push(message.text());
  });
  // Until the server has kept the page (a catalog change elsewhere makes it render again),
  // a visit is a render; retried until one is the kept copy, whose scripts run by hash.
  await expect(async () => {
    const response = await page.goto('/pricing');
    expect(response?.headers()['content-security-policy']).toContain("'sha256-");
    await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true', { timeout: 5_000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.getByRole('heading', { name: 'Plans and pricing' })).toBeVisible();
  await gotoHydrated(page, '/pricing?interval=year');
  await expect(page.getByTestId('plan').nth(1).getByTestId('plan-price')).toHaveText('$290/ year');
  expect(refused).toEqual([]);
});
