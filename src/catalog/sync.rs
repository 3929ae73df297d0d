//! Keeping `products` and `prices` equal to Stripe's catalog: a full sync at start-up (and on
//! demand), then one object at a time from `product.*` / `price.*` webhooks.

use crate::stripe::Stripe;
use futures::TryStreamExt;
use sqlx::{PgConnection, PgPool};
use stripe_product::{
    price::{ListPrice, RetrievePrice},
    product::{ListProduct, RetrieveProduct},
    Price, Product,
};
use stripe_types::Expandable;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("stripe: {0}")]
    Stripe(#[from] stripe::StripeError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("payload: {0}")]
    Decode(String),
}

/// How a snapshot taken at `incoming` relates to a row that reflects `stored`. Stripe's
/// timestamps have one-second resolution, so two changes in one second look equal: a tie
/// cannot be settled from the payload, only by asking Stripe for the object as it is now.
#[derive(Debug, PartialEq, Eq)]
pub enum Freshness {
    Newer,
    Tie,
    Older,
}

pub fn freshness(stored: Option<i64>, incoming: i64) -> Freshness {
    match stored {
        None => Freshness::Newer,
        Some(s) if incoming > s => Freshness::Newer,
        Some(s) if incoming == s => Freshness::Tie,
        Some(_) => Freshness::Older,
    }
}

/// The Stripe time a row reflects, locked until the transaction ends so concurrent events
/// for the same object apply one after the other.
pub(crate) async fn stored_as_of(
    conn: &mut PgConnection,
    table: &str,
    id: &str,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(&format!(
        "select stripe_as_of from {table} where id = $1 for update"
    ))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Applies a product snapshot from an event created at `as_of`. A newer snapshot is stored
/// as is; on a tie or an older-looking event the product is fetched from Stripe and what
/// Stripe says now is stored.
pub async fn apply_product_event(
    conn: &mut PgConnection,
    stripe: &Stripe,
    product: &Product,
    as_of: i64,
) -> Result<(), SyncError> {
    match freshness(
        stored_as_of(conn, "products", product.id.as_str()).await?,
        as_of,
    ) {
        Freshness::Newer => write_product(conn, product, as_of).await?,
        Freshness::Tie | Freshness::Older => {
            match stripe.get(&RetrieveProduct::new(product.id.clone())).await {
                Ok(current) => write_product(conn, &current, as_of).await?,
                Err(stripe::StripeError::Stripe(_, 404)) => {
                    deactivate(conn, "products", product.id.as_str(), as_of).await?
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

pub async fn apply_price_event(
    conn: &mut PgConnection,
    stripe: &Stripe,
    price: &Price,
    as_of: i64,
) -> Result<(), SyncError> {
    ensure_product(conn, stripe, price).await?;
    match freshness(
        stored_as_of(conn, "prices", price.id.as_str()).await?,
        as_of,
    ) {
        Freshness::Newer => write_price(conn, price, as_of).await?,
        Freshness::Tie | Freshness::Older => {
            match stripe.get(&RetrievePrice::new(price.id.clone())).await {
                Ok(current) => write_price(conn, &current, as_of).await?,
                Err(stripe::StripeError::Stripe(_, 404)) => {
                    deactivate(conn, "prices", price.id.as_str(), as_of).await?
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// `product.deleted` / `price.deleted`: the row stays (orders and subscriptions refer to it)
/// but is no longer on sale. The deletion counts as Stripe's word at `as_of`, so an older
/// snapshot delivered after it (a late `product.created`) is refetched, not applied.
pub async fn deactivate(
    conn: &mut PgConnection,
    table: &str,
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

/// A price event can arrive before its product's: fetch the product first so the foreign
/// key holds and nothing is dropped.
async fn ensure_product(
    conn: &mut PgConnection,
    stripe: &Stripe,
    price: &Price,
) -> Result<(), SyncError> {
    let product_id = product_id(price);
    let known: Option<i64> = sqlx::query_scalar("select 1::bigint from products where id = $1")
        .bind(&product_id)
        .fetch_optional(&mut *conn)
        .await?;
    if known.is_none() {
        let product = stripe.get(&RetrieveProduct::new(product_id)).await?;
        write_product(conn, &product, 0).await?;
    }
    Ok(())
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
            stored_as_of(&mut tx, "products", p.id.as_str()).await?,
            as_of,
        ) != Freshness::Older
        {
            write_product(&mut tx, p, as_of).await?;
        }
    }
    for p in &prices {
        if freshness(stored_as_of(&mut tx, "prices", p.id.as_str()).await?, as_of)
            != Freshness::Older
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

#[cfg(test)]
mod tests {
    use super::{freshness, Freshness};

    #[test]
    fn only_strictly_newer_snapshots_apply_directly() {
        assert_eq!(freshness(None, 100), Freshness::Newer);
        assert_eq!(freshness(Some(99), 100), Freshness::Newer);
        // Same second: could be before or after what we have; ask Stripe.
        assert_eq!(freshness(Some(100), 100), Freshness::Tie);
        assert_eq!(freshness(Some(101), 100), Freshness::Older);
    }
}
