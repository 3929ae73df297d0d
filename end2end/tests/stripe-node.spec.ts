import { test, expect } from '@playwright/test';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { fillCard } from './helpers';

// Stripe's own Node SDK, configured the way its README says for a local server, drives the
// standalone sandbox (`saas-billing sandbox`, started by scripts/e2e beside the app). Nobody
// here wrote this client: what it sends and what it expects back are Stripe's.

const sandboxUrl = process.env.SANDBOX_API_URL;

function client(): Stripe {
  expect(sandboxUrl, 'scripts/e2e starts the standalone sandbox and passes SANDBOX_API_URL').toBeTruthy();
  const url = new URL(sandboxUrl!);
  const key = `sk_test_node${Date.now()}${Math.random().toString(36).slice(2, 10)}`;
  return new Stripe(key, { host: url.hostname, port: Number(url.port), protocol: 'http', maxNetworkRetries: 2 });
}

/** A loopback server that keeps what Stripe posts to it, raw, for stripe-node to verify. */
async function webhookReceiver() {
  const received: { body: string; signature: string }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => { body += chunk; });
    req.on('end', () => {
      received.push({ body, signature: String(req.headers['stripe-signature'] ?? '') });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/webhooks`, received, close: () => server.close() };
}

test('stripe-node: a promotion code set on the session is charged, signed webhooks verify, and an unknown parameter is refused', async ({ page }) => {
  const stripe = client();
  const hooks = await webhookReceiver();
  try {
    const endpoint = await stripe.webhookEndpoints.create({
      url: hooks.url, enabled_events: ['checkout.session.completed'],
    });
    expect(endpoint.secret).toMatch(/^whsec_/);

    const product = await stripe.products.create({ name: 'Field guide' });
    const price = await stripe.prices.create({ product: product.id, unit_amount: 4000, currency: 'usd' });
    const coupon = await stripe.coupons.create({ percent_off: 25, duration: 'once' });
    const promo = await stripe.promotionCodes.create({
      promotion: { type: 'coupon', coupon: coupon.id }, code: `NODE${Date.now()}`,
    });
    // The case that once charged full price: a discount preset on the session.
    const session = await stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [{ price: price.id, quantity: 1 }],
      discounts: [{ promotion_code: promo.id }],
      success_url: `${sandboxUrl}/?paid={CHECKOUT_SESSION_ID}`,
    });
    expect(session.amount_total).toBe(3000);
    expect(session.lastResponse.requestId).toMatch(/^req_/);
    expect(session.lastResponse.apiVersion).toBe(Stripe.API_VERSION);

    await page.goto(session.url!);
    const main = page.getByRole('main');
    await expect(main).toContainText('Field guide');
    await expect(main).toContainText('Discount');
    await expect(main).toContainText('$30.00');
    await page.getByLabel('Email').fill('reader@example.com');
    await fillCard(page, '4242 4242 4242 4242');
    await page.getByRole('button', { name: 'Pay', exact: true }).click();
    await expect(page).toHaveURL(`${sandboxUrl}/?paid=${session.id}`);

    const done = await stripe.checkout.sessions.retrieve(session.id, { expand: ['line_items'] });
    expect(done.status).toBe('complete');
    expect(done.amount_total).toBe(3000);
    expect(done.line_items?.data[0].amount_discount).toBe(1000);
    const items = await stripe.checkout.sessions.listLineItems(session.id);
    expect(items.data.map((i) => i.description)).toEqual(['Field guide']);
    const intent = await stripe.paymentIntents.retrieve(done.payment_intent as string);
    expect(intent.amount).toBe(3000);

    // The delivery, verified by stripe-node's own signature check with the endpoint's secret.
    await expect.poll(() => hooks.received.length).toBeGreaterThan(0);
    const { body, signature } = hooks.received[0];
    const event = stripe.webhooks.constructEvent(body, signature, endpoint.secret!);
    expect(event.type).toBe('checkout.session.completed');
    expect((event.data.object as Stripe.Checkout.Session).id).toBe(session.id);
    expect(() => stripe.webhooks.constructEvent(body.replace('3000', '1'), signature, endpoint.secret!))
      .toThrow();

    // What the sandbox does not implement is refused as Stripe refuses it, with a request id.
    const refused = stripe.customers.create({ email: 'x@example.com', invented: '1' } as Stripe.CustomerCreateParams);
    await expect(refused).rejects.toMatchObject({
      type: 'StripeInvalidRequestError', code: 'parameter_unknown', param: 'invented', statusCode: 400,
      requestId: expect.stringMatching(/^req_/),
    });

    // Auto-pagination follows starting_after through every page.
    await stripe.prices.create({ product: product.id, unit_amount: 900, currency: 'usd' });
    const seen: string[] = [];
    for await (const p of stripe.prices.list({ limit: 1 })) seen.push(p.id);
    expect(seen).toHaveLength(2);
    expect(seen).toContain(price.id);
  } finally {
    hooks.close();
  }
});
