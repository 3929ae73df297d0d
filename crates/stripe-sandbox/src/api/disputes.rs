//! `/v1/disputes`: the chargebacks on this account's charges. Read them, add metadata, or
//! accept one (`/close`, which loses it). Disputes start from the test card
//! `4000 0000 0000 0259`; the dashboard can also close one as won.

use super::{list_objects, respond, retrieve, update_object};
use crate::{
    engine::disputes::{self, Verdict},
    http::{accepts, lists, Account, ApiResult, Params, RequestInfo},
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
            "/disputes",
            get(list_disputes).layer(lists(&["charge", "payment_intent"])),
        )
        .route(
            "/disputes/{id}",
            retrieve(Kind::Dispute).merge(post(update_dispute).layer(accepts(&["metadata.*"]))),
        )
        .route(
            "/disputes/{id}/close",
            post(close_dispute).layer(accepts(&[])),
        )
}

/// Newest first, by `charge` or `payment_intent`.
async fn list_disputes(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let mut contains = json!({});
    for key in ["charge", "payment_intent"] {
        if let Some(v) = params.str(key) {
            contains[key] = json!(v);
        }
    }
    list_objects(
        &sandbox,
        &account,
        Kind::Dispute,
        "/v1/disputes",
        &params,
        Filter::containing(contains),
    )
    .await
}

/// Metadata only: the sandbox takes no evidence.
async fn update_dispute(
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
        Kind::Dispute,
        &id,
        &params,
        |_| Ok(()),
    )
    .await
}

/// Accepting a dispute: it is lost, as on Stripe.
async fn close_dispute(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let dispute = disputes::close(&sandbox.db, &account, &req, &id, Verdict::Lost).await?;
    respond(&sandbox, &account, dispute, &params).await
}
