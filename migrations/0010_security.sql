-- Login attempts, counted before the password is checked, per key (an email with a network,
-- an email, a network) in a window that restarts once it has passed. One upsert records an
-- attempt and returns the count, so concurrent guesses cannot all slip under the limit.
create table login_limits (
    key text primary key,
    window_start timestamptz not null,
    attempts integer not null check (attempts >= 0)
);
-- The attempts counted after a failure are here now; the old table is no longer read.
drop table login_failures;

-- An address is confirmed once its owner opens the link we mailed to it.
alter table users add column email_verified_at timestamptz;
-- One free trial per user, ever: set when Stripe first reports a trial of theirs.
alter table users add column trial_used_at timestamptz;

-- Single-use links mailed to a user (email confirmation). Only a hash of the token is kept,
-- so the table cannot be used to log in as anyone.
create table email_tokens (
    token_hash bytea primary key,
    user_id uuid not null references users (id) on delete cascade,
    purpose text not null check (purpose in ('verify_email')),
    expires_at timestamptz not null,
    used_at timestamptz,
    created_at timestamptz not null default now()
);
create index email_tokens_by_user on email_tokens (user_id, purpose);

-- The Checkout Sessions each user opened: a new one expires the older open ones, so two
-- tabs can never both complete a purchase.
create table checkout_sessions (
    id text primary key,
    user_id uuid not null references users (id) on delete cascade,
    open boolean not null default true,
    created_at timestamptz not null default now()
);
create index checkout_sessions_open_by_user on checkout_sessions (user_id) where open;

-- Only what the catalog marks for sale here (product metadata `pricing_page=true`) is shown
-- on the pricing page and can be bought; anything else in the Stripe account cannot.
alter table products add column offered boolean not null default false;
