//! The Customer Portal's behaviour: sessions, and what the configuration lets a customer do
//! with their subscription (switch plan with proration, cancel at period end with a
//! reason, renew) and their card.

use super::{
    cards::{behavior_of, card_payment_method, Behavior},
    catalog::product_name,
    checkout::TypedCard,
    customers::customer_now,
    invoices::{self, reason, Line},
    payment_methods::save_typed_card,
    payments::Outcome,
    subscriptions::{add_interval, plan_from_price},
};
use crate::{
    http::{Account, RequestInfo, StripeError},
    ids::{new_id, now},
    kind::Kind,
    store,
};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};

/// Stripe's cancellation reasons, the options a configuration may offer.
pub const REASONS: [&str; 8] = [
    "customer_service",
    "low_quality",
    "missing_features",
    "other",
    "switched_service",
    "too_complex",
    "too_expensive",
    "unused",
];

/// `POST /v1/billing_portal/sessions`: for `customer`, with `configuration` (default: the
/// account's default configuration) and `return_url` (default: the configuration's).
pub async fn create_session(
    db: &PgPool,
    account: &Account,
    req: &RequestInfo,
    public_url: &str,
    customer: &str,
    configuration: Option<&str>,
    return_url: Option<String>,
) -> Result<Value, StripeError> {
    let mut conn = db.acquire().await?;
    store::get(&mut conn, account, Kind::Customer, customer)
        .await
        .map_err(|e| e.in_param("customer"))?;
    let config = match configuration {
        Some(id) => store::get(&mut conn, account, Kind::PortalConfiguration, id)
            .await
            .map_err(|e| e.in_param("configuration"))?,
        None => default_configuration(&mut conn, account).await?.ok_or_else(|| {
            StripeError::invalid(
                "configuration",
                "No configuration provided and your test mode default configuration has not been created.",
            )
        })?,
    };
    drop(conn);
    let return_url =
        return_url.or_else(|| config["default_return_url"].as_str().map(str::to_owned));
    let id = new_id("bps");
    let session = json!({
        "id": id, "object": Kind::PortalSession.object(), "configuration": config["id"], "created": now(),
        "customer": customer, "customer_account": null, "flow": null, "livemode": false, "locale": null,
        "on_behalf_of": null, "return_url": return_url, "url": format!("{public_url}/sandbox/portal/{id}"),
    });
    super::objects::create(db, account, req, session).await
}

async fn default_configuration(
    conn: &mut PgConnection,
    account: &Account,
) -> Result<Option<Value>, StripeError> {
    Ok(sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = $2 and data @> '{\"is_default\": true}'",
    )
    .bind(&account.0)
    .bind(Kind::PortalConfiguration.object())
    .fetch_optional(conn)
    .await?)
}

/// Whether the account has a portal configuration yet (the first becomes the default).
pub async fn has_configuration(db: &PgPool, account: &Account) -> Result<bool, StripeError> {
    let existing: Option<String> = sqlx::query_scalar(
        "select id from stripe_sandbox.objects where account = $1 and object = $2 limit 1",
    )
    .bind(&account.0)
    .bind(Kind::PortalConfiguration.object())
    .fetch_optional(db)
    .await?;
    Ok(existing.is_some())
}

/// A portal session with its account and configuration, by session id (the page has no
/// key, only the session's unguessable id).
pub async fn find_session(
    db: &PgPool,
    id: &str,
) -> Result<Option<(Account, Value, Value)>, StripeError> {
    let Some((account, session)) = store::find_by_id(db, Kind::PortalSession, id).await? else {
        return Ok(None);
    };
    let mut conn = db.acquire().await?;
    let config = store::get(
        &mut conn,
        &account,
        Kind::PortalConfiguration,
        session["configuration"].as_str().unwrap_or_default(),
    )
    .await?;
    Ok(Some((account, session, config)))
}

/// What a customer does on the portal page.
pub enum PortalAction {
    UpdateCard(TypedCard),
    Cancel {
        reason: Option<String>,
        comment: Option<String>,
    },
    Resume,
    Switch {
        price: String,
    },
}

/// The customer's live subscription (the portal manages one, like most SaaS).
pub async fn current_subscription(
    conn: &mut PgConnection,
    account: &Account,
    customer: &str,
) -> Result<Option<Value>, StripeError> {
    Ok(sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = 'subscription'
           and data ->> 'customer' = $2 and data ->> 'status' not in ('canceled', 'incomplete_expired')
         order by seq desc limit 1 for update",
    )
    .bind(&account.0)
    .bind(customer)
    .fetch_optional(conn)
    .await?)
}

/// What switching `sub` to `price` at `now` costs, as Stripe prorates by the second: credit
/// for the unused part of the current price, a charge for the new one (the rest of this
/// period, or a whole new period when the interval changes). Nothing during a trial.
pub fn proration_lines(
    sub: &Value,
    price: &Value,
    old_name: &str,
    new_name: &str,
    now: i64,
) -> (Vec<Line>, (i64, i64)) {
    let item = &sub["items"]["data"][0];
    let (start, end) = (
        item["current_period_start"].as_i64().unwrap_or(now),
        item["current_period_end"].as_i64().unwrap_or(now),
    );
    if sub["status"] == "trialing" {
        return (Vec::new(), (start, end));
    }
    let quantity = item["quantity"].as_i64().unwrap_or(1);
    let old = item["price"]["unit_amount"].as_i64().unwrap_or(0) * quantity;
    let new = price["unit_amount"].as_i64().unwrap_or(0) * quantity;
    let length = (end - start).max(1);
    let left = (end - now).clamp(0, length);
    let prorate = |amount: i64| {
        ((amount as i128 * left as i128 + length as i128 / 2) / length as i128) as i64
    };
    let same_interval = item["price"]["recurring"]["interval"] == price["recurring"]["interval"]
        && item["price"]["recurring"]["interval_count"] == price["recurring"]["interval_count"];
    let period = if same_interval {
        (start, end)
    } else {
        (
            now,
            add_interval(
                now,
                price["recurring"]["interval"].as_str().unwrap_or("month"),
                price["recurring"]["interval_count"].as_i64().unwrap_or(1),
            ),
        )
    };
    let line = |description: String, amount: i64, price: &Value, period: (i64, i64)| Line {
        description,
        amount,
        price: Some(price.clone()),
        quantity,
        period,
        proration: true,
        subscription_item: item["id"].as_str().map(str::to_owned),
    };
    let lines = vec![
        line(
            format!("Unused time on {old_name}"),
            -prorate(old),
            &item["price"],
            (now, end),
        ),
        if same_interval {
            line(
                format!("Remaining time on {new_name}"),
                prorate(new),
                price,
                (now, end),
            )
        } else {
            line(format!("{new_name} from now"), new, price, period)
        },
    ];
    (lines, period)
}

pub async fn allowed_price(
    conn: &mut PgConnection,
    account: &Account,
    config: &Value,
    price_id: &str,
) -> Result<Value, StripeError> {
    let listed = config["features"]["subscription_update"]["products"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|p| {
            p["prices"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|x| x == price_id)
        });
    if config["features"]["subscription_update"]["enabled"] != json!(true) || !listed {
        return Err(StripeError::invalid(
            "price",
            "This plan is not available in the portal.",
        ));
    }
    let price = store::get(conn, account, Kind::Price, price_id).await?;
    if price["active"] != json!(true) {
        return Err(StripeError::invalid(
            "price",
            "This plan is no longer available.",
        ));
    }
    Ok(price)
}

/// Does what the customer asked on the portal page, if the configuration allows it, and
/// returns the notice to show. A refused change leaves everything as it was.
pub async fn apply_action(
    db: &PgPool,
    public_url: &str,
    account: &Account,
    session: &Value,
    config: &Value,
    action: PortalAction,
) -> Result<&'static str, StripeError> {
    let features = &config["features"];
    let not_allowed = || StripeError::invalid("action", "The portal does not allow this.");
    let customer_id = session["customer"].as_str().unwrap_or_default();
    let req = RequestInfo::from_page();
    let mut tx = db.begin().await?;
    let mut customer = store::get(&mut tx, account, Kind::Customer, customer_id).await?;
    if let PortalAction::UpdateCard(card) = &action {
        if features["payment_method_update"]["enabled"] != json!(true) {
            return Err(not_allowed());
        }
        let mut pm = card_payment_method(
            &card.number,
            card.exp_month,
            card.exp_year,
            json!({ "address": customer["address"], "email": customer["email"], "name": customer["name"], "phone": null, "tax_id": null }),
        );
        if let Behavior::Declined(code) = behavior_of(&pm) {
            return Err(StripeError::card_declined(code));
        }
        save_typed_card(&mut tx, account, &req, &mut pm, &json!(customer_id)).await?;
        let before = customer.clone();
        customer["invoice_settings"]["default_payment_method"] = pm["id"].clone();
        store::record_change(
            &mut tx,
            account,
            "customer.updated",
            &before,
            &customer,
            &req,
        )
        .await?;
        tx.commit().await?;
        return Ok("Your payment method was updated.");
    }
    let Some(before) = current_subscription(&mut tx, account, customer_id).await? else {
        return Err(StripeError::invalid(
            "subscription",
            "You have no active subscription.",
        ));
    };
    let mut after = before.clone();
    let at = customer_now(&mut tx, account, &customer).await?;
    let notice = match action {
        PortalAction::Cancel { reason, comment } => {
            if features["subscription_cancel"]["enabled"] != json!(true) {
                return Err(not_allowed());
            }
            let reason = reason.filter(|r| REASONS.contains(&r.as_str()));
            if features["subscription_cancel"]["cancellation_reason"]["enabled"] == json!(true)
                && reason.is_none()
            {
                return Err(StripeError::invalid(
                    "reason",
                    "Tell us why you are canceling.",
                ));
            }
            after["cancel_at_period_end"] = json!(true);
            after["cancel_at"] = before["items"]["data"][0]["current_period_end"].clone();
            after["canceled_at"] = json!(at);
            after["cancellation_details"] = json!({ "comment": comment.filter(|c| !c.trim().is_empty()),
                                                    "feedback": reason, "reason": "cancellation_requested" });
            "Your subscription will be canceled at the end of the period."
        }
        PortalAction::Resume => {
            if before["cancel_at_period_end"] != json!(true) {
                return Err(not_allowed());
            }
            after["cancel_at_period_end"] = json!(false);
            after["cancel_at"] = Value::Null;
            after["canceled_at"] = Value::Null;
            after["cancellation_details"] =
                json!({ "comment": null, "feedback": null, "reason": null });
            "Your subscription was renewed."
        }
        PortalAction::Switch { price } => {
            let price = allowed_price(&mut tx, account, config, &price).await?;
            if before["items"]["data"][0]["price"]["id"] == price["id"] {
                return Err(StripeError::invalid(
                    "price",
                    "You are already on this plan.",
                ));
            }
            let old_name =
                product_name(&mut tx, account, &before["items"]["data"][0]["price"]).await?;
            let new_name = product_name(&mut tx, account, &price).await?;
            let (lines, period) = proration_lines(&before, &price, &old_name, &new_name, at);
            let item = &mut after["items"]["data"][0];
            item["price"] = price.clone();
            item["plan"] = plan_from_price(&price);
            item["current_period_start"] = json!(period.0);
            item["current_period_end"] = json!(period.1);
            let net: i64 = lines.iter().map(|l| l.amount).sum();
            // Stripe would keep a negative balance as credit; the sandbox does not model
            // customer balances, so a downgrade invoices nothing.
            if !lines.is_empty() && net > 0 {
                let pm = invoices::paying_method(&mut tx, account, &customer, Some(&after)).await?;
                let automatic_tax = after["automatic_tax"]["enabled"] == json!(true);
                let (invoice, outcome) = invoices::bill(
                    &mut tx,
                    account,
                    &req,
                    public_url,
                    &mut customer,
                    Some(&after),
                    &lines,
                    reason::UPDATE,
                    automatic_tax,
                    pm.as_ref(),
                    true,
                    None,
                    at,
                )
                .await?;
                if let Outcome::Failed { message, .. } = outcome {
                    // Like the portal's default (`error_if_incomplete`): nothing changes.
                    return Err(StripeError::card("card", "card_declined", message));
                }
                after["latest_invoice"] = invoice["id"].clone();
            }
            "Your plan was changed."
        }
        PortalAction::UpdateCard(_) => return Err(not_allowed()),
    };
    store::record_change(
        &mut tx,
        account,
        "customer.subscription.updated",
        &before,
        &after,
        &req,
    )
    .await?;
    tx.commit().await?;
    Ok(notice)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(id: &str, amount: i64, interval: &str) -> Value {
        json!({ "id": id, "unit_amount": amount, "currency": "usd", "recurring": { "interval": interval, "interval_count": 1 } })
    }

    #[test]
    fn switching_halfway_through_charges_half_the_difference() {
        let sub = json!({ "status": "active", "items": { "data": [{ "id": "si_1", "quantity": 1,
            "current_period_start": 0, "current_period_end": 1000, "price": price("p_pro", 2900, "month") }] } });
        let (lines, period) =
            proration_lines(&sub, &price("p_team", 7900, "month"), "Pro", "Team", 500);
        assert_eq!(period, (0, 1000));
        assert_eq!(
            lines.iter().map(|l| l.amount).collect::<Vec<_>>(),
            vec![-1450, 3950]
        );
        let yearly = proration_lines(
            &sub,
            &price("p_year", 29000, "year"),
            "Pro",
            "Pro yearly",
            500,
        );
        assert_eq!(yearly.0[1].amount, 29000);
        assert_eq!(yearly.1 .0, 500);
        let mut trial = sub.clone();
        trial["status"] = json!("trialing");
        assert!(
            proration_lines(&trial, &price("p_team", 7900, "month"), "Pro", "Team", 500)
                .0
                .is_empty()
        );
    }
}
