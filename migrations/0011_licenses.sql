-- One-time purchases, license keys, refunds and disputes, and the licenses' audit log.

-- The counters behind the login limits also limit the license API: one table of keyed
-- windows, whatever the key is for.
alter table login_limits rename to rate_limits;

-- A product sold with a license (product metadata `license`, e.g. `perpetual`), and how many
-- machines one license may be activated on (`max_activations`).
alter table products add column license text;
alter table products add column max_activations integer check (max_activations >= 0);

-- Stripe's charges and disputes as their latest snapshots (the freshness rule, like every
-- table kept from Stripe). What an order's refunds and disputes amount to is read from
-- here, so it does not matter which event arrives first.
create table charges (
    id text primary key,
    payment_intent_id text,
    amount bigint not null,
    amount_refunded bigint not null,
    currency text not null,
    stripe_as_of bigint not null,
    updated_at timestamptz not null default now()
);
create index charges_by_payment_intent on charges (payment_intent_id);

create table disputes (
    id text primary key,
    charge_id text not null,
    payment_intent_id text,
    status text not null,
    amount bigint not null,
    stripe_as_of bigint not null,
    updated_at timestamptz not null default now()
);
create index disputes_by_payment_intent on disputes (payment_intent_id);

-- A completed one-time Checkout: created once per session by its webhook.
create table orders (
    id uuid primary key default gen_random_uuid(),
    user_id uuid not null references users (id),
    checkout_session_id text not null unique,
    payment_intent_id text unique,
    product_id text not null,
    price_id text,
    invoice_id text,
    amount_total bigint not null,
    currency text not null,
    amount_refunded bigint not null default 0,
    status text not null default 'paid' check (status in ('paid', 'partially_refunded', 'refunded')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index orders_by_user on orders (user_id, created_at desc);

-- A license key: from an order (perpetual) or from a subscription (for as long as it pays).
-- `expired` is not a status: a subscription license whose `expires_at` has passed reads as
-- expired until the renewal moves it.
create table licenses (
    id uuid primary key default gen_random_uuid(),
    key text not null unique,
    user_id uuid not null references users (id),
    product_id text not null,
    order_id uuid unique references orders (id),
    subscription_id text unique,
    status text not null check (status in ('active', 'suspended', 'revoked', 'cancelled')),
    max_activations integer not null check (max_activations >= 0),
    expires_at timestamptz,
    issued_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    check ((order_id is null) <> (subscription_id is null))
);
create index licenses_by_user on licenses (user_id, issued_at desc);

create table license_activations (
    license_id uuid not null references licenses (id),
    machine_id text not null,
    activated_at timestamptz not null default now(),
    primary key (license_id, machine_id)
);

-- Every change to a license, written in the transaction that makes it. Append-only: the
-- triggers below refuse to change or remove a row, whoever asks.
create table license_events (
    id bigserial primary key,
    license_id uuid not null references licenses (id),
    action text not null check (action in ('issued', 'renewed', 'suspended', 'restored', 'revoked',
                                           'cancelled', 'activated', 'deactivated', 'partially_refunded')),
    -- A webhook (its event id), an admin or the customer (a user id), or the app itself.
    actor_kind text not null check (actor_kind in ('webhook', 'admin', 'customer', 'system')),
    actor text not null,
    reason text,
    amount bigint,
    created_at timestamptz not null default now()
);
create index license_events_by_license on license_events (license_id, id);

create function license_events_are_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'license_events is append-only: % refused', tg_op;
end
$$;
create trigger license_events_no_change before update or delete on license_events
    for each row execute function license_events_are_append_only();
create trigger license_events_no_truncate before truncate on license_events
    for each statement execute function license_events_are_append_only();

-- Refunds an admin asked Stripe for. The order itself changes only when Stripe's webhook
-- says the refund happened.
create table refund_requests (
    id uuid primary key default gen_random_uuid(),
    order_id uuid not null references orders (id),
    amount bigint not null check (amount > 0),
    reason text not null,
    requested_by uuid not null references users (id),
    -- Unique: a repeated request (a double click) is one refund at Stripe, and one row here.
    stripe_refund_id text not null unique,
    created_at timestamptz not null default now()
);
create index refund_requests_by_order on refund_requests (order_id, created_at);
