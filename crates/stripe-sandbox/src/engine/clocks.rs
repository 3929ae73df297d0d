//! Test clocks: a customer created on a clock lives in the clock's time. Advancing is
//! asynchronous as on Stripe: the clock goes `advancing`, the work happens, then it is
//! `ready` again and `test_helpers.test_clock.ready` is sent. What time does to
//! subscriptions (trial ends, renewals, retries) is in `lifecycle`.

use super::lifecycle;
use crate::{
    http::{Account, RequestInfo, StripeError},
    ids::{new_id, now},
    kind::Kind,
    settings::AfterFailedRetries,
    store,
};
use serde_json::{json, Value};
use sqlx::PgPool;

/// Stripe deletes test clocks 30 days after creation.
const LIFETIME_SECS: i64 = 30 * 24 * 3600;

pub fn clock_json(frozen_time: i64, name: Option<String>) -> Value {
    let created = now();
    json!({
        "id": new_id("clock"),
        "object": Kind::TestClock.object(),
        "created": created,
        "deletes_after": created + LIFETIME_SECS,
        "frozen_time": frozen_time,
        "livemode": false,
        "name": name,
        "status": "ready",
        "status_details": {},
    })
}

/// Marks the clock `advancing` towards `target` (`test_helpers.test_clock.advancing`).
pub async fn begin_advance(
    db: &PgPool,
    account: &Account,
    req: &RequestInfo,
    id: &str,
    target: i64,
) -> Result<Value, StripeError> {
    let mut tx = db.begin().await?;
    let mut clock = store::get(&mut tx, account, Kind::TestClock, id).await?;
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
    db: &PgPool,
    public_url: &str,
    account: &Account,
    id: &str,
    target: i64,
    req: &RequestInfo,
    after_retries: AfterFailedRetries,
) {
    if let Err(e) = finish_advance(db, public_url, account, id, target, req, after_retries).await {
        tracing::error!(clock = %id, error = %e.message, "test clock advance failed");
        let _ = sqlx::query(
            "update stripe_sandbox.objects set data = jsonb_set(data, '{status}', '\"internal_failure\"') where account = $1 and id = $2",
        )
        .bind(&account.0)
        .bind(id)
        .execute(db)
        .await;
    }
}

/// Moves the clock to `target` and marks it ready.
async fn finish_advance(
    db: &PgPool,
    public_url: &str,
    account: &Account,
    id: &str,
    target: i64,
    req: &RequestInfo,
    after_retries: AfterFailedRetries,
) -> Result<(), StripeError> {
    let mut tx = db.begin().await?;
    let mut clock = store::get(&mut tx, account, Kind::TestClock, id).await?;
    lifecycle::advance_clock(&mut tx, account, req, public_url, id, target, after_retries).await?;
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
    db: &PgPool,
    account: &Account,
    req: &RequestInfo,
    id: &str,
) -> Result<Value, StripeError> {
    let mut tx = db.begin().await?;
    let clock = store::get(&mut tx, account, Kind::TestClock, id).await?;
    let customers: Vec<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = 'customer' and data ->> 'test_clock' = $2 for update",
    )
    .bind(&account.0)
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    for customer in customers {
        let customer_id = customer["id"].as_str().unwrap_or_default();
        store::save(
            &mut tx,
            account,
            &json!({ "id": customer_id, "object": "customer", "deleted": true }),
        )
        .await?;
        store::emit(&mut tx, account, "customer.deleted", &customer, None, req).await?;
    }
    store::delete(&mut tx, account, id).await?;
    store::emit(
        &mut tx,
        account,
        "test_helpers.test_clock.deleted",
        &clock,
        None,
        req,
    )
    .await?;
    tx.commit().await?;
    Ok(json!({ "id": id, "object": Kind::TestClock.object(), "deleted": true }))
}

/// A test clock's frozen time, found by id alone (the dashboard's clock control).
pub async fn frozen_time(
    db: &PgPool,
    account: &Account,
    id: &str,
) -> Result<Option<i64>, StripeError> {
    Ok(sqlx::query_scalar(
        "select (data ->> 'frozen_time')::bigint from stripe_sandbox.objects where account = $1 and id = $2 and object = $3",
    )
    .bind(&account.0)
    .bind(id)
    .bind(Kind::TestClock.object())
    .fetch_optional(db)
    .await?
    .flatten())
}
