//! `/v1/test_helpers/test_clocks`: create, retrieve, list, delete (with the customers on the
//! clock), and advance, which answers at once and does the work afterwards, as on Stripe.

use super::{create_object, list_objects, respond, retrieve};
use crate::{
    engine::clocks,
    http::{accepts, lists, Account, ApiResult, Params, RequestInfo, StripeError},
    kind::Kind,
    store::Filter,
    Sandbox,
};
use axum::{
    extract::{Path, State},
    routing::{delete, get, post},
    Json, Router,
};
use std::time::Duration;

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/test_helpers/test_clocks",
            post(create_clock)
                .layer(accepts(&["frozen_time", "name"]))
                .merge(get(list_clocks).layer(lists(&[]))),
        )
        .route(
            "/test_helpers/test_clocks/{id}",
            retrieve(Kind::TestClock).merge(delete(delete_clock).layer(accepts(&[]))),
        )
        .route(
            "/test_helpers/test_clocks/{id}/advance",
            post(advance_clock).layer(accepts(&["frozen_time"])),
        )
}

fn frozen_time(params: &Params) -> Result<i64, StripeError> {
    params
        .i64("frozen_time")?
        .ok_or_else(|| StripeError::missing("frozen_time"))
}

async fn create_clock(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let clock = clocks::clock_json(frozen_time(&params)?, params.str("name"));
    create_object(&sandbox, &account, &req, clock, &params).await
}

async fn list_clocks(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    list_objects(
        &sandbox,
        &account,
        Kind::TestClock,
        "/v1/test_helpers/test_clocks",
        &params,
        Filter::default(),
    )
    .await
}

async fn advance_clock(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let target = frozen_time(&params)?;
    let clock = clocks::begin_advance(&sandbox.db, &account, &req, &id, target).await?;
    let (background, account_bg) = (sandbox.clone(), account.clone());
    tokio::spawn(async move {
        // Like Stripe, the work happens after the response.
        tokio::time::sleep(Duration::from_millis(20)).await;
        clocks::finish_or_fail(
            &background.db,
            &background.public_url,
            &account_bg,
            &id,
            target,
            &req,
            background.settings.after_failed_retries,
        )
        .await;
    });
    respond(&sandbox, &account, clock, &params).await
}

async fn delete_clock(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    // Nothing to read, but an unknown parameter is still refused.
    _params: Params,
) -> ApiResult {
    Ok(Json(
        clocks::delete(&sandbox.db, &account, &req, &id).await?,
    ))
}
