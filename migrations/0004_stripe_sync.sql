-- Values the app generates once and keeps: in sandbox mode, its sandbox secret key and the
-- signing secret of its own webhook endpoint.
create table app_settings (
    name text primary key,
    value text not null,
    updated_at timestamptz not null default now()
);

-- The webhook ledger: one row per Stripe event id, written in the same transaction as the
-- state change it caused. `processed_at` is null while processing has not yet succeeded;
-- failed attempts are counted outside the rolled-back transaction.
create table stripe_events (
    id text primary key,
    type text not null,
    created timestamptz not null,
    livemode boolean not null,
    api_version text,
    received_at timestamptz not null default now(),
    processed_at timestamptz,
    attempts integer not null default 1,
    last_error text
);
create index stripe_events_unprocessed on stripe_events (received_at) where processed_at is null;

-- Freshness: the Stripe time (event.created, or the sync time) of the snapshot a catalog row
-- reflects. A snapshot only replaces a strictly older one; ties are settled by asking Stripe.
alter table products add column stripe_as_of bigint not null default 0;
alter table prices add column stripe_as_of bigint not null default 0;
