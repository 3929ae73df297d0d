-- Usage-based billing on Stripe's Billing Meters.

-- A price is licensed (a quantity, billed in advance) or metered (what a meter counted,
-- billed after the period, through its tiers). A metered price's `report_limit` (metadata)
-- caps a period's usage; `report_overage=true` lets it go past the cap and be billed.
alter table prices add column usage_type text not null default 'licensed'
    check (usage_type in ('licensed', 'metered'));
alter table prices add column meter_id text;
alter table prices add column tiers_mode text check (tiers_mode in ('graduated', 'volume'));
alter table prices add column tiers jsonb;
alter table prices add column usage_limit bigint check (usage_limit > 0);
alter table prices add column usage_overage boolean not null default false;

-- The meters (their event names): the app reports usage under them.
create table meters (
    id text primary key,
    event_name text not null,
    active boolean not null,
    updated_at timestamptz not null default now()
);

-- A subscription's metered item, if it has one.
alter table subscriptions add column metered_price_id text;
-- Until when the subscription gives access if nothing changes (the entitlement rule, worked
-- out in Rust whenever the row changes): the metered action checks it in its one statement.
alter table subscriptions add column access_until timestamptz;

-- Each metered action, written in the transaction of the action itself. `reported_in` is
-- the meter event that carried it to Stripe (set when the reporter claims it).
create table usage_events (
    id bigserial primary key,
    user_id uuid not null references users (id),
    subscription_id text not null,
    period_start timestamptz not null,
    quantity integer not null check (quantity > 0),
    source text not null check (source in ('web', 'api')),
    occurred_at timestamptz not null default now(),
    reported_in text
);
create index usage_events_unreported on usage_events (subscription_id, period_start, id)
    where reported_in is null;
create index usage_events_by_period on usage_events (subscription_id, period_start, occurred_at);

-- A period's usage so far: the limit check is one upsert on this row.
create table usage_counters (
    subscription_id text not null,
    period_start timestamptz not null,
    used bigint not null default 0 check (used >= 0),
    -- The 80% warning went out (once per period).
    warned_at timestamptz,
    primary key (subscription_id, period_start)
);

-- One meter event: the usage it carries and the identifier Stripe de-duplicates on, made
-- from the events it covers. Sent until Stripe has it; never made twice for one event.
create table usage_reports (
    identifier text primary key,
    subscription_id text not null,
    stripe_customer_id text not null,
    event_name text not null,
    quantity bigint not null check (quantity > 0),
    "timestamp" bigint not null,
    created_at timestamptz not null default now(),
    sent_at timestamptz,
    -- Stripe refused it for good (older than its 35 days): kept, logged, and counted by
    -- reconcile-usage as a difference.
    refused text
);
create index usage_reports_unsent on usage_reports (created_at) where sent_at is null and refused is null;

-- Personal API tokens: only a hash is kept; the token is shown once, when made.
create table api_tokens (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references users (id),
    name text not null,
    token_hash bytea not null unique,
    hint text not null,
    created_at timestamptz not null default now(),
    last_used_at timestamptz,
    revoked_at timestamptz
);
create index api_tokens_by_user on api_tokens (user_id, created_at desc);

-- An invoice's lines as Stripe lists them (description, quantity, amount): billing settings
-- show what each invoice charged for, usage included.
alter table invoices add column lines jsonb;
