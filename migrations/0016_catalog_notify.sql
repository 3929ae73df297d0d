-- The pricing page is kept rendered for visitors who are not logged in (`catalog::cache`).
-- Every instance forgets its copy when the catalog changes, whoever changed it: a webhook,
-- `sync-catalog`, another instance. Per row, so that a write that changes nothing (an
-- upsert whose freshness condition refuses it) tells no one; Postgres folds the repeats of
-- one transaction into one notification.
create function notify_catalog_changed() returns trigger language plpgsql as $$
begin
    perform pg_notify('catalog_changed', '');
    return null;
end
$$;

create trigger products_notify_catalog_changed
    after insert or update or delete on products
    for each row execute function notify_catalog_changed();

create trigger prices_notify_catalog_changed
    after insert or update or delete on prices
    for each row execute function notify_catalog_changed();

create trigger products_truncated_notify_catalog_changed
    after truncate on products
    for each statement execute function notify_catalog_changed();

create trigger prices_truncated_notify_catalog_changed
    after truncate on prices
    for each statement execute function notify_catalog_changed();
