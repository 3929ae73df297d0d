import { expect, type Page } from '@playwright/test';

export const PASSWORD = 'correct horse battery';

export function uniqueEmail(prefix = 'user'): string {
  return `${prefix}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
}

/** Navigates and waits until the wasm has hydrated the page's islands (the loader sets the marker). */
export async function gotoHydrated(page: Page, path: string): Promise<void> {
  await page.goto(path);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

export async function fillCredentials(page: Page, email: string, password: string): Promise<void> {
  await page.getByLabel('Email').fill(email);
  await page.locator('#field-password').fill(password);
}

export async function signUp(page: Page, email: string, password = PASSWORD): Promise<void> {
  await gotoHydrated(page, '/signup');
  await fillCredentials(page, email, password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByTestId('dashboard-email')).toContainText(email);
}

export async function logOut(page: Page): Promise<void> {
  await page.getByRole('button', { name: 'Log out' }).click();
  await expect(page.getByRole('link', { name: 'Log in' })).toBeVisible();
}

/** Pricing → a plan's "Start 14-day trial" → the sandbox's hosted Checkout page. */
export async function openCheckout(page: Page, planIndex: number): Promise<void> {
  await gotoHydrated(page, '/pricing');
  await page.getByTestId('plan').nth(planIndex).getByRole('button', { name: /Start 14-day trial/ }).click();
  await expect(page).toHaveURL(/\/sandbox\/checkout\/cs_test_/);
}

/** Fills the hosted Checkout page's card and address fields. */
export async function fillCard(page: Page, number: string): Promise<void> {
  await page.getByLabel('Card number').fill(number);
  await page.getByLabel('Expiry').fill('12 / 40');
  await page.getByLabel('CVC').fill('123');
  await page.getByLabel('Name on card').fill('Ann Buyer');
  await page.getByLabel('Country').fill('US');
  await page.getByLabel('Postal code').fill('94107');
}

/** A new user on a plan's trial, paid for with `card`, back on the dashboard. */
export async function subscribeWithTrial(page: Page, prefix: string, planIndex: number, card: string): Promise<string> {
  const email = uniqueEmail(prefix);
  await signUp(page, email);
  await openCheckout(page, planIndex);
  await fillCard(page, card);
  await page.getByRole('button', { name: 'Start trial' }).click();
  await expect(page).toHaveURL(/\/checkout\/success\?session_id=cs_test_/);
  await expect(page.getByTestId('checkout-done')).toBeVisible();
  await gotoHydrated(page, '/dashboard');
  await expect(page.getByTestId('plan-status')).toContainText('Free trial');
  return email;
}

/**
 * Moves the customer's test clock forward on the sandbox dashboard, as a developer would.
 * The dashboard shows one account at a time, so look through them for the customer.
 */
export async function advanceClock(page: Page, email: string, days: number): Promise<void> {
  await page.goto('/sandbox');
  const row = page.locator(`tr[data-email="${email}"]`);
  if ((await row.count()) === 0) {
    const accounts = await page.locator('select[name="account"] option').evaluateAll(
      (options) => options.map((o) => (o as HTMLOptionElement).value));
    for (const account of accounts) {
      await page.goto(`/sandbox?account=${encodeURIComponent(account)}`);
      if ((await row.count()) > 0) break;
    }
  }
  await row.getByTestId('advance-days').fill(String(days));
  await row.getByTestId('advance-clock').click();
  await expect(page.getByRole('status')).toContainText(`by ${days} day(s)`);
}

/**
 * Reloads `path` until `check` passes: webhooks reach the app asynchronously, and the page
 * shows only what they have recorded.
 */
export async function eventually(page: Page, path: string, check: () => Promise<void>): Promise<void> {
  await expect(async () => {
    await gotoHydrated(page, path);
    await check();
  }).toPass({ timeout: 30_000, intervals: [250, 500, 1_000] });
}

/** The dev mailbox's messages of one kind to one address. */
export function mail(page: Page, to: string, kind: string) {
  return page.locator(`article[data-testid="email"][data-kind="${kind}"]`, { hasText: `To ${to}` });
}
