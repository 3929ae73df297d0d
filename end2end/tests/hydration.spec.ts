import { test, expect, type Page } from '@playwright/test';
import { gotoHydrated } from './helpers';

test('pages hydrate without errors and client-only interactions work', async ({ page }) => {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });

  await gotoHydrated(page, '/signup');
  const password = page.locator('#field-password');
  await expect(password).toHaveAttribute('type', 'password');
  // The show/hide toggle is an island: it can only work once hydrated.
  await page.getByRole('button', { name: 'Show' }).click();
  await expect(password).toHaveAttribute('type', 'text');
  await page.getByRole('button', { name: 'Hide' }).click();
  await expect(password).toHaveAttribute('type', 'password');

  await gotoHydrated(page, '/pricing');
  await gotoHydrated(page, '/');
  expect(problems).toEqual([]);
});

/// Fills the login form with a wrong password and holds its post back, as a slow network
/// would. While the browser waits for the next page Playwright cannot look into the current
/// one, so the page reports every change of its button in `seen`.
async function heldLogin(page: Page) {
  let release: () => void = () => {};
  const held = new Promise<void>((resolve) => { release = resolve; });
  await page.route('**/api/login', async (route) => { await held; await route.continue(); });
  const seen: string[] = [];
  await page.exposeFunction('buttonShows', (what: string) => { seen.push(what); });
  await gotoHydrated(page, '/login');
  await page.getByLabel('Email').fill('nobody@example.com');
  await page.locator('#field-password').fill('not the password');
  const button = page.getByRole('button', { name: 'Log in' });
  await button.evaluate((b) => {
    const report = () => (window as any).buttonShows(
      `${b.textContent} busy=${b.getAttribute('aria-busy')} disabled=${b.getAttribute('aria-disabled')}`);
    new MutationObserver(report).observe(b, { attributes: true, childList: true, subtree: true, characterData: true });
  });
  // Not waiting for the next page: it is held back.
  await button.click({ noWaitAfter: true });
  await expect.poll(() => seen).toContain('Logging in… busy=true disabled=true');
  return { seen, release };
}

test('a submit button says it is busy while its form is on its way', async ({ page }) => {
  const { release } = await heldLogin(page);
  release();
  await expect(page.getByTestId('form-error')).toHaveText('Email or password is incorrect.');
  // The refused address is still in the form; the password is not.
  await expect(page.getByLabel('Email')).toHaveValue('nobody@example.com');
  await expect(page.locator('#field-password')).toHaveValue('');
  await expect(page.getByRole('button', { name: 'Log in' })).toHaveAttribute('aria-busy', 'false');
});

test('Esc gives a busy submit button back', async ({ page }) => {
  // Esc stops the page's navigation in a browser: the form is no longer on its way, so its
  // button must not stay busy and refuse a second try.
  const { seen, release } = await heldLogin(page);
  await page.keyboard.press('Escape');
  await expect.poll(() => seen.at(-1)).toBe('Log in busy=false disabled=null');
  release();
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
