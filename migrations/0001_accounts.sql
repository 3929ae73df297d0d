-- Users. Emails are stored trimmed and lower-cased by the application (one account per
-- address whatever its case); the check keeps any other writer honest.
create table users (
    id uuid primary key default gen_random_uuid(),
    email text not null unique check (email = lower(email) and length(email) <= 254),
    password_hash text not null,
    created_at timestamptz not null default now()
);

-- Failed logins, counted per email and client IP to slow down password guessing.
create table login_failures (
    id bigint generated always as identity primary key,
    email text not null,
    ip text not null,
    attempted_at timestamptz not null default now()
);
create index login_failures_lookup on login_failures (email, ip, attempted_at);
