import { test, expect } from '@playwright/test';
import { gotoHydrated } from './helpers';

test('pages hydrate without errors and client-only interactions work', async ({ page }) => {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });

  await gotoHydrated(page, '/signup');
  const password = page.locator('#field-password');
  await expect(password).toHaveAttribute('type', 'password');
  // The show/hide toggle is a wasm event handler: it can only work once hydrated.
  await page.getByRole('button', { name: 'Show' }).click();
  await expect(password).toHaveAttribute('type', 'text');
  await page.getByRole('button', { name: 'Hide' }).click();
  await expect(password).toHaveAttribute('type', 'password');

  await gotoHydrated(page, '/pricing');
  await gotoHydrated(page, '/');
  expect(problems).toEqual([]);
});

test('the test-mode banner shows in sandbox mode', async ({ page }) => {
  await gotoHydrated(page, '/');
  await expect(page.getByTestId('mode-banner')).toContainText('Test mode');
});

test('unknown pages answer 404 with a readable page', async ({ page }) => {
  const response = await page.goto('/no/such/page');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('heading', { name: 'Page not found' })).toBeVisible();
});
