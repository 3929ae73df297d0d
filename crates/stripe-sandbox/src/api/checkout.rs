//! `/v1/checkout/sessions`: create (subscription and payment mode), retrieve, expire, and
//! list a session's line items. The customer pays on the hosted page (`hosted::checkout`).

use super::{list_objects, respond, retrieve};
use crate::{
    engine::checkout::{self, NewSession, PresetDiscount},
    engine::objects,
    http::{accepts, lists, Account, ApiResult, Page, Params, RequestInfo, StripeError},
    kind::Kind,
    store::Filter,
    Sandbox,
};
use axum::{
    extract::{Path, State},
    routing::{get, post},
    Router,
};
use serde_json::json;

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/checkout/sessions",
            post(create_session)
                .layer(accepts(&[
                    "mode",
                    "success_url",
                    "cancel_url",
                    "customer",
                    "customer_email",
                    "client_reference_id",
                    "expires_at",
                    "allow_promotion_codes",
                    "discounts.#.coupon",
                    "discounts.#.promotion_code",
                    "automatic_tax.enabled",
                    "billing_address_collection",
                    "invoice_creation.enabled",
                    "subscription_data.trial_period_days",
                    "subscription_data.metadata.*",
                    "customer_update.address",
                    "customer_update.name",
                    "customer_update.shipping",
                    "payment_intent_data.metadata.*",
                    "line_items.#.price",
                    "line_items.#.quantity",
                    "metadata.*",
                ]))
                .merge(get(list_sessions).layer(lists(&[
                    "customer",
                    "status",
                    "payment_intent",
                    "subscription",
                ]))),
        )
        .route("/checkout/sessions/{id}", retrieve(Kind::CheckoutSession))
        .route(
            "/checkout/sessions/{id}/line_items",
            get(list_line_items).layer(lists(&[])),
        )
        .route(
            "/checkout/sessions/{id}/expire",
            post(expire_session).layer(accepts(&[])),
        )
}

async fn create_session(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let mode = params
        .one_of("mode", &["subscription", "payment", "setup"])?
        .ok_or_else(|| StripeError::missing("mode"))?;
    if mode == "setup" {
        return Err(StripeError::invalid(
            "mode",
            "The sandbox supports Checkout in subscription and payment modes.",
        ));
    }
    let back_to = sandbox.settings.redirect_origin.as_deref();
    let success_url = params
        .url("success_url", back_to)?
        .ok_or_else(|| StripeError::missing("success_url"))?;
    let subscription_data = params.object("subscription_data");
    if mode == "payment" && subscription_data.is_some() {
        return Err(StripeError::invalid(
            "subscription_data",
            "subscription_data can only be used in subscription mode.",
        ));
    }
    let line_items = line_items(&params, "line_items")?;
    let allow_promotion_codes = params.bool("allow_promotion_codes")?;
    let discount = preset_discount(&params)?;
    if discount.is_some() && allow_promotion_codes == Some(true) {
        // Stripe's own wording: a session takes either a preset discount or a code field.
        return Err(StripeError::invalid(
            "discounts",
            "You may only specify one of these parameters: allow_promotion_codes, discounts.",
        ));
    }
    let flag = |key: &str| -> Result<bool, StripeError> {
        Ok(params
            .object(key)
            .map(|o| o.bool("enabled"))
            .transpose()?
            .flatten()
            .unwrap_or(false))
    };
    let new = NewSession {
        mode,
        line_items,
        success_url,
        cancel_url: params.url("cancel_url", back_to)?,
        customer: params.str("customer"),
        customer_email: params.str("customer_email"),
        client_reference_id: params.str("client_reference_id"),
        expires_at: params.i64("expires_at")?,
        allow_promotion_codes,
        automatic_tax: flag("automatic_tax")?,
        billing_address_collection: params
            .one_of("billing_address_collection", &["auto", "required"])?,
        invoice_creation: flag("invoice_creation")?,
        trial_period_days: subscription_data
            .as_ref()
            .map(|d| d.i64("trial_period_days"))
            .transpose()?
            .flatten(),
        subscription_metadata: subscription_data
            .as_ref()
            .and_then(|d| d.get("metadata").cloned())
            .unwrap_or(json!({})),
        customer_update: params.get("customer_update").cloned(),
        payment_intent_metadata: params
            .object("payment_intent_data")
            .and_then(|d| d.get("metadata").cloned()),
        metadata: params.metadata()?,
        discount,
    };
    let session = checkout::create(&sandbox.db, &account, &sandbox.public_url, new).await?;
    respond(&sandbox, &account, session, &params).await
}

/// `discounts[0][coupon]` or `discounts[0][promotion_code]`: Checkout takes at most one
/// discount, and it names exactly one of the two.
fn preset_discount(params: &Params) -> Result<Option<PresetDiscount>, StripeError> {
    let discounts = params.objects("discounts");
    if discounts.len() > 1 {
        return Err(StripeError::invalid(
            "discounts",
            "You may only specify one discount on a Checkout Session.",
        ));
    }
    let Some(discount) = discounts.first() else {
        return Ok(None);
    };
    match (discount.str("coupon"), discount.str("promotion_code")) {
        (Some(coupon), None) => Ok(Some(PresetDiscount::Coupon(coupon))),
        (None, Some(code)) => Ok(Some(PresetDiscount::PromotionCode(code))),
        _ => Err(StripeError::invalid(
            "discounts[0]",
            "A discount must specify exactly one of coupon or promotion_code.",
        )),
    }
}

/// `<key>[i][price]` and `<key>[i][quantity]` as `(price, quantity)` pairs.
pub(super) fn line_items(params: &Params, key: &str) -> Result<Vec<(String, i64)>, StripeError> {
    params
        .objects(key)
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let price = item
                .required_str("price")
                .map_err(|_| StripeError::missing(&format!("{key}[{i}][price]")))?;
            Ok((price, item.i64("quantity")?.unwrap_or(1)))
        })
        .collect()
}

async fn expire_session(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let session = checkout::expire(&sandbox.db, &account, &req, &id).await?;
    respond(&sandbox, &account, session, &params).await
}

/// `GET /v1/checkout/sessions/{id}/line_items`: the session's line items, paged.
/// `GET /v1/checkout/sessions`, by customer, status, payment intent or subscription.
async fn list_sessions(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let mut contains = json!({});
    for key in ["customer", "status", "payment_intent", "subscription"] {
        if let Some(v) = params.str(key) {
            contains[key] = json!(v);
        }
    }
    list_objects(
        &sandbox,
        &account,
        Kind::CheckoutSession,
        "/v1/checkout/sessions",
        &params,
        Filter::containing(contains),
    )
    .await
}

async fn list_line_items(
    State(sandbox): State<Sandbox>,
    account: Account,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let session = objects::retrieve(&sandbox.db, &account, Kind::CheckoutSession, &id).await?;
    let items = session["line_items"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let list = Page::from(&params)?.slice(items, &format!("/v1/checkout/sessions/{id}/line_items"));
    respond(&sandbox, &account, list, &params).await
}
