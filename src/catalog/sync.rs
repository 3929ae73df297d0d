//! Keeping `products` and `prices` equal to Stripe's catalog: a full sync at start-up (and on
//! demand), then one object at a time from `product.*` / `price.*` webhooks.

use crate::stripe::{
    freshness::{
        choose, freshness, read_ahead, stored_as_of, Current, Freshness, SyncError, Write,
    },
    Stripe,
};
use futures::TryStreamExt;
use sqlx::{PgConnection, PgPool};
use stripe_product::{
    price::{ListPrice, RetrievePrice},
    product::{ListProduct, RetrieveProduct},
    Price, Product,
};
use stripe_types::Expandable;

/// Before the transaction: Stripe's current product, when the event's may not be newest.
pub async fn read_product(
    db: &PgPool,
    stripe: &Stripe,
    product: &Product,
    as_of: i64,
    again: bool,
) -> Result<Option<Current<Product>>, SyncError> {
    let request = RetrieveProduct::new(product.id.clone());
    read_ahead(
        db,
        "products",
        product.id.as_str(),
        as_of,
        again,
        stripe.get(&request),
    )
    .await
}

/// Applies a product snapshot from an event created at `as_of`, under the freshness rule.
pub async fn apply_product(
    conn: &mut PgConnection,
    product: &Product,
    as_of: i64,
    current: Option<&Current<Product>>,
) -> Result<(), SyncError> {
    let id = product.id.as_str();
    match choose(conn, "products", id, as_of, product, current).await? {
        Write::Snapshot(p) | Write::Current(p) => write_product(conn, p, as_of).await?,
        Write::Gone => deactivate(conn, "products", id, as_of).await?,
    }
    Ok(())
}

/// Before the transaction: Stripe's current price when the event's may not be newest, and
/// its product when the app does not know it yet (a price event can arrive before its
/// product's; the foreign key needs the product).
pub async fn read_price(
    db: &PgPool,
    stripe: &Stripe,
    price: &Price,
    as_of: i64,
    again: bool,
) -> Result<(Option<Current<Price>>, Option<Box<Product>>), SyncError> {
    let request = RetrievePrice::new(price.id.clone());
    let current = read_ahead(
        db,
        "prices",
        price.id.as_str(),
        as_of,
        again,
        stripe.get(&request),
    )
    .await?;
    let product = match product_known(db, &product_id(price)).await? {
        true => None,
        false => Some(Box::new(
            stripe.get(&RetrieveProduct::new(product_id(price))).await?,
        )),
    };
    Ok((current, product))
}

pub async fn apply_price(
    conn: &mut PgConnection,
    price: &Price,
    as_of: i64,
    current: Option<&Current<Price>>,
    product: Option<&Product>,
) -> Result<(), SyncError> {
    if !product_known(&mut *conn, &product_id(price)).await? {
        let Some(product) = product else {
            return Err(SyncError::Stale {
                table: "products",
                id: product_id(price),
            });
        };
        write_product(conn, product, 0).await?;
    }
    let id = price.id.as_str();
    match choose(conn, "prices", id, as_of, price, current).await? {
        Write::Snapshot(p) | Write::Current(p) => write_price(conn, p, as_of).await?,
        Write::Gone => deactivate(conn, "prices", id, as_of).await?,
    }
    Ok(())
}

/// `product.deleted`: see [`deactivate`].
pub async fn deactivate_product(
    conn: &mut PgConnection,
    id: &str,
    as_of: i64,
) -> Result<(), SyncError> {
    Ok(deactivate(conn, "products", id, as_of).await?)
}

/// `price.deleted`: see [`deactivate`].
pub async fn deactivate_price(
    conn: &mut PgConnection,
    id: &str,
    as_of: i64,
) -> Result<(), SyncError> {
    Ok(deactivate(conn, "prices", id, as_of).await?)
}

/// The row stays (orders and subscriptions refer to it) but is no longer on sale. The
/// deletion counts as Stripe's word at `as_of`, so an older snapshot delivered after it (a
/// late `product.created`) is refetched, not applied.
async fn deactivate(
    conn: &mut PgConnection,
    table: &'static str,
    id: &str,
    as_of: i64,
) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "update {table} set active = false, stripe_as_of = greatest(stripe_as_of, $2), updated_at = now()
         where id = $1"
    ))
    .bind(id)
    .bind(as_of)
    .execute(conn)
    .await?;
    Ok(())
}

async fn product_known(db: impl sqlx::PgExecutor<'_>, id: &str) -> sqlx::Result<bool> {
    let known: Option<i64> = sqlx::query_scalar("select 1::bigint from products where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(known.is_some())
}

fn product_id(price: &Price) -> String {
    match &price.product {
        Expandable::Id(id) => id.as_str().to_owned(),
        Expandable::Object(p) => p.id.as_str().to_owned(),
    }
}

async fn write_product(conn: &mut PgConnection, p: &Product, as_of: i64) -> sqlx::Result<()> {
    let features: Vec<String> = p
        .marketing_features
        .iter()
        .filter_map(|f| f.name.clone())
        .collect();
    let highlighted = p.metadata.get("highlight").is_some_and(|v| v == "true");
    let sort_order: i32 = p
        .metadata
        .get("sort_order")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    sqlx::query(
        "insert into products (id, name, description, active, features, highlighted, sort_order, stripe_as_of, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, now())
         on conflict (id) do update set name = excluded.name, description = excluded.description,
             active = excluded.active, features = excluded.features, highlighted = excluded.highlighted,
             sort_order = excluded.sort_order, stripe_as_of = greatest(products.stripe_as_of, excluded.stripe_as_of),
             updated_at = now()",
    )
    .bind(p.id.as_str())
    .bind(&p.name)
    .bind(&p.description)
    .bind(p.active)
    .bind(sqlx::types::Json(features))
    .bind(highlighted)
    .bind(sort_order)
    .bind(as_of)
    .execute(conn)
    .await?;
    Ok(())
}

async fn write_price(conn: &mut PgConnection, p: &Price, as_of: i64) -> sqlx::Result<()> {
    let (interval, count) = match &p.recurring {
        Some(r) => (
            Some(r.interval.as_str().to_owned()),
            Some(r.interval_count as i32),
        ),
        None => (None, None),
    };
    sqlx::query(
        "insert into prices (id, product_id, active, currency, unit_amount, kind, recurring_interval,
                             recurring_interval_count, lookup_key, stripe_as_of, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
         on conflict (id) do update set product_id = excluded.product_id, active = excluded.active,
             currency = excluded.currency, unit_amount = excluded.unit_amount, kind = excluded.kind,
             recurring_interval = excluded.recurring_interval,
             recurring_interval_count = excluded.recurring_interval_count, lookup_key = excluded.lookup_key,
             stripe_as_of = greatest(prices.stripe_as_of, excluded.stripe_as_of), updated_at = now()",
    )
    .bind(p.id.as_str())
    .bind(product_id(p))
    .bind(p.active)
    .bind(p.currency.to_string())
    .bind(p.unit_amount)
    .bind(p.type_.as_str())
    .bind(interval)
    .bind(count)
    .bind(&p.lookup_key)
    .bind(as_of)
    .execute(conn)
    .await?;
    Ok(())
}

/// Reads the whole catalog from Stripe and makes the tables match it: objects Stripe no
/// longer has are taken off sale. Rows that a webhook made newer during the sync are kept.
pub async fn sync_catalog(stripe: &Stripe, db: &PgPool) -> Result<(usize, usize), SyncError> {
    let as_of = time::OffsetDateTime::now_utc().unix_timestamp();
    let products: Vec<Product> = ListProduct::new()
        .limit(100)
        .paginate()
        .stream(stripe.client())
        .try_collect()
        .await?;
    let prices: Vec<Price> = ListPrice::new()
        .limit(100)
        .paginate()
        .stream(stripe.client())
        .try_collect()
        .await?;
    let mut tx = db.begin().await?;
    for p in &products {
        if freshness(
            stored_as_of(&mut *tx, "products", p.id.as_str(), true).await?,
            as_of,
        ) != Freshness::Older
        {
            write_product(&mut tx, p, as_of).await?;
        }
    }
    for p in &prices {
        if freshness(
            stored_as_of(&mut *tx, "prices", p.id.as_str(), true).await?,
            as_of,
        ) != Freshness::Older
        {
            write_price(&mut tx, p, as_of).await?;
        }
    }
    let product_ids: Vec<&str> = products.iter().map(|p| p.id.as_str()).collect();
    let price_ids: Vec<&str> = prices.iter().map(|p| p.id.as_str()).collect();
    sqlx::query(
        "update prices set active = false where active and id <> all($1) and stripe_as_of <= $2",
    )
    .bind(&price_ids)
    .bind(as_of)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update products set active = false where active and id <> all($1) and stripe_as_of <= $2",
    )
    .bind(&product_ids)
    .bind(as_of)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((products.len(), prices.len()))
}
