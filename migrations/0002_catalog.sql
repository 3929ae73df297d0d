-- The catalog, mirrored from Stripe (ids are Stripe's). Amounts are integer minor units.
create table products (
    id text primary key,
    name text not null,
    description text,
    active boolean not null default true,
    -- Stripe's marketing_features, as a JSON array of strings.
    features jsonb not null default '[]'::jsonb check (jsonb_typeof(features) = 'array'),
    highlighted boolean not null default false,
    sort_order integer not null default 0,
    updated_at timestamptz not null default now()
);

create table prices (
    id text primary key,
    product_id text not null references products (id) on delete cascade,
    active boolean not null default true,
    currency text not null check (currency ~ '^[a-z]{3}$'),
    unit_amount bigint check (unit_amount >= 0),
    kind text not null check (kind in ('one_time', 'recurring')),
    recurring_interval text check (recurring_interval in ('day', 'week', 'month', 'year')),
    recurring_interval_count integer check (recurring_interval_count > 0),
    lookup_key text unique,
    updated_at timestamptz not null default now(),
    check ((kind = 'recurring') = (recurring_interval is not null))
);
create index prices_by_product on prices (product_id) where active;
