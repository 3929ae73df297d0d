-- Meter events: what a meter aggregates into usage. One row per event; the identifier is
-- unique per account, as Stripe de-duplicates on it.
create table if not exists stripe_sandbox.meter_events (
    account text not null,
    identifier text not null,
    event_name text not null,
    customer text not null,
    value bigint not null,
    "timestamp" bigint not null,
    created bigint not null,
    primary key (account, identifier)
);
create index if not exists meter_events_by_customer
    on stripe_sandbox.meter_events (account, event_name, customer, "timestamp");
