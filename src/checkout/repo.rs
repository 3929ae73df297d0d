//! SQL for Checkout: what may be bought, and whether the webhook has recorded it yet.

use sqlx::PgPool;

/// Whether `price` is a recurring price on sale (price and product active).
pub async fn recurring_price_on_sale(db: &PgPool, price: &str) -> sqlx::Result<bool> {
    let on_sale: Option<bool> = sqlx::query_scalar(
        "select pr.active and p.active from prices pr join products p on p.id = pr.product_id
         where pr.id = $1 and pr.kind = 'recurring'",
    )
    .bind(price)
    .fetch_optional(db)
    .await?;
    Ok(on_sale == Some(true))
}

/// `Some(product name)` once the webhook has stored the subscription (the name itself may
/// be unknown), `None` before.
pub async fn stored_subscription_product(
    db: &PgPool,
    subscription: &str,
) -> sqlx::Result<Option<Option<String>>> {
    sqlx::query_scalar(
        "select p.name from subscriptions s left join products p on p.id = s.product_id where s.id = $1",
    )
    .bind(subscription)
    .fetch_optional(db)
    .await
}
