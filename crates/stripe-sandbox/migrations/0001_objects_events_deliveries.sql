-- The sandbox keeps its state in its own schema, so it survives restarts the way Stripe
-- does. Every row belongs to an "account": the secret key's fingerprint, which keeps each
-- key's data apart like separate Stripe accounts.
--
-- `if not exists` throughout: databases made before the sandbox had migrations of its own
-- already have these tables (the application created them), and keep them as they are.

-- Every API object as Stripe would return it. `seq` orders lists (newest first) and backs
-- `starting_after` / `ending_before` cursors.
create table if not exists stripe_sandbox.objects (
    account text not null,
    id text not null,
    object text not null,
    created bigint not null,
    seq bigint generated always as identity,
    data jsonb not null,
    primary key (account, id)
);
create index if not exists objects_list on stripe_sandbox.objects (account, object, seq desc);

-- Idempotency-Key replay: the first response is kept and replayed for 24 hours; the same key
-- with different parameters is an error. `status` is null while the first request runs.
create table if not exists stripe_sandbox.idempotency_keys (
    account text not null,
    key text not null,
    fingerprint text not null,
    status integer,
    body jsonb,
    created_at timestamptz not null default now(),
    primary key (account, key)
);

create table if not exists stripe_sandbox.events (
    account text not null,
    id text not null,
    type text not null,
    created bigint not null,
    seq bigint generated always as identity,
    data jsonb not null,
    primary key (account, id)
);
create index if not exists events_list on stripe_sandbox.events (account, seq desc);

-- One row per (event, endpoint); the worker claims due rows with FOR UPDATE SKIP LOCKED, so
-- several instances deliver each event once between them.
create table if not exists stripe_sandbox.deliveries (
    id bigint generated always as identity primary key,
    account text not null,
    event_id text not null,
    endpoint_id text not null,
    status text not null default 'pending' check (status in ('pending', 'succeeded', 'failed')),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    created_at timestamptz not null default now(),
    foreign key (account, event_id) references stripe_sandbox.events (account, id) on delete cascade
);
create index if not exists deliveries_due on stripe_sandbox.deliveries (next_attempt_at) where status = 'pending';
create index if not exists deliveries_by_event on stripe_sandbox.deliveries (account, event_id);

create table if not exists stripe_sandbox.delivery_attempts (
    id bigint generated always as identity primary key,
    delivery_id bigint not null references stripe_sandbox.deliveries (id) on delete cascade,
    attempted_at timestamptz not null default now(),
    response_status integer,
    error text
);
create index if not exists delivery_attempts_by_delivery on stripe_sandbox.delivery_attempts (delivery_id);

-- Open Checkout Sessions by their `expires_at`: a worker sweeps this every few seconds, so
-- the sweep reads only open sessions, never the whole object table.
create index if not exists checkout_sessions_open_by_expiry on stripe_sandbox.objects (((data ->> 'expires_at')::bigint))
    where object = 'checkout.session' and data ->> 'status' = 'open';
