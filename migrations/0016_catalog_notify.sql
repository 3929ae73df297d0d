-- The pricing page is kept rendered for visitors who are not logged in (`catalog::cache`).
-- Every instance forgets its copy when the catalog changes, whoever changed it: a webhook,
-- `sync-catalog`, another instance. Per statement: one notification however many rows, and
-- Postgres folds repeats within a transaction into one.
create function notify_catalog_changed() returns trigger language plpgsql as $$
begin
    perform pg_notify('catalog_changed', '');
    return null;
end
$$;

create trigger products_notify_catalog_changed
    after insert or update or delete or truncate on products
    for each statement execute function notify_catalog_changed();

create trigger prices_notify_catalog_changed
    after insert or update or delete or truncate on prices
    for each statement execute function notify_catalog_changed();
