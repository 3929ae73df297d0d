-- Subscriptions as Stripe last told us (webhooks only). The user is found through
-- `customers`, so a subscription event that arrives before the customer is linked is kept,
-- not lost, and shows up as soon as the link exists.
create table subscriptions (
    id text primary key,
    stripe_customer_id text not null,
    status text not null,
    price_id text,
    product_id text,
    quantity integer,
    current_period_start timestamptz,
    current_period_end timestamptz,
    trial_start timestamptz,
    trial_end timestamptz,
    cancel_at_period_end boolean not null default false,
    cancel_at timestamptz,
    canceled_at timestamptz,
    ended_at timestamptz,
    -- When the subscription became past_due, for the grace period.
    past_due_since timestamptz,
    stripe_as_of bigint not null default 0,
    updated_at timestamptz not null default now()
);
create index subscriptions_by_customer on subscriptions (stripe_customer_id);
