//! Subscriptions: created with a trial or charged at once to the default card, and ended.
//! Periods live on the items, as in API 2025-03-31 and later. A customer on a test clock
//! lives in the clock's time. Each period is billed by an invoice (see `invoices`), renewals
//! by `lifecycle`.

use super::{
    catalog::{load_prices, product_name},
    customers::customer_now,
    invoices::{self, reason, Line},
    payments::{charge_outcome, Outcome},
};
use crate::{
    http::{Account, RequestInfo, StripeError},
    ids::{new_id, now},
    kind::Kind,
    store,
};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use time::{Month, OffsetDateTime};

/// What `POST /v1/subscriptions` asks for.
pub struct CreateSubscription {
    pub customer: String,
    /// `trial_settings[end_behavior][missing_payment_method]`: `create_invoice` (the
    /// default), `pause` or `cancel`.
    pub missing_payment_method: String,
    pub items: Vec<(String, i64)>,
    pub trial_period_days: Option<i64>,
    pub trial_end: Option<i64>,
    pub default_payment_method: Option<String>,
    /// Stripe's `payment_behavior` (default `allow_incomplete`).
    pub payment_behavior: String,
    pub metadata: Value,
    pub public_url: String,
}

/// `start` plus `count` intervals, the way Stripe bills: month ends clamp (Jan 31 → Feb 28).
pub fn add_interval(start: i64, interval: &str, count: i64) -> i64 {
    let Ok(t) = OffsetDateTime::from_unix_timestamp(start) else {
        return start;
    };
    match interval {
        "day" => start + count * 86_400,
        "week" => start + count * 7 * 86_400,
        "month" | "year" => {
            let months = if interval == "year" {
                count * 12
            } else {
                count
            };
            let total = i64::from(t.year()) * 12 + i64::from(u8::from(t.month()) - 1) + months;
            let (year, month0) = (total.div_euclid(12) as i32, total.rem_euclid(12) as u8);
            let month = Month::try_from(month0 + 1).unwrap_or(Month::January);
            let day = t.day().min(time::util::days_in_month(month, year));
            t.replace_day(1)
                .and_then(|t| t.replace_year(year))
                .and_then(|t| t.replace_month(month))
                .and_then(|t| t.replace_day(day))
                .map(|t| t.unix_timestamp())
                .unwrap_or(start)
        }
        _ => start,
    }
}

/// Stripe still returns each item's price as a legacy `plan` too.
pub fn plan_from_price(price: &Value) -> Value {
    json!({
        "id": price["id"], "object": "plan", "active": price["active"], "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"], "billing_scheme": price["billing_scheme"], "created": price["created"],
        "currency": price["currency"], "interval": price["recurring"]["interval"],
        "interval_count": price["recurring"]["interval_count"], "livemode": false, "metadata": price["metadata"],
        "meter": price["recurring"]["meter"], "nickname": price["nickname"], "product": price["product"],
        "tiers_mode": price["tiers_mode"],
        "transform_usage": null, "trial_period_days": null, "usage_type": price["recurring"]["usage_type"],
    })
}

fn item_json(
    subscription: &str,
    price: &Value,
    quantity: i64,
    period: (i64, i64),
    created: i64,
) -> Value {
    json!({
        "id": new_id("si"), "object": "subscription_item", "created": created,
        "current_period_end": period.1, "current_period_start": period.0, "discounts": [], "metadata": {},
        "plan": plan_from_price(price), "price": price,
        // A metered item has no quantity: its meter says how much was used.
        "quantity": if super::invoices::is_metered(price) { Value::Null } else { json!(quantity) },
        "subscription": subscription,
        "tax_rates": [],
    })
}

pub struct NewSubscription<'a> {
    pub customer: &'a Value,
    pub items: Vec<(Value, i64)>,
    pub now: i64,
    pub trial_end: Option<i64>,
    pub status: &'a str,
    pub default_payment_method: Option<String>,
    pub metadata: Value,
    pub missing_payment_method: &'a str,
}

/// A subscription object exactly as Stripe returns it (every field async-stripe requires).
pub fn subscription_json(new: NewSubscription<'_>) -> Value {
    let id = new_id("sub");
    let (interval, count) = {
        let recurring = &new.items[0].0["recurring"];
        (
            recurring["interval"].as_str().unwrap_or("month").to_owned(),
            recurring["interval_count"].as_i64().unwrap_or(1),
        )
    };
    // During a trial the current period is the trial.
    let period = (
        new.now,
        new.trial_end
            .unwrap_or_else(|| add_interval(new.now, &interval, count)),
    );
    let items: Vec<Value> = new
        .items
        .iter()
        .map(|(p, q)| item_json(&id, p, *q, period, new.now))
        .collect();
    json!({
        "id": id, "object": "subscription", "application": null, "application_fee_percent": null,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null },
        "billing_cycle_anchor": period.1, "billing_cycle_anchor_config": null,
        "billing_mode": { "flexible": null, "type": "classic", "updated_at": null }, "billing_schedules": [],
        "billing_thresholds": null, "cancel_at": null, "cancel_at_period_end": false, "canceled_at": null,
        "cancellation_details": { "comment": null, "feedback": null, "reason": null },
        "collection_method": "charge_automatically", "created": new.now,
        "currency": new.items[0].0["currency"], "customer": new.customer["id"], "customer_account": null,
        "days_until_due": null, "default_payment_method": new.default_payment_method, "default_source": null,
        "default_tax_rates": [], "description": null, "discounts": [], "ended_at": null,
        "invoice_settings": { "account_tax_ids": null, "issuer": { "type": "self" } },
        "items": { "object": "list", "data": items, "has_more": false, "total_count": new.items.len(),
                   "url": format!("/v1/subscription_items?subscription={id}") },
        "latest_invoice": null, "livemode": false, "metadata": new.metadata,
        "next_pending_invoice_item_invoice": null, "on_behalf_of": null, "pause_collection": null,
        "payment_settings": { "payment_method_options": null, "payment_method_types": null, "save_default_payment_method": "off" },
        "pending_invoice_item_interval": null, "pending_setup_intent": null, "pending_update": null, "schedule": null,
        "start_date": new.now, "status": new.status, "test_clock": new.customer["test_clock"], "transfer_data": null,
        "trial_end": new.trial_end, "trial_settings": { "end_behavior": { "missing_payment_method": new.missing_payment_method } },
        "trial_start": new.trial_end.map(|_| new.now),
    })
}

pub async fn create(
    db: &PgPool,
    account: &Account,
    req: &RequestInfo,
    new: CreateSubscription,
) -> Result<Value, StripeError> {
    let mut tx = db.begin().await?;
    let customer = store::get(&mut tx, account, Kind::Customer, &new.customer)
        .await
        .map_err(|e| e.in_param("customer"))?;
    let now = customer_now(&mut tx, account, &customer).await?;
    let items = load_prices(&mut tx, account, "items", &new.items, true).await?;
    let trial_end = match (new.trial_period_days, new.trial_end) {
        (Some(days), _) if !(1..=730).contains(&days) => {
            return Err(StripeError::invalid(
                "trial_period_days",
                "Must be between 1 and 730 days.",
            ))
        }
        (Some(days), _) => Some(now + days * 86_400),
        (None, Some(end)) if end <= now => {
            return Err(StripeError::invalid(
                "trial_end",
                "trial_end must be in the future.",
            ))
        }
        (None, end) => end,
    };
    if let Some(pm_id) = &new.default_payment_method {
        let pm = store::get(&mut tx, account, Kind::PaymentMethod, pm_id).await?;
        if pm["customer"] != json!(new.customer) {
            return Err(StripeError::invalid(
                "default_payment_method",
                "The payment method is not attached to this customer.",
            ));
        }
    }
    let paying_pm = new.default_payment_method.clone().or_else(|| {
        customer["invoice_settings"]["default_payment_method"]
            .as_str()
            .map(str::to_owned)
    });
    let pm = match &paying_pm {
        Some(id) => Some(store::get(&mut tx, account, Kind::PaymentMethod, id).await?),
        None => None,
    };
    // Without a trial the first period is charged now, to the default card.
    let outcome = if trial_end.is_some() {
        Outcome::Paid
    } else if pm.is_none() {
        return Err(StripeError::invalid(
            "customer",
            "This customer has no attached payment source or default payment method.",
        ));
    } else {
        charge_outcome(pm.as_ref(), false)
    };
    let status = match (&outcome, new.payment_behavior.as_str()) {
        (Outcome::Paid, _) if trial_end.is_some() => "trialing",
        (Outcome::Paid, _) => "active",
        (Outcome::Failed { decline_code, .. }, "error_if_incomplete") => {
            return Err(StripeError::card_declined(
                if decline_code == "insufficient_funds" {
                    "insufficient_funds"
                } else {
                    "generic_decline"
                },
            ))
        }
        _ => "incomplete",
    };
    let subscription = subscription_json(NewSubscription {
        customer: &customer,
        items,
        now,
        trial_end,
        status,
        default_payment_method: new.default_payment_method,
        metadata: new.metadata,
        missing_payment_method: &new.missing_payment_method,
    });
    let mut customer = customer;
    let subscription = start(
        &mut tx,
        account,
        req,
        &new.public_url,
        &mut customer,
        subscription,
        pm.as_ref(),
        false,
    )
    .await?;
    tx.commit().await?;
    Ok(subscription)
}

/// Stores a new subscription (`customer.subscription.created`) and bills its first invoice:
/// nothing to pay during a trial, the first period otherwise.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    conn: &mut PgConnection,
    account: &Account,
    req: &RequestInfo,
    public_url: &str,
    customer: &mut Value,
    mut subscription: Value,
    pm: Option<&Value>,
    authenticated: bool,
) -> Result<Value, StripeError> {
    store::insert(conn, account, &subscription).await?;
    store::emit(
        conn,
        account,
        "customer.subscription.created",
        &subscription,
        None,
        req,
    )
    .await?;
    let start = subscription["start_date"].as_i64().unwrap_or_else(now);
    let trial = subscription["status"] == "trialing";
    let mut lines = Vec::new();
    for item in subscription["items"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let name = product_name(conn, account, &item["price"]).await?;
        let period = (start, item["current_period_end"].as_i64().unwrap_or(start));
        let mut line = Line::for_item(&item, &name, period);
        if trial {
            line.description = format!("Trial period for {name}");
            line.amount = 0;
        }
        lines.push(line);
    }
    let automatic_tax = subscription["automatic_tax"]["enabled"] == json!(true);
    let (invoice, _) = invoices::bill(
        conn,
        account,
        req,
        public_url,
        customer,
        Some(&subscription),
        &lines,
        reason::CREATE,
        automatic_tax,
        pm,
        authenticated,
        None,
        start,
    )
    .await?;
    subscription["latest_invoice"] = invoice["id"].clone();
    store::save(conn, account, &subscription).await?;
    Ok(subscription)
}

/// `DELETE /v1/subscriptions/{id}`: ends it now.
pub async fn cancel(
    db: &PgPool,
    account: &Account,
    req: &RequestInfo,
    id: &str,
) -> Result<Value, StripeError> {
    let mut tx = db.begin().await?;
    let before = store::get(&mut tx, account, Kind::Subscription, id).await?;
    if before["status"] == "canceled" {
        return Err(StripeError::invalid(
            "subscription",
            "This subscription is already canceled.",
        ));
    }
    let customer = store::get_even_deleted(
        &mut tx,
        account,
        Kind::Customer,
        before["customer"].as_str().unwrap_or(""),
    )
    .await?;
    let ended = customer_now(&mut tx, account, &customer).await?;
    let mut sub = before.clone();
    sub["status"] = json!("canceled");
    sub["canceled_at"] = json!(ended);
    sub["ended_at"] = json!(ended);
    sub["cancellation_details"]["reason"] = json!("cancellation_requested");
    store::record_change(
        &mut tx,
        account,
        "customer.subscription.deleted",
        &before,
        &sub,
        req,
    )
    .await?;
    tx.commit().await?;
    Ok(sub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_clamp_to_the_end_of_shorter_months() {
        let jan31 = 1_706_659_200; // 2024-01-31 00:00 UTC
        let feb29 = 1_709_164_800; // 2024-02-29 (leap year)
        assert_eq!(add_interval(jan31, "month", 1), feb29);
        assert_eq!(add_interval(jan31, "year", 1), 1_738_281_600); // 2025-01-31
        assert_eq!(add_interval(jan31, "week", 2), jan31 + 14 * 86_400);
    }

    #[test]
    fn the_subscription_shape_decodes_in_async_stripe() {
        let price = json!({
            "id": "price_1", "object": "price", "active": true, "billing_scheme": "per_unit", "created": 1,
            "currency": "usd", "livemode": false, "lookup_key": null, "metadata": {}, "nickname": null,
            "product": "prod_1", "recurring": { "interval": "month", "interval_count": 1, "meter": null,
            "trial_period_days": null, "usage_type": "licensed" }, "tax_behavior": "unspecified",
            "type": "recurring", "unit_amount": 2900, "unit_amount_decimal": "2900",
        });
        let customer = json!({ "id": "cus_1", "test_clock": null });
        let sub = subscription_json(NewSubscription {
            customer: &customer,
            items: vec![(price, 1)],
            now: 1_700_000_000,
            trial_end: Some(1_700_000_000 + 14 * 86_400),
            status: "trialing",
            default_payment_method: None,
            metadata: json!({ "user_id": "u1" }),
            missing_payment_method: "create_invoice",
        });
        let decoded: stripe_shared::Subscription =
            miniserde::json::from_str(&sub.to_string()).expect("every required field is present");
        assert_eq!(decoded.status.as_str(), "trialing");
        assert_eq!(
            decoded.items.data[0].current_period_end,
            1_700_000_000 + 14 * 86_400
        );
        assert_eq!(decoded.metadata["user_id"], "u1");
    }
}
