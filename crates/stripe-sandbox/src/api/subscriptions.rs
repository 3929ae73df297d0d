//! `/v1/subscriptions`: create (trial, or charged at once), retrieve, list (not canceled
//! unless asked), update (cancel at period end and resume, default card, plan change), and
//! cancel now.

use super::{checkout::line_items, list_objects, respond, retrieve, update_object};
use crate::{
    engine::subscriptions::{self, plan_from_price, CreateSubscription},
    http::{accepts, lists, Account, ApiResult, Params, RequestInfo, StripeError},
    ids::now,
    kind::Kind,
    store::{self, Filter},
    Sandbox,
};
use axum::{
    extract::{Path, State},
    routing::{delete, get, post},
    Router,
};
use serde_json::{json, Value};

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/subscriptions",
            post(create_subscription)
                .layer(accepts(&[
                    "customer",
                    "items.#.price",
                    "items.#.quantity",
                    "trial_period_days",
                    "trial_end",
                    "default_payment_method",
                    "payment_behavior",
                    "trial_settings.end_behavior.missing_payment_method",
                    "metadata.*",
                ]))
                .merge(get(list_subscriptions).layer(lists(&["customer", "status"]))),
        )
        .route(
            "/subscriptions/{id}",
            retrieve(Kind::Subscription)
                .merge(post(update_subscription).layer(accepts(&[
                    "cancel_at_period_end",
                    "cancellation_details.feedback",
                    "cancellation_details.comment",
                    "default_payment_method",
                    "items.#.id",
                    "items.#.price",
                    "metadata.*",
                ])))
                .merge(delete(cancel_subscription).layer(accepts(&[]))),
        )
}

async fn create_subscription(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let missing_payment_method = match params
        .object("trial_settings")
        .and_then(|t| t.object("end_behavior"))
        .and_then(|e| e.str("missing_payment_method"))
    {
        None => "create_invoice".to_owned(),
        Some(v) if ["cancel", "create_invoice", "pause"].contains(&v.as_str()) => v,
        Some(v) => {
            return Err(StripeError::invalid(
                "trial_settings[end_behavior][missing_payment_method]",
                format!("Invalid trial_settings[end_behavior][missing_payment_method]: must be one of cancel, create_invoice, pause; got {v}"),
            ))
        }
    };
    let new = CreateSubscription {
        customer: params.required_str("customer")?,
        missing_payment_method,
        items: line_items(&params, "items")?,
        trial_period_days: params.i64("trial_period_days")?,
        trial_end: params.i64("trial_end")?,
        default_payment_method: params.str("default_payment_method"),
        payment_behavior: params
            .one_of(
                "payment_behavior",
                &[
                    "allow_incomplete",
                    "default_incomplete",
                    "error_if_incomplete",
                    "pending_if_incomplete",
                ],
            )?
            .unwrap_or_else(|| "allow_incomplete".into()),
        metadata: match params.get("metadata") {
            Some(Value::Object(m)) => Value::Object(m.clone()),
            _ => json!({}),
        },
        public_url: sandbox.public_url.to_string(),
    };
    let subscription = subscriptions::create(&sandbox.db, &account, &req, new).await?;
    respond(&sandbox, &account, subscription, &params).await
}

/// `cancel_at_period_end`, `metadata`, `default_payment_method`, and a plan change through
/// `items[0][id]` + `items[0][price]` (without proration invoices).
async fn update_subscription(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let mut new_price = None;
    if let Some(item) = params.objects("items").into_iter().next() {
        if let Some(price_id) = item.str("price") {
            let mut conn = sandbox.db.acquire().await?;
            let price = store::get(&mut conn, &account, Kind::Price, &price_id).await?;
            if price["type"] != "recurring" {
                return Err(StripeError::invalid(
                    "items[0][price]",
                    "The price must be recurring.",
                ));
            }
            new_price = Some((item.str("id"), price));
        }
    }
    update_object(
        &sandbox,
        &account,
        &req,
        Kind::Subscription,
        &id,
        &params,
        |sub| {
            if matches!(
                sub["status"].as_str(),
                Some("canceled" | "incomplete_expired")
            ) {
                return Err(StripeError::invalid(
                    "subscription",
                    "A canceled subscription can no longer be updated.",
                ));
            }
            if let Some(at_end) = params.bool("cancel_at_period_end")? {
                sub["cancel_at_period_end"] = json!(at_end);
                sub["cancel_at"] = if at_end {
                    sub["items"]["data"][0]["current_period_end"].clone()
                } else {
                    Value::Null
                };
                sub["canceled_at"] = if at_end { json!(now()) } else { Value::Null };
                if let Some(details) = params.object("cancellation_details") {
                    sub["cancellation_details"]["feedback"] = json!(details.str("feedback"));
                    sub["cancellation_details"]["comment"] = json!(details.str("comment"));
                }
                if !at_end {
                    sub["cancellation_details"] =
                        json!({ "comment": null, "feedback": null, "reason": null });
                }
            }
            if let Some(pm) = params.str("default_payment_method") {
                sub["default_payment_method"] = if pm.is_empty() {
                    Value::Null
                } else {
                    json!(pm)
                };
            }
            if let Some((item_id, price)) = &new_price {
                let item = &mut sub["items"]["data"][0];
                if item_id.as_deref().is_some_and(|i| item["id"] != json!(i)) {
                    return Err(StripeError::invalid(
                        "items[0][id]",
                        "No such subscription item on this subscription.",
                    ));
                }
                item["price"] = price.clone();
                item["plan"] = plan_from_price(price);
            }
            Ok(())
        },
    )
    .await
}

/// `DELETE /v1/subscriptions/{id}`: ends it now.
async fn cancel_subscription(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let sub = subscriptions::cancel(&sandbox.db, &account, &req, &id).await?;
    respond(&sandbox, &account, sub, &params).await
}

async fn list_subscriptions(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let mut contains = json!({});
    if let Some(customer) = params.str("customer") {
        contains["customer"] = json!(customer);
    }
    // Stripe lists all but canceled subscriptions unless a status is given.
    let status = params.str("status");
    match status.as_deref() {
        Some("all") | None => {}
        Some(st) => contains["status"] = json!(st),
    }
    let mut list = list_objects(
        &sandbox,
        &account,
        Kind::Subscription,
        "/v1/subscriptions",
        &params,
        Filter::containing(contains),
    )
    .await?;
    if status.is_none() {
        if let Some(data) = list["data"].as_array_mut() {
            data.retain(|sub| sub["status"] != "canceled");
        }
    }
    Ok(list)
}
