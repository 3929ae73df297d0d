-- Invoices as Stripe last told us (invoice.* webhooks), for the billing page's history and
-- the past-due banner. Found by customer, like subscriptions.
create table invoices (
    id text primary key,
    stripe_customer_id text not null,
    subscription_id text,
    number text,
    status text not null,
    currency text not null,
    total bigint not null,
    amount_due bigint not null,
    amount_paid bigint not null,
    amount_remaining bigint not null,
    attempt_count integer not null default 0,
    next_payment_attempt timestamptz,
    hosted_invoice_url text,
    invoice_pdf text,
    period_end timestamptz,
    created timestamptz not null,
    stripe_as_of bigint not null default 0,
    updated_at timestamptz not null default now()
);
create index invoices_by_customer on invoices (stripe_customer_id, created desc);

-- The card invoices are charged to, for "Visa •••• 4242, expires 12/34". Card details
-- only: brand, last four and expiry are what Stripe shows merchants; never the number.
alter table customers
    add column default_payment_method text,
    add column card_brand text,
    add column card_last4 text,
    add column card_exp_month integer,
    add column card_exp_year integer;

-- Cards seen attached to customers, so the default can be described when customer.updated
-- arrives before or after payment_method.attached.
create table payment_methods (
    id text primary key,
    stripe_customer_id text,
    brand text not null,
    last4 text not null,
    exp_month integer not null,
    exp_year integer not null
);

-- Transactional email, written in the same transaction as the webhook that causes it. The
-- unique key (event id + kind) means a redelivered webhook never queues a second email.
create table email_outbox (
    id bigserial primary key,
    dedupe_key text not null unique,
    user_id uuid references users (id) on delete set null,
    to_address text not null,
    kind text not null,
    subject text not null,
    body_text text not null,
    body_html text not null,
    status text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    locked_until timestamptz,
    last_error text,
    created_at timestamptz not null default now(),
    sent_at timestamptz
);
create index email_outbox_due on email_outbox (next_attempt_at) where status = 'pending';
