import { test, expect, type APIRequestContext } from '@playwright/test';
import { fillCard } from './helpers';

// The sandbox as any Stripe SDK user meets it: a Checkout Session created with a secret key
// through the API (its own test-mode account, apart from the app's), then the hosted page.

async function stripeApi(request: APIRequestContext, key: string, method: 'GET' | 'POST', path: string,
                         form?: Record<string, string>) {
  const res = await request.fetch(`/sandbox/v1${path}`, {
    method, form, headers: { Authorization: `Bearer ${key}` },
  });
  const body = await res.json();
  expect(res.ok(), JSON.stringify(body)).toBe(true);
  return body;
}

test('a Checkout Session made through the API: 0002 is declined on the page, 4242 lands on success_url', async ({ page, request, baseURL }) => {
  const key = `sk_test_e2e${Date.now()}${Math.random().toString(36).slice(2, 10)}`;
  const product = await stripeApi(request, key, 'POST', '/products', { name: 'Desk lamp' });
  const price = await stripeApi(request, key, 'POST', '/prices', {
    product: product.id, unit_amount: '1500', currency: 'usd',
  });
  const session = await stripeApi(request, key, 'POST', '/checkout/sessions', {
    mode: 'payment',
    'line_items[0][price]': price.id,
    'line_items[0][quantity]': '2',
    success_url: `${baseURL}/pricing?paid={CHECKOUT_SESSION_ID}`,
    cancel_url: `${baseURL}/pricing`,
  });
  expect(session.url).toMatch(/\/sandbox\/checkout\/cs_test_/);
  expect(session.status).toBe('open');

  await page.goto(session.url);
  await expect(page.getByRole('main')).toContainText('Desk lamp');
  await expect(page.getByRole('main')).toContainText('$30.00');
  await page.getByLabel('Email').fill('lamp-buyer@example.com');

  await fillCard(page, '4000 0000 0000 0002');
  await page.getByRole('button', { name: 'Pay', exact: true }).click();
  await expect(page.getByTestId('checkout-error')).toHaveText('Your card was declined.');
  await expect(page).toHaveURL(/\/sandbox\/checkout\/cs_test_/);
  const stillOpen = await stripeApi(request, key, 'GET', `/checkout/sessions/${session.id}`);
  expect(stillOpen.status).toBe('open');

  await fillCard(page, '4242 4242 4242 4242');
  await page.getByRole('button', { name: 'Pay', exact: true }).click();
  await expect(page).toHaveURL(`${baseURL}/pricing?paid=${session.id}`);

  const done = await stripeApi(request, key, 'GET', `/checkout/sessions/${session.id}`);
  expect(done.status).toBe('complete');
  expect(done.payment_status).toBe('paid');
  expect(done.amount_total).toBe(3000);
  const events = await stripeApi(request, key, 'GET', '/events?type=checkout.session.completed');
  expect(events.data.map((e: { data: { object: { id: string } } }) => e.data.object.id)).toContain(session.id);

  // A completed session cannot be paid twice.
  await page.goto(session.url);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Checkout unavailable');
});

test('the sandbox dashboard and the dev mailbox turn away a browser without the printed token', async ({ browser }) => {
  const token = process.env.SANDBOX_TOKEN;
  test.skip(!token, 'scripts/e2e sets SANDBOX_TOKEN');
  // A browser that never opened the link the server printed.
  const stranger = await browser.newContext({ storageState: { cookies: [], origins: [] } });
  const page = await stranger.newPage();
  for (const path of ['/sandbox', '/dev/mailbox']) {
    const res = await page.goto(path);
    expect(res?.status()).toBe(401);
    await expect(page.getByRole('heading', { level: 1 })).toHaveText("This page needs the sandbox's token");
  }
  // The printed link opens the dashboard, keeps the token in a cookie and drops it from the address.
  await page.goto(`/sandbox?token=${token}`);
  await expect(page).toHaveURL(/\/sandbox$/);
  await expect(page.getByRole('heading', { level: 1 })).toContainText('sandbox', { ignoreCase: true });
  const res = await page.goto('/dev/mailbox');
  expect(res?.status()).toBe(200);
  await stranger.close();
});
