//! `/v1/coupons` and `/v1/promotion_codes`: coupons (percent or amount off; once, repeating
//! or forever) and the customer-facing codes that redeem them (what Checkout's
//! `allow_promotion_codes` accepts). In API 2026-09-30 a promotion code names its coupon as
//! `promotion[coupon]`; the older top-level `coupon` is accepted too.

use super::{create_object, delete_object, list_objects, respond, retrieve, update_object};
use crate::{
    engine::coupons::create_promotion_code as store_promotion_code,
    http::{accepts, lists, Account, ApiResult, Params, RequestInfo, StripeError},
    ids::{new_id, now},
    kind::Kind,
    store::Filter,
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
            "/coupons",
            post(create_coupon)
                .layer(accepts(&[
                    "id",
                    "percent_off",
                    "amount_off",
                    "currency",
                    "duration",
                    "duration_in_months",
                    "redeem_by",
                    "max_redemptions",
                    "name",
                    "metadata.*",
                ]))
                .merge(get(list_coupons).layer(lists(&[]))),
        )
        .route(
            "/coupons/{id}",
            retrieve(Kind::Coupon)
                .merge(post(update_coupon).layer(accepts(&["name", "metadata.*"])))
                .merge(delete(delete_coupon).layer(accepts(&[]))),
        )
        .route(
            "/promotion_codes",
            post(create_promotion_code)
                .layer(accepts(&[
                    "promotion.type",
                    "promotion.coupon",
                    "coupon",
                    "code",
                    "active",
                    "expires_at",
                    "max_redemptions",
                    "restrictions.minimum_amount",
                    "restrictions.minimum_amount_currency",
                    "metadata.*",
                ]))
                .merge(get(list_promotion_codes).layer(lists(&["active", "code", "coupon"]))),
        )
        .route(
            "/promotion_codes/{id}",
            retrieve(Kind::PromotionCode)
                .merge(post(update_promotion_code).layer(accepts(&["active", "metadata.*"]))),
        )
}

async fn create_coupon(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let percent_off = match params.str("percent_off") {
        Some(raw) => Some(
            raw.parse::<f64>()
                .ok()
                .filter(|p| *p > 0.0 && *p <= 100.0)
                .ok_or_else(|| {
                    StripeError::invalid(
                        "percent_off",
                        "percent_off must be greater than 0 and at most 100.",
                    )
                })?,
        ),
        None => None,
    };
    let amount_off = params.i64("amount_off")?;
    let coupon_currency = match amount_off {
        Some(a) if a <= 0 => {
            return Err(StripeError::invalid(
                "amount_off",
                "amount_off must be a positive integer.",
            ))
        }
        Some(_) => Some(params.currency()?),
        None => None,
    };
    if percent_off.is_some() == amount_off.is_some() {
        return Err(StripeError::invalid(
            "percent_off",
            "Provide exactly one of percent_off or amount_off.",
        ));
    }
    let duration = params
        .one_of("duration", &["once", "repeating", "forever"])?
        .unwrap_or_else(|| "once".into());
    let months = params.i64("duration_in_months")?;
    match (duration.as_str(), months) {
        ("repeating", None) => return Err(StripeError::missing("duration_in_months")),
        ("repeating", Some(m)) if m < 1 => {
            return Err(StripeError::invalid(
                "duration_in_months",
                "Must be at least 1.",
            ))
        }
        ("once" | "forever", Some(_)) => {
            return Err(StripeError::invalid(
                "duration_in_months",
                "duration_in_months only applies to repeating coupons.",
            ))
        }
        _ => {}
    }
    let id = params
        .custom_id()?
        .unwrap_or_else(|| new_id("")[1..9].to_owned());
    let redeem_by = params.i64("redeem_by")?;
    let coupon = json!({
        "id": id,
        "object": "coupon",
        "amount_off": amount_off,
        "created": now(),
        "currency": coupon_currency,
        "duration": duration,
        "duration_in_months": months,
        "livemode": false,
        "max_redemptions": params.i64("max_redemptions")?,
        "metadata": {},
        "name": params.str("name"),
        "percent_off": percent_off,
        "redeem_by": redeem_by,
        "times_redeemed": 0,
        "valid": redeem_by.is_none_or(|t| t > now()),
    });
    create_object(&sandbox, &account, &req, coupon, &params).await
}

async fn update_coupon(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    update_object(&sandbox, &account, &req, Kind::Coupon, &id, &params, |c| {
        if let Some(name) = params.str("name") {
            c["name"] = if name.is_empty() {
                Value::Null
            } else {
                json!(name)
            };
        }
        Ok(())
    })
    .await
}

async fn delete_coupon(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    // Nothing to read, but an unknown parameter is still refused.
    _params: Params,
) -> ApiResult {
    delete_object(&sandbox, &account, &req, Kind::Coupon, &id).await
}

async fn list_coupons(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    list_objects(
        &sandbox,
        &account,
        Kind::Coupon,
        "/v1/coupons",
        &params,
        Filter::default(),
    )
    .await
}

async fn create_promotion_code(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let promotion = params.object("promotion");
    let coupon_id = promotion
        .as_ref()
        .and_then(|p| {
            if p.str("type").is_some_and(|t| t != "coupon") {
                return None;
            }
            p.str("coupon")
        })
        .or_else(|| params.str("coupon"))
        .ok_or_else(|| StripeError::missing("promotion[coupon]"))?;
    let code = params
        .str("code")
        .unwrap_or_else(|| new_id("")[1..9].to_ascii_uppercase());
    if code.is_empty()
        || code.len() > 500
        || !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(StripeError::invalid(
            "code",
            "Codes use letters, digits, '-' and '_'.",
        ));
    }
    let restrictions = params.object("restrictions");
    let minimum_amount = restrictions
        .as_ref()
        .map(|r| r.i64("minimum_amount"))
        .transpose()?
        .flatten();
    let minimum_currency = match minimum_amount {
        Some(_) => Some(
            restrictions
                .as_ref()
                .and_then(|r| r.str("minimum_amount_currency"))
                .ok_or_else(|| StripeError::missing("restrictions[minimum_amount_currency]"))?,
        ),
        None => None,
    };
    let mut promo = json!({
        "id": new_id("promo"),
        "object": "promotion_code",
        "active": params.bool("active")?.unwrap_or(true),
        "code": code,
        "created": now(),
        "customer": null,
        "expires_at": params.i64("expires_at")?,
        "livemode": false,
        "max_redemptions": params.i64("max_redemptions")?,
        "metadata": {},
        "promotion": { "coupon": coupon_id, "type": "coupon" },
        "restrictions": {
            "currency_options": {},
            "first_time_transaction": false,
            "minimum_amount": minimum_amount,
            "minimum_amount_currency": minimum_currency,
        },
        "times_redeemed": 0,
    });
    params.metadata_into(&mut promo)?;
    let promo = store_promotion_code(&sandbox.db, &account, &req, promo).await?;
    respond(&sandbox, &account, promo, &params).await
}

async fn update_promotion_code(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    update_object(
        &sandbox,
        &account,
        &req,
        Kind::PromotionCode,
        &id,
        &params,
        |p| {
            if let Some(active) = params.bool("active")? {
                p["active"] = json!(active);
            }
            Ok(())
        },
    )
    .await
}

async fn list_promotion_codes(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let mut contains = json!({});
    if let Some(active) = params.bool("active")? {
        contains["active"] = json!(active);
    }
    if let Some(code) = params.str("code") {
        contains["code"] = json!(code);
    }
    if let Some(coupon) = params.str("coupon") {
        contains["promotion"] = json!({ "coupon": coupon });
    }
    list_objects(
        &sandbox,
        &account,
        Kind::PromotionCode,
        "/v1/promotion_codes",
        &params,
        Filter::containing(contains),
    )
    .await
}
