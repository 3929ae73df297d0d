-- Open Checkout Sessions by their `expires_at`: the sandbox's worker sweeps this every few
-- seconds, so the sweep reads only open sessions, never the whole object table.
create index checkout_sessions_open_by_expiry on stripe_sandbox.objects (((data ->> 'expires_at')::bigint))
    where object = 'checkout.session' and data ->> 'status' = 'open';
