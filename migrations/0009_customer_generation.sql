-- How many of the user's Stripe customers have been deleted. The idempotency keys that
-- create a customer (and its test clock) carry it: after a deletion, the next key is new,
-- so Stripe makes a new customer instead of replaying the deleted one for 24 hours.
alter table users add column stripe_customer_generation integer not null default 0;
