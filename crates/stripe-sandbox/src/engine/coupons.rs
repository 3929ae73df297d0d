//! Coupons and the customer-facing promotion codes that redeem them: what a code is worth,
//! and whether a typed code may be used.

use crate::{
    http::{Account, RequestInfo, StripeError},
    ids::now,
    kind::Kind,
    store,
};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};

/// What a coupon takes off `subtotal`.
pub fn discount_amount(coupon: &Value, subtotal: i64) -> i64 {
    let off = match (
        coupon["percent_off"].as_f64(),
        coupon["amount_off"].as_i64(),
    ) {
        (Some(pct), _) => (subtotal as f64 * pct / 100.0).round() as i64,
        (None, Some(amount)) => amount,
        _ => 0,
    };
    off.clamp(0, subtotal)
}

/// Why a typed promotion code cannot be used.
#[derive(Debug)]
pub enum CodeRefused {
    Invalid,
    Store(StripeError),
}

impl From<StripeError> for CodeRefused {
    fn from(e: StripeError) -> Self {
        Self::Store(e)
    }
}

impl From<sqlx::Error> for CodeRefused {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// The promotion code a customer typed, checked like Stripe: it exists, is active and not
/// expired, its coupon is valid, and the order meets its minimum. Returns the code and its
/// coupon; `None` for an empty code.
pub async fn redeemable(
    db: &PgPool,
    account: &Account,
    code: &str,
    subtotal: i64,
) -> Result<Option<(Value, Value)>, CodeRefused> {
    if code.is_empty() {
        return Ok(None);
    }
    let promo: Option<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = 'promotion_code'
           and (data ->> 'active')::boolean and lower(data ->> 'code') = lower($2)",
    )
    .bind(&account.0)
    .bind(code)
    .fetch_optional(db)
    .await?;
    let promo = promo.ok_or(CodeRefused::Invalid)?;
    if promo["expires_at"].as_i64().is_some_and(|t| t <= now())
        || promo["restrictions"]["minimum_amount"]
            .as_i64()
            .is_some_and(|m| subtotal < m)
    {
        return Err(CodeRefused::Invalid);
    }
    let mut conn = db.acquire().await?;
    let coupon = store::get(
        &mut conn,
        account,
        Kind::Coupon,
        promo["promotion"]["coupon"].as_str().unwrap_or_default(),
    )
    .await
    .map_err(|_| CodeRefused::Invalid)?;
    if coupon["valid"] != json!(true) || used_up(&promo) || used_up(&coupon) {
        return Err(CodeRefused::Invalid);
    }
    Ok(Some((promo, coupon)))
}

/// A coupon or promotion code redeemed `max_redemptions` times already, or a coupon past
/// its `redeem_by`.
pub fn used_up(obj: &Value) -> bool {
    obj["max_redemptions"]
        .as_i64()
        .is_some_and(|max| obj["times_redeemed"].as_i64().unwrap_or(0) >= max)
        || obj["redeem_by"].as_i64().is_some_and(|t| t <= now())
}

/// Counts one redemption of a coupon and of the promotion code it came through, if any, in
/// the transaction that completes the purchase. One statement each, so two purchases at
/// once both count.
pub async fn redeem(
    conn: &mut PgConnection,
    account: &Account,
    promo: &Value,
    coupon: &Value,
) -> Result<(), StripeError> {
    for id in [promo["id"].as_str(), coupon["id"].as_str()]
        .into_iter()
        .flatten()
    {
        sqlx::query(
            "update stripe_sandbox.objects
                set data = jsonb_set(data, '{times_redeemed}',
                                     to_jsonb(coalesce((data ->> 'times_redeemed')::bigint, 0) + 1))
              where account = $1 and id = $2",
        )
        .bind(&account.0)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Stores a promotion code for an existing coupon. Active codes are unique per account,
/// whatever their case.
pub async fn create_promotion_code(
    db: &PgPool,
    account: &Account,
    req: &RequestInfo,
    promo: Value,
) -> Result<Value, StripeError> {
    let mut tx = db.begin().await?;
    store::get(
        &mut tx,
        account,
        Kind::Coupon,
        promo["promotion"]["coupon"].as_str().unwrap_or_default(),
    )
    .await
    .map_err(|e| e.in_param("promotion[coupon]"))?;
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
    store::insert(&mut tx, account, &promo).await?;
    store::emit(
        &mut tx,
        account,
        "promotion_code.created",
        &promo,
        None,
        req,
    )
    .await?;
    tx.commit().await?;
    Ok(promo)
}
