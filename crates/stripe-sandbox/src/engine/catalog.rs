//! Products and prices as the rest of billing uses them: names for invoice lines, prices
//! checked for what a subscription or a payment may buy, and lookup keys.

use crate::{
    http::{Account, RequestInfo, StripeError},
    kind::Kind,
    store,
};
use serde_json::{json, Value};
use sqlx::PgConnection;

/// The name of a price's product, for invoice lines and hosted pages.
pub async fn product_name(
    conn: &mut PgConnection,
    account: &Account,
    price: &Value,
) -> Result<String, StripeError> {
    let product = price["product"].as_str().unwrap_or_default();
    let name: Option<String> = sqlx::query_scalar(
        "select data ->> 'name' from stripe_sandbox.objects where account = $1 and id = $2",
    )
    .bind(&account.0)
    .bind(product)
    .fetch_optional(conn)
    .await?;
    Ok(name.unwrap_or_else(|| "Subscription".into()))
}

/// `(price id, quantity)` pairs from `<key>[i][price]` and `<key>[i][quantity]`, checked as
/// Stripe checks them: active prices of the wanted type (recurring for subscriptions,
/// one-time for payments), one currency and interval, quantities of at least one.
pub async fn load_prices(
    conn: &mut PgConnection,
    account: &Account,
    key: &str,
    items: &[(String, i64)],
    recurring: bool,
) -> Result<Vec<(Value, i64)>, StripeError> {
    let wanted = if recurring { "recurring" } else { "one_time" };
    let mut loaded = Vec::new();
    for (i, (price_id, quantity)) in items.iter().enumerate() {
        let price = store::get(conn, account, Kind::Price, price_id)
            .await
            .map_err(|e| e.in_param(&format!("{key}[{i}][price]")))?;
        if price["type"] != wanted || price["active"] != json!(true) {
            return Err(StripeError::invalid(
                &format!("{key}[{i}][price]"),
                format!(
                    "The price must be an active {} price.",
                    wanted.replace('_', "-")
                ),
            ));
        }
        if *quantity < 1 {
            return Err(StripeError::invalid(
                &format!("{key}[{i}][quantity]"),
                "Quantity must be at least 1.",
            ));
        }
        loaded.push((price, *quantity));
    }
    let Some((first, _)) = loaded.first() else {
        return Err(StripeError::missing(key));
    };
    if loaded.iter().any(|(p, _)| {
        p["currency"] != first["currency"]
            || p["recurring"]["interval"] != first["recurring"]["interval"]
    }) {
        return Err(StripeError::invalid(
            key,
            "All items must share one currency and billing interval.",
        ));
    }
    Ok(loaded)
}

/// A lookup key names one price per account. With `transfer` it moves from the price that
/// has it (which then emits `price.updated`); without, reuse is an error. A price that
/// already holds the key (`except`) keeps it.
pub async fn claim_lookup_key(
    conn: &mut PgConnection,
    account: &Account,
    req: &RequestInfo,
    key: &str,
    transfer: bool,
    except: Option<&str>,
) -> Result<(), StripeError> {
    let holder: Option<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = 'price' and data ->> 'lookup_key' = $2 for update",
    )
    .bind(&account.0)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(before) = holder.filter(|h| h["id"].as_str() != except) else {
        return Ok(());
    };
    if !transfer {
        return Err(StripeError::invalid(
            "lookup_key",
            format!(
                "A price (`{}`) already uses that lookup key.",
                before["id"].as_str().unwrap_or("")
            ),
        ));
    }
    let mut after = before.clone();
    after["lookup_key"] = Value::Null;
    store::record_change(conn, account, "price.updated", &before, &after, req).await
}
