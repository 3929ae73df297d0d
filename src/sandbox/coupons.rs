//! Coupons and the customer-facing promotion codes that redeem them (what Checkout's
//! `allow_promotion_codes` accepts). In API 2026-09-30 a promotion code names its coupon as
//! `promotion[coupon]`; the older top-level `coupon` is accepted too.

use super::{
    http::{Account, ApiResult, Page, Params, StripeError},
    resources::{check_custom_id, currency, one_of},
    store::{self, now, RequestInfo},
    Sandbox,
};
use axum::extract::{Path, State};
use serde_json::{json, Value};

pub async fn create_coupon(
    State(s): State<Sandbox>,
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
        Some(_) => Some(currency(&params)?),
        None => None,
    };
    if percent_off.is_some() == amount_off.is_some() {
        return Err(StripeError::invalid(
            "percent_off",
            "Provide exactly one of percent_off or amount_off.",
        ));
    }
    let duration = one_of(&params, "duration", &["once", "repeating", "forever"])?
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
    let id = match params.str("id") {
        Some(id) => {
            check_custom_id(&id)?;
            id
        }
        None => store::new_id("")[1..9].to_owned(),
    };
    let redeem_by = params.i64("redeem_by")?;
    let mut coupon = json!({
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
    params.metadata_into(&mut coupon)?;
    s.create(&account, &req, coupon, &params).await
}

pub async fn update_coupon(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    s.update(&account, &req, "coupon", &id, &params, |c| {
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

pub async fn list_coupons(State(s): State<Sandbox>, account: Account, params: Params) -> ApiResult {
    let list = store::list(
        &s.db,
        &account,
        "coupon",
        "/v1/coupons",
        &Page::from(&params)?,
        json!({}),
        None,
    )
    .await?;
    s.respond(&account, list, &params).await
}

pub async fn create_promotion_code(
    State(s): State<Sandbox>,
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
        .unwrap_or_else(|| store::new_id("")[1..9].to_ascii_uppercase());
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
        "id": store::new_id("promo"),
        "object": "promotion_code",
        "active": params.bool("active")?.unwrap_or(true),
        "code": code,
        "created": now(),
        "customer": params.str("customer"),
        "expires_at": params.i64("expires_at")?,
        "livemode": false,
        "max_redemptions": params.i64("max_redemptions")?,
        "metadata": {},
        "promotion": { "coupon": coupon_id, "type": "coupon" },
        "restrictions": {
            "currency_options": {},
            "first_time_transaction": restrictions.as_ref().map(|r| r.bool("first_time_transaction")).transpose()?.flatten().unwrap_or(false),
            "minimum_amount": minimum_amount,
            "minimum_amount_currency": minimum_currency,
        },
        "times_redeemed": 0,
    });
    params.metadata_into(&mut promo)?;

    let mut tx = s.db.begin().await?;
    store::get(&mut tx, &account, "coupon", &coupon_id).await?;
    // Active codes are unique per account, whatever their case.
    let taken: Option<String> = sqlx::query_scalar(
        "select id from stripe_sandbox.objects where account = $1 and object = 'promotion_code'
           and (data ->> 'active')::boolean and lower(data ->> 'code') = lower($2) for update",
    )
    .bind(&account.0)
    .bind(promo["code"].as_str())
    .fetch_optional(&mut *tx)
    .await?;
    if taken.is_some() && promo["active"] == json!(true) {
        return Err(StripeError::invalid(
            "code",
            "An active promotion code with this code already exists.",
        ));
    }
    store::insert(&mut tx, &account, &promo).await?;
    store::emit(
        &mut tx,
        &account,
        "promotion_code.created",
        &promo,
        None,
        &req,
    )
    .await?;
    tx.commit().await?;
    s.respond(&account, promo, &params).await
}

pub async fn update_promotion_code(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    s.update(&account, &req, "promotion_code", &id, &params, |p| {
        if let Some(active) = params.bool("active")? {
            p["active"] = json!(active);
        }
        Ok(())
    })
    .await
}

pub async fn list_promotion_codes(
    State(s): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let mut filter = json!({});
    if let Some(active) = params.bool("active")? {
        filter["active"] = json!(active);
    }
    if let Some(code) = params.str("code") {
        filter["code"] = json!(code);
    }
    if let Some(coupon) = params.str("coupon") {
        filter["promotion"] = json!({ "coupon": coupon });
    }
    let list = store::list(
        &s.db,
        &account,
        "promotion_code",
        "/v1/promotion_codes",
        &Page::from(&params)?,
        filter,
        None,
    )
    .await?;
    s.respond(&account, list, &params).await
}
