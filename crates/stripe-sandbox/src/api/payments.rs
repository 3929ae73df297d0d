//! `/v1/payment_intents`, `/v1/charges` and `/v1/refunds`: read what payments happened, and
//! refund them in full or in part.

use super::{list_objects, respond, retrieve};
use crate::{
    engine::payments::{self, NewRefund},
    http::{accepts, lists, Account, ApiResult, Params, RequestInfo},
    kind::Kind,
    store::Filter,
    Sandbox,
};
use axum::{
    extract::State,
    routing::{get, post},
    Router,
};
use serde_json::json;

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/payment_intents",
            get(list_payment_intents).layer(lists(&["customer", "charge", "payment_intent"])),
        )
        .route("/payment_intents/{id}", retrieve(Kind::PaymentIntent))
        .route(
            "/charges",
            get(list_charges).layer(lists(&["customer", "charge", "payment_intent"])),
        )
        .route("/charges/{id}", retrieve(Kind::Charge))
        .route(
            "/refunds",
            post(create_refund)
                .layer(accepts(&[
                    "charge",
                    "payment_intent",
                    "amount",
                    "reason",
                    "metadata.*",
                ]))
                .merge(get(list_refunds).layer(lists(&["customer", "charge", "payment_intent"]))),
        )
        .route("/refunds/{id}", retrieve(Kind::Refund))
}

/// Newest first, by `customer` (refunds also by `charge` or `payment_intent`).
async fn list_of(sandbox: &Sandbox, account: &Account, kind: Kind, params: &Params) -> ApiResult {
    let mut contains = json!({});
    for key in ["customer", "charge", "payment_intent"] {
        if let Some(v) = params.str(key) {
            contains[key] = json!(v);
        }
    }
    let url = format!("/v1/{}s", kind.object());
    list_objects(
        sandbox,
        account,
        kind,
        &url,
        params,
        Filter::containing(contains),
    )
    .await
}

async fn list_payment_intents(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    list_of(&sandbox, &account, Kind::PaymentIntent, &params).await
}

async fn list_charges(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    list_of(&sandbox, &account, Kind::Charge, &params).await
}

async fn list_refunds(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    list_of(&sandbox, &account, Kind::Refund, &params).await
}

/// `charge` or `payment_intent`, an optional `amount` (default: what is left) and `reason`.
/// Emits `refund.created` and `charge.refunded`.
async fn create_refund(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let new = NewRefund {
        charge: params.str("charge"),
        payment_intent: params.str("payment_intent"),
        amount: params.i64("amount")?,
        reason: params.one_of(
            "reason",
            &["duplicate", "fraudulent", "requested_by_customer"],
        )?,
        metadata: params.metadata()?,
    };
    let refund = payments::refund(&sandbox.db, &account, &req, new).await?;
    respond(&sandbox, &account, refund, &params).await
}
