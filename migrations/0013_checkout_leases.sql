-- "This user's checkout is being started", held between statements instead of by a
-- transaction kept open across calls to Stripe: a pooled connection held for the length of
-- a remote call caps checkouts at the pool's size, and a handler that then needed a second
-- connection could wait on itself. The lease expires by itself if its holder dies.
create table checkout_leases (
    user_id uuid primary key references users (id) on delete cascade,
    token uuid not null,
    expires_at timestamptz not null
);
