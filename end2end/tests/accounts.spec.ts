import { test, expect } from '@playwright/test';
import { PASSWORD, fillCredentials, gotoHydrated, logOut, mail, signUp, uniqueEmail } from './helpers';

test('sign up, log out, log in again', async ({ page }) => {
  const email = uniqueEmail('journey');
  await signUp(page, email);
  await expect(page.getByTestId('nav-user')).toHaveText(email);
  // No subscription yet: the paid feature is locked (and refused by the server).
  await expect(page.getByTestId('feature-locked')).toBeVisible();

  await logOut(page);
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByTestId('nav-user')).toHaveCount(0);

  await gotoHydrated(page, '/login');
  await fillCredentials(page, email.toUpperCase(), PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/dashboard$/);
  await expect(page.getByTestId('dashboard-email')).toContainText(email);
});

test('a wrong password is refused with a clear message', async ({ page }) => {
  const email = uniqueEmail('wrongpw');
  await signUp(page, email);
  await logOut(page);

  await gotoHydrated(page, '/login');
  await fillCredentials(page, email, 'not the password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page.getByTestId('form-error')).toHaveText('Email or password is incorrect.');
  await expect(page).toHaveURL(/\/login/);
});

test('signing up with a taken address reveals nothing on the page and tells its owner by email', async ({ page }) => {
  const email = uniqueEmail('dupe');
  await signUp(page, email);
  await logOut(page);

  await gotoHydrated(page, '/signup');
  await fillCredentials(page, email, 'someone elses password');
  await page.getByRole('button', { name: 'Create account' }).click();
  // No "already exists": the visitor ends up at the login form, logged in as nobody.
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByRole('button', { name: 'Log in' })).toBeVisible();
  await expect(page.getByRole('main')).not.toContainText('already');
  await page.goto('/dev/mailbox');
  await expect(mail(page, email, 'signup_address_taken')).toContainText('Someone tried to sign up with your email');
});

test('form errors appear next to the field', async ({ page }) => {
  await gotoHydrated(page, '/signup');
  await fillCredentials(page, 'not-an-email', PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.locator('#field-email-help')).toHaveText(/valid email address/);
  await expect(page.getByLabel('Email')).toHaveAttribute('aria-invalid', 'true');

  await fillCredentials(page, uniqueEmail('short'), 'short');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.locator('#field-password-help')).toHaveText('Use at least 8 characters.');
});

test('protected pages send you to log in and back', async ({ page }) => {
  const email = uniqueEmail('wall');
  await signUp(page, email);
  await logOut(page);

  await page.goto('/settings/billing');
  await expect(page).toHaveURL(/\/login\?next=\/settings\/billing$/);
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
  await fillCredentials(page, email, PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await expect(page).toHaveURL(/\/settings\/billing$/);
  await expect(page.getByRole('heading', { name: 'Billing', exact: true })).toBeVisible();
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('sign-up works as a plain form and shows errors from the server', async ({ page }) => {
    await page.goto('/signup');
    await fillCredentials(page, 'nope', PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect(page.locator('#field-email-help')).toHaveText(/valid email address/);

    const email = uniqueEmail('nojs');
    await fillCredentials(page, email, PASSWORD);
    await page.getByRole('button', { name: 'Create account' }).click();
    await expect(page).toHaveURL(/\/dashboard$/);
    await expect(page.getByTestId('dashboard-email')).toContainText(email);
  });
});
