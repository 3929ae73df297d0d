//! Test clocks: a customer created on a clock lives in the clock's time. Advancing is
//! asynchronous as on Stripe: the request answers `advancing`, then the clock becomes
//! `ready` and `test_helpers.test_clock.ready` is sent. What time does to subscriptions
//! (trial ends, renewals, retries) hangs off [`finish_advance`].

use super::{
    http::{Account, ApiResult, Page, Params, StripeError},
    store::{self, now, RequestInfo},
    Sandbox,
};
use axum::extract::{Path, State};
use serde_json::{json, Value};
use std::time::Duration;

pub const OBJECT: &str = "test_helpers.test_clock";

/// Stripe deletes test clocks 30 days after creation.
const LIFETIME_SECS: i64 = 30 * 24 * 3600;

pub async fn create(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let frozen_time = params
        .i64("frozen_time")?
        .ok_or_else(|| StripeError::missing("frozen_time"))?;
    let created = now();
    let clock = json!({
        "id": store::new_id("clock"),
        "object": OBJECT,
        "created": created,
        "deletes_after": created + LIFETIME_SECS,
        "frozen_time": frozen_time,
        "livemode": false,
        "name": params.str("name"),
        "status": "ready",
        "status_details": {},
    });
    s.create(&account, &req, clock, &params).await
}

pub async fn list(State(s): State<Sandbox>, account: Account, params: Params) -> ApiResult {
    let list = store::list(
        &s.db,
        &account,
        OBJECT,
        "/v1/test_helpers/test_clocks",
        &Page::from(&params)?,
        json!({}),
        None,
    )
    .await?;
    s.respond(&account, list, &params).await
}

pub async fn advance(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let target = params
        .i64("frozen_time")?
        .ok_or_else(|| StripeError::missing("frozen_time"))?;
    let clock = begin_advance(&s, &account, &req, &id, target).await?;
    let (sandbox, account_bg, id_bg, req_bg) =
        (s.clone(), account.clone(), id.clone(), req.clone());
    tokio::spawn(async move {
        // Like Stripe, the work happens after the response.
        tokio::time::sleep(Duration::from_millis(20)).await;
        finish_or_fail(&sandbox, &account_bg, &id_bg, target, &req_bg).await;
    });
    s.respond(&account, clock, &params).await
}

/// Marks the clock `advancing` towards `target` (`test_helpers.test_clock.advancing`).
pub async fn begin_advance(
    s: &Sandbox,
    account: &Account,
    req: &RequestInfo,
    id: &str,
    target: i64,
) -> Result<Value, StripeError> {
    let mut tx = s.db.begin().await?;
    let mut clock = store::get(&mut tx, account, OBJECT, id).await?;
    if clock["status"] != "ready" {
        return Err(StripeError::invalid(
            "frozen_time",
            "The test clock is already advancing; wait for it to be ready.",
        ));
    }
    if target <= clock["frozen_time"].as_i64().unwrap_or(0) {
        return Err(StripeError::invalid(
            "frozen_time",
            "The new frozen_time must be after the clock's current frozen_time.",
        ));
    }
    clock["status"] = json!("advancing");
    clock["status_details"] = json!({ "advancing": { "target_frozen_time": target } });
    store::save(&mut tx, account, &clock).await?;
    store::emit(
        &mut tx,
        account,
        "test_helpers.test_clock.advancing",
        &clock,
        None,
        req,
    )
    .await?;
    tx.commit().await?;
    Ok(clock)
}

/// Runs the advance; a failure leaves the clock `internal_failure`, as on Stripe (it can be
/// deleted, not advanced), instead of `advancing` forever.
pub async fn finish_or_fail(
    s: &Sandbox,
    account: &Account,
    id: &str,
    target: i64,
    req: &RequestInfo,
) {
    if let Err(e) = finish_advance(s, account, id, target, req).await {
        tracing::error!(clock = %id, error = %e.message, "test clock advance failed");
        let _ = sqlx::query(
            "update stripe_sandbox.objects set data = jsonb_set(data, '{status}', '\"internal_failure\"') where account = $1 and id = $2",
        )
        .bind(&account.0)
        .bind(id)
        .execute(&s.db)
        .await;
    }
}

/// Moves the clock to `target` and marks it ready.
async fn finish_advance(
    s: &Sandbox,
    account: &Account,
    id: &str,
    target: i64,
    req: &RequestInfo,
) -> Result<(), StripeError> {
    let mut tx = s.db.begin().await?;
    let mut clock = store::get(&mut tx, account, OBJECT, id).await?;
    super::lifecycle::advance_clock(&mut tx, account, req, &s.public_url, id, target).await?;
    clock["frozen_time"] = json!(target);
    clock["status"] = json!("ready");
    clock["status_details"] = json!({});
    store::save(&mut tx, account, &clock).await?;
    store::emit(
        &mut tx,
        account,
        "test_helpers.test_clock.ready",
        &clock,
        None,
        req,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Deleting a clock deletes the customers that live on it, as on Stripe.
pub async fn delete(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
) -> ApiResult {
    let mut tx = s.db.begin().await?;
    let clock = store::get(&mut tx, &account, OBJECT, &id).await?;
    let customers: Vec<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = 'customer' and data ->> 'test_clock' = $2 for update",
    )
    .bind(&account.0)
    .bind(&id)
    .fetch_all(&mut *tx)
    .await?;
    for customer in customers {
        let customer_id = customer["id"].as_str().unwrap_or_default();
        store::save(
            &mut tx,
            &account,
            &json!({ "id": customer_id, "object": "customer", "deleted": true }),
        )
        .await?;
        store::emit(&mut tx, &account, "customer.deleted", &customer, None, &req).await?;
    }
    store::delete(&mut tx, &account, &id).await?;
    store::emit(
        &mut tx,
        &account,
        "test_helpers.test_clock.deleted",
        &clock,
        None,
        &req,
    )
    .await?;
    tx.commit().await?;
    Ok(axum::Json(
        json!({ "id": id, "object": OBJECT, "deleted": true }),
    ))
}
