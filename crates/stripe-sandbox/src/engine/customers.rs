//! Customers as Stripe makes them, and the time they live in.

use crate::{
    http::{Account, StripeError},
    ids::{new_id, now},
    kind::Kind,
    store,
};
use serde_json::{json, Value};
use sqlx::PgConnection;

/// A new, empty customer as Stripe returns it.
pub fn customer_json() -> Value {
    let id = new_id("cus");
    json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": now(),
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "discount": null,
        "email": null,
        "invoice_prefix": id[4..12].to_ascii_uppercase(),
        "invoice_settings": { "custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null },
        "livemode": false,
        "metadata": {},
        "name": null,
        "next_invoice_sequence": 1,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null,
    })
}

/// The customer's "now": its test clock's frozen time, or the real time.
pub async fn customer_now(
    conn: &mut PgConnection,
    account: &Account,
    customer: &Value,
) -> Result<i64, StripeError> {
    match customer["test_clock"].as_str() {
        Some(clock) => Ok(
            store::get(conn, account, Kind::TestClock, clock).await?["frozen_time"]
                .as_i64()
                .unwrap_or_else(now),
        ),
        None => Ok(now()),
    }
}

/// The customer a subscription or invoice belongs to.
pub async fn customer_of(
    conn: &mut PgConnection,
    account: &Account,
    owned: &Value,
) -> Result<Value, StripeError> {
    store::get(
        conn,
        account,
        Kind::Customer,
        owned["customer"].as_str().unwrap_or_default(),
    )
    .await
}
