//! Billing Meters: a meter names an event (`event_name`) and how its values add up over a
//! period (`sum`, `count` or `last`); meter events carry a customer and a value; metered
//! prices (`recurring.meter`) bill what the meter aggregated over each period, through the
//! price's tiers or its unit amount.

use crate::{
    http::{Account, StripeError},
    ids::{new_id, now},
    kind::Kind,
    store,
};
use serde_json::{json, Value};
use sqlx::PgConnection;

/// Stripe takes meter events from the past 35 days up to 5 minutes ahead.
pub const OLDEST_EVENT: i64 = 35 * 86_400;
pub const NEWEST_EVENT: i64 = 5 * 60;

pub fn meter_json(
    display_name: &str,
    event_name: &str,
    formula: &str,
    customer_key: &str,
    value_key: &str,
    window: Option<&str>,
) -> Value {
    let now = now();
    json!({
        "id": new_id("mtr"), "object": "billing.meter", "created": now,
        "customer_mapping": { "event_payload_key": customer_key, "type": "by_id" },
        "default_aggregation": { "formula": formula }, "display_name": display_name,
        "event_name": event_name, "event_time_window": window, "livemode": false,
        "status": "active", "status_transitions": { "deactivated_at": null }, "updated": now,
        "value_settings": { "event_payload_key": value_key },
    })
}

/// The active meter for `event_name`, if any.
pub async fn active_meter(
    conn: &mut PgConnection,
    account: &Account,
    event_name: &str,
) -> Result<Option<Value>, StripeError> {
    Ok(sqlx::query_scalar(
        "select data from stripe_sandbox.objects
         where account = $1 and object = 'billing.meter' and data @> $2 order by seq limit 1",
    )
    .bind(&account.0)
    .bind(json!({ "event_name": event_name, "status": "active" }))
    .fetch_optional(conn)
    .await?)
}

/// A meter event as Stripe validates it: an active meter for its name, the customer and a
/// whole-number value in the payload (under the meter's keys), a timestamp in Stripe's
/// window, and an identifier not used before. Returns the event object.
pub async fn record_event(
    conn: &mut PgConnection,
    account: &Account,
    event_name: &str,
    payload: &serde_json::Map<String, Value>,
    identifier: Option<String>,
    timestamp: Option<i64>,
) -> Result<Value, StripeError> {
    let meter = active_meter(conn, account, event_name)
        .await?
        .ok_or_else(|| {
            StripeError::invalid(
                "event_name",
                format!("No active meter was found for event_name `{event_name}`."),
            )
        })?;
    let customer_key = meter["customer_mapping"]["event_payload_key"]
        .as_str()
        .unwrap_or("stripe_customer_id");
    let value_key = meter["value_settings"]["event_payload_key"]
        .as_str()
        .unwrap_or("value");
    let customer = payload
        .get(customer_key)
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| StripeError::missing(&format!("payload[{customer_key}]")))?;
    let value = match payload.get(value_key) {
        // `count` meters need no value.
        None if meter["default_aggregation"]["formula"] == "count" => 1,
        None => return Err(StripeError::missing(&format!("payload[{value_key}]"))),
        Some(v) => v
            .as_str()
            .and_then(|s| s.parse::<i64>().ok())
            .or_else(|| v.as_i64())
            .ok_or_else(|| {
                StripeError::invalid(
                    &format!("payload[{value_key}]"),
                    "The value must be a whole number.",
                )
            })?,
    };
    let now = now();
    // A customer on a test clock lives at the clock's time: its events are judged by it.
    let clock_now = match store::get(conn, account, Kind::Customer, customer).await {
        Ok(c) => super::customers::customer_now(conn, account, &c).await?,
        Err(e) if e.is_missing() => now,
        Err(e) => return Err(e),
    };
    let timestamp = timestamp.unwrap_or(clock_now);
    if timestamp < clock_now - OLDEST_EVENT {
        return Err(StripeError::invalid(
            "timestamp",
            "Meter events can only be sent for timestamps within the past 35 days.",
        ));
    }
    if timestamp > clock_now + NEWEST_EVENT {
        return Err(StripeError::invalid(
            "timestamp",
            "Meter events cannot be sent for timestamps more than 5 minutes in the future.",
        ));
    }
    let identifier = identifier.unwrap_or_else(|| new_id("mtrevt"));
    if identifier.is_empty() || identifier.len() > 100 {
        return Err(StripeError::invalid(
            "identifier",
            "The identifier must be 1 to 100 characters.",
        ));
    }
    let inserted = sqlx::query(
        "insert into stripe_sandbox.meter_events (account, identifier, event_name, customer, value, timestamp, created)
         values ($1, $2, $3, $4, $5, $6, $7) on conflict do nothing",
    )
    .bind(&account.0)
    .bind(&identifier)
    .bind(event_name)
    .bind(customer)
    .bind(value)
    .bind(timestamp)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(StripeError {
            code: Some("resource_already_exists"),
            ..StripeError::invalid(
                "identifier",
                format!("An event already exists with identifier {identifier}."),
            )
        });
    }
    let payload: serde_json::Map<String, Value> = payload
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                json!(v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
            )
        })
        .collect();
    Ok(json!({
        "object": "billing.meter_event", "created": now, "event_name": event_name,
        "identifier": identifier, "livemode": false, "payload": payload, "timestamp": timestamp,
    }))
}

/// What `meter` aggregated for `customer` over `[from, to)`.
pub async fn usage(
    conn: &mut PgConnection,
    account: &Account,
    meter: &Value,
    customer: &str,
    from: i64,
    to: i64,
) -> Result<i64, StripeError> {
    let formula = meter["default_aggregation"]["formula"]
        .as_str()
        .unwrap_or("sum");
    let aggregate = match formula {
        "count" => "count(*)::bigint",
        "last" => "(array_agg(value order by timestamp desc, created desc))[1]",
        _ => "coalesce(sum(value), 0)::bigint",
    };
    let total: Option<i64> = sqlx::query_scalar(&format!(
        "select {aggregate} from stripe_sandbox.meter_events
         where account = $1 and event_name = $2 and customer = $3 and timestamp >= $4 and timestamp < $5"
    ))
    .bind(&account.0)
    .bind(meter["event_name"].as_str().unwrap_or_default())
    .bind(customer)
    .bind(from)
    .bind(to)
    .fetch_one(conn)
    .await?;
    Ok(total.unwrap_or(0))
}

/// What a metered item's meter aggregated for the customer over `[from, to)` (nothing when
/// the meter is gone).
pub async fn item_usage(
    conn: &mut PgConnection,
    account: &Account,
    item: &Value,
    customer: &str,
    from: i64,
    to: i64,
) -> Result<i64, StripeError> {
    let Some(meter_id) = item["price"]["recurring"]["meter"].as_str() else {
        return Ok(0);
    };
    let meter = match store::get(conn, account, Kind::Meter, meter_id).await {
        Ok(meter) => meter,
        Err(e) if e.is_missing() => return Ok(0),
        Err(e) => return Err(e),
    };
    usage(conn, account, &meter, customer, from, to).await
}

/// What `quantity` units of `price` cost: its tiers (graduated or volume) or unit amount.
pub fn amount_for(price: &Value, quantity: i64) -> i64 {
    let Some(tiers) = price["tiers"].as_array().filter(|t| !t.is_empty()) else {
        return price["unit_amount"].as_i64().unwrap_or(0) * quantity;
    };
    let bound = |t: &Value| t["up_to"].as_i64().unwrap_or(i64::MAX);
    let unit = |t: &Value| t["unit_amount"].as_i64().unwrap_or(0);
    let flat = |t: &Value| t["flat_amount"].as_i64().unwrap_or(0);
    if price["tiers_mode"] == "volume" {
        // Every unit at the price of the tier the total falls in.
        let tier = tiers
            .iter()
            .find(|t| quantity <= bound(t))
            .unwrap_or(&tiers[tiers.len() - 1]);
        return quantity * unit(tier) + flat(tier);
    }
    // Graduated: each tier's units at that tier's price, and its flat fee once reached.
    let mut amount = 0;
    let mut below = 0;
    for tier in tiers {
        if quantity <= below {
            break;
        }
        amount += (quantity.min(bound(tier)) - below) * unit(tier) + flat(tier);
        below = bound(tier);
    }
    amount
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiered(mode: &str) -> Value {
        json!({ "tiers_mode": mode, "tiers": [
            { "up_to": 100, "unit_amount": 0, "flat_amount": null },
            { "up_to": 1000, "unit_amount": 10, "flat_amount": null },
            { "up_to": null, "unit_amount": 5, "flat_amount": 200 },
        ] })
    }

    #[test]
    fn graduated_tiers_price_each_units_band() {
        let price = tiered("graduated");
        assert_eq!(amount_for(&price, 0), 0);
        assert_eq!(amount_for(&price, 100), 0);
        assert_eq!(amount_for(&price, 101), 10);
        assert_eq!(amount_for(&price, 1000), 9_000);
        assert_eq!(amount_for(&price, 1001), 9_000 + 5 + 200);
    }

    #[test]
    fn volume_tiers_price_every_unit_at_the_reached_tier() {
        let price = tiered("volume");
        assert_eq!(amount_for(&price, 50), 0);
        assert_eq!(amount_for(&price, 500), 5_000);
        assert_eq!(amount_for(&price, 2000), 10_000 + 200);
        assert_eq!(amount_for(&json!({ "unit_amount": 7 }), 3), 21);
    }
}
