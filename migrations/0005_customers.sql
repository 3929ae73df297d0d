-- One Stripe customer per user. Both sides are unique: a user never gets two customers
-- (two tabs clicking Subscribe at once), and a customer never belongs to two users.
create table customers (
    user_id uuid primary key references users (id) on delete cascade,
    stripe_customer_id text not null unique,
    created_at timestamptz not null default now()
);
