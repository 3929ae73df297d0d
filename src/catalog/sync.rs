//! Keeping `products` and `prices` equal to Stripe's catalog: a full sync at start-up (and on
//! demand), then one object at a time from `product.*` / `price.*` webhooks.

use crate::{
    stripe::{
        freshness::{
            apply, freshness, newer_only, stored_as_of, wrote, Current, Fetched, Freshness,
            Snapshot, SyncError,
        },
        Stripe,
    },
    webhooks::event::id_of_expandable,
};
use sqlx::{PgConnection, PgPool};
use stripe_billing::{billing_meter::ListBillingMeter, BillingMeter};
use stripe_product::{price::ListPrice, product::ListProduct, Price, Product};

/// `product.created` / `product.updated`, under the freshness rule.
pub async fn apply_product(
    conn: &mut PgConnection,
    product: &Product,
    as_of: i64,
    current: Option<&Fetched<Product>>,
) -> Result<(), SyncError> {
    apply(conn, product, as_of, current).await
}

/// `price.created` / `price.updated`, under the freshness rule. A price event can arrive
/// before its product's: the product is read from Stripe first, so the foreign key holds and
/// nothing is dropped.
pub async fn apply_price(
    conn: &mut PgConnection,
    price: &Price,
    as_of: i64,
    current: Option<&Fetched<Price>>,
    product_read: Option<&Fetched<Product>>,
) -> Result<(), SyncError> {
    let product = id_of_expandable(&price.product);
    if !product_known(&mut *conn, &product).await? {
        match product_read {
            Some(Fetched {
                current: Current::Found(p),
                read_at,
                ..
            }) => {
                p.write(conn, *read_at, false).await?;
            }
            _ => {
                return Err(SyncError::NeedsCurrent {
                    table: Product::TABLE,
                    id: product,
                })
            }
        }
    }
    if current.is_none() && needs_tiers(&mut *conn, price).await? {
        return Err(SyncError::NeedsCurrent {
            table: Price::TABLE,
            id: price.id.as_str().to_owned(),
        });
    }
    apply(conn, price, as_of, current).await
}

/// `billing.meter.*`: a meter's event name and whether it is active. Meters only change by
/// these events and the full sync, and the latest word is the meter as it is: no ordering
/// question worth a refetch (an event name never changes).
pub async fn write_meter(conn: &mut PgConnection, meter: &BillingMeter) -> sqlx::Result<()> {
    sqlx::query(
        "insert into meters (id, event_name, active) values ($1, $2, $3)
         on conflict (id) do update set event_name = excluded.event_name, active = excluded.active,
             updated_at = now()",
    )
    .bind(meter.id.as_str())
    .bind(&meter.event_name)
    .bind(meter.status.as_str() == "active")
    .execute(conn)
    .await?;
    Ok(())
}

/// A tiered price's event comes without its tiers: a new one is read again, with them.
pub async fn needs_tiers(conn: &mut PgConnection, price: &Price) -> sqlx::Result<bool> {
    if price.tiers.is_some() || price.tiers_mode.is_none() {
        return Ok(false);
    }
    let stored: Option<bool> =
        sqlx::query_scalar("select tiers is not null from prices where id = $1")
            .bind(price.id.as_str())
            .fetch_optional(conn)
            .await?;
    Ok(stored != Some(true))
}

/// `product.deleted`: see [`deactivate`].
pub async fn deactivate_product(
    conn: &mut PgConnection,
    id: &str,
    as_of: i64,
) -> Result<(), SyncError> {
    Ok(deactivate(conn, Product::TABLE, id, as_of).await?)
}

/// `price.deleted`: see [`deactivate`].
pub async fn deactivate_price(
    conn: &mut PgConnection,
    id: &str,
    as_of: i64,
) -> Result<(), SyncError> {
    Ok(deactivate(conn, Price::TABLE, id, as_of).await?)
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

impl Snapshot for Product {
    const TABLE: &'static str = "products";
    type Written = ();

    fn row_id(&self) -> String {
        self.id.as_str().to_owned()
    }

    async fn write(
        &self,
        conn: &mut PgConnection,
        as_of: i64,
        only_if_newer: bool,
    ) -> sqlx::Result<Option<()>> {
        let features: Vec<String> = self
            .marketing_features
            .iter()
            .filter_map(|f| f.name.clone())
            .collect();
        let meta = |key: &str| self.metadata.get(key).map(String::as_str);
        let sort_order: i32 = meta("sort_order").and_then(|v| v.parse().ok()).unwrap_or(0);
        let written = sqlx::query(&format!(
            "insert into products (id, name, description, active, features, highlighted, sort_order, offered,
                                   license, max_activations, stripe_as_of, updated_at)
             values ($1, $2, $3, $4, $5, $6, $7, $9, $10, $11, $8, now())
             on conflict (id) do update set name = excluded.name, description = excluded.description,
                 active = excluded.active, features = excluded.features, highlighted = excluded.highlighted,
                 sort_order = excluded.sort_order, offered = excluded.offered,
                 license = excluded.license, max_activations = excluded.max_activations,
                 stripe_as_of = greatest(products.stripe_as_of, excluded.stripe_as_of), updated_at = now(){}",
            newer_only(Self::TABLE, only_if_newer)
        ))
        .bind(self.id.as_str())
        .bind(&self.name)
        .bind(&self.description)
        .bind(self.active)
        .bind(sqlx::types::Json(features))
        .bind(meta("highlight") == Some("true"))
        .bind(sort_order)
        .bind(as_of)
        // What the app sells is marked in the catalog; anything else in the account is not
        // for sale here, however it is priced.
        .bind(meta("pricing_page") == Some("true"))
        // Sold with a license key (`license=perpetual`), activated on at most this many
        // machines.
        .bind(meta("license").filter(|l| !l.is_empty()))
        .bind(meta("max_activations").and_then(|v| v.parse::<i32>().ok()).filter(|n| *n >= 0))
        .execute(conn)
        .await?;
        Ok(wrote(&written))
    }

    async fn gone(conn: &mut PgConnection, id: &str, as_of: i64) -> sqlx::Result<()> {
        deactivate(conn, Self::TABLE, id, as_of).await
    }
}

impl Snapshot for Price {
    const TABLE: &'static str = "prices";
    type Written = ();

    fn row_id(&self) -> String {
        self.id.as_str().to_owned()
    }

    async fn write(
        &self,
        conn: &mut PgConnection,
        as_of: i64,
        only_if_newer: bool,
    ) -> sqlx::Result<Option<()>> {
        let (interval, count) = match &self.recurring {
            Some(r) => (
                Some(r.interval.as_str().to_owned()),
                Some(r.interval_count as i32),
            ),
            None => (None, None),
        };
        let usage_type = self
            .recurring
            .as_ref()
            .map_or("licensed", |r| r.usage_type.as_str());
        let meter = self.recurring.as_ref().and_then(|r| r.meter.clone());
        // `tiers` only comes when asked for (`expand[]=tiers`); a price's tiers never change,
        // so a snapshot without them keeps the ones stored.
        let tiers = self.tiers.as_ref().map(|tiers| {
            sqlx::types::Json(
                tiers
                    .iter()
                    .map(|t| {
                        serde_json::json!({ "up_to": t.up_to, "unit_amount": t.unit_amount,
                                            "flat_amount": t.flat_amount })
                    })
                    .collect::<Vec<_>>(),
            )
        });
        let meta = |key: &str| self.metadata.get(key).map(String::as_str);
        let limit = meta("report_limit")
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|n| *n > 0);
        let written = sqlx::query(&format!(
            "insert into prices (id, product_id, active, currency, unit_amount, kind, recurring_interval,
                                 recurring_interval_count, lookup_key, stripe_as_of, updated_at,
                                 usage_type, meter_id, tiers_mode, tiers, usage_limit, usage_overage)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now(), $11, $12, $13, $14, $15, $16)
             on conflict (id) do update set product_id = excluded.product_id, active = excluded.active,
                 currency = excluded.currency, unit_amount = excluded.unit_amount, kind = excluded.kind,
                 recurring_interval = excluded.recurring_interval,
                 recurring_interval_count = excluded.recurring_interval_count, lookup_key = excluded.lookup_key,
                 usage_type = excluded.usage_type, meter_id = excluded.meter_id,
                 tiers_mode = excluded.tiers_mode, tiers = coalesce(excluded.tiers, prices.tiers),
                 usage_limit = excluded.usage_limit, usage_overage = excluded.usage_overage,
                 stripe_as_of = greatest(prices.stripe_as_of, excluded.stripe_as_of), updated_at = now(){}",
            newer_only(Self::TABLE, only_if_newer)
        ))
        .bind(self.id.as_str())
        .bind(id_of_expandable(&self.product))
        .bind(self.active)
        .bind(self.currency.to_string())
        .bind(self.unit_amount)
        .bind(self.type_.as_str())
        .bind(interval)
        .bind(count)
        .bind(&self.lookup_key)
        .bind(as_of)
        .bind(usage_type)
        .bind(meter)
        .bind(self.tiers_mode.as_ref().map(|m| m.as_str()))
        .bind(tiers)
        .bind(limit)
        .bind(meta("report_overage") == Some("true"))
        .execute(conn)
        .await?;
        Ok(wrote(&written))
    }

    async fn gone(conn: &mut PgConnection, id: &str, as_of: i64) -> sqlx::Result<()> {
        deactivate(conn, Self::TABLE, id, as_of).await
    }
}

/// Reads the whole catalog from Stripe and makes the tables match it: objects Stripe no
/// longer has are taken off sale. Rows that a webhook made newer during the sync are kept.
pub async fn sync_catalog(stripe: &Stripe, db: &PgPool) -> Result<(usize, usize), SyncError> {
    let as_of = time::OffsetDateTime::now_utc().unix_timestamp();
    let products: Vec<Product> = stripe.all(ListProduct::new().limit(100).paginate()).await?;
    let prices: Vec<Price> = stripe
        .all(
            ListPrice::new()
                .limit(100)
                .expand(vec!["data.tiers".to_owned()])
                .paginate(),
        )
        .await?;
    let meters: Vec<BillingMeter> = stripe
        .all(ListBillingMeter::new().limit(100).paginate())
        .await?;
    let mut tx = db.begin().await?;
    for meter in &meters {
        write_meter(&mut tx, meter).await?;
    }
    write_unless_newer(&mut tx, &products, as_of).await?;
    write_unless_newer(&mut tx, &prices, as_of).await?;
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

/// Writes what a full read found, except over rows a webhook made newer meanwhile.
async fn write_unless_newer<T: Snapshot>(
    conn: &mut PgConnection,
    rows: &[T],
    as_of: i64,
) -> sqlx::Result<()> {
    for row in rows {
        let stored = stored_as_of(&mut *conn, T::TABLE, &row.row_id(), true).await?;
        if freshness(stored, as_of) != Freshness::Older {
            row.write(conn, as_of, false).await?;
        }
    }
    Ok(())
}
