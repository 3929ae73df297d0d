//! `POST /api/webhooks/stripe`: the only source of truth about money.
//!
//! Verify the signature over the raw body; record the event id in the ledger and apply its
//! change in one transaction; answer 200 only once that commits. A duplicate finds the id
//! already processed and changes nothing. A failure rolls back and answers 500 so Stripe
//! retries. Unknown event types are recorded and acknowledged. Payloads are never logged.

mod ledger;
pub mod replay;
pub mod signature;

use crate::{catalog::sync, config::StripeMode, state::AppState, stripe::Stripe};
use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};

/// Stripe's events are far below this; anything larger is not from Stripe.
pub const MAX_BODY: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/webhooks/stripe",
        post(receive).layer(DefaultBodyLimit::max(MAX_BODY)),
    )
}

/// The envelope of an event; `data.object` is decoded into async-stripe's types by the
/// handler that needs it.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub data: EnvelopeData,
}

#[derive(Debug, Deserialize)]
pub struct EnvelopeData {
    pub object: Box<serde_json::value::RawValue>,
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("signature: {0}")]
    Signature(#[from] signature::SignatureError),
    #[error("payload is not a Stripe event")]
    Payload,
    #[error("livemode does not match this deployment")]
    WrongMode,
    #[error("processing failed: {0}")]
    Processing(String),
}

impl IntoResponse for WebhookError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::Processing(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let message = match &self {
            // Internals stay in the log.
            Self::Processing(_) => "processing failed; retry later".to_owned(),
            other => other.to_string(),
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<serde_json::Value>, WebhookError> {
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if let Err(e) = signature::verify(header, &body, &state.webhook_secrets(), now) {
        tracing::warn!(reason = %e, "refused a webhook");
        return Err(e.into());
    }
    let event: Envelope = serde_json::from_slice(&body).map_err(|_| WebhookError::Payload)?;
    if event.livemode != (state.config.stripe_mode == StripeMode::Live) {
        tracing::warn!(event_id = %event.id, "refused a webhook from the other mode");
        return Err(WebhookError::WrongMode);
    }
    let duplicate = process(&state.db, &state.stripe, state.config.app_url.as_str(), &event).await.map_err(|e| {
        tracing::error!(event_id = %event.id, event_type = %event.kind, error = %e, "webhook processing failed");
        WebhookError::Processing(e)
    })?;
    tracing::info!(event_id = %event.id, event_type = %event.kind, duplicate, "webhook accepted");
    Ok(Json(
        serde_json::json!({ "received": true, "duplicate": duplicate }),
    ))
}

/// Records and applies one event; returns whether it had already been processed. The route
/// and `replay-events` both come through here.
pub async fn process(
    db: &PgPool,
    stripe: &Stripe,
    app_url: &str,
    event: &Envelope,
) -> Result<bool, String> {
    let result: Result<bool, String> = async {
        let mut tx = db.begin().await.map_err(|e| e.to_string())?;
        let claim = ledger::claim(&mut tx, event)
            .await
            .map_err(|e| e.to_string())?;
        if claim == ledger::Claim::AlreadyProcessed {
            tx.commit().await.map_err(|e| e.to_string())?;
            return Ok(true);
        }
        // One untyped parse for the handlers that read a field or two; the typed decodes
        // below are what check the shape.
        let object: serde_json::Value =
            serde_json::from_str(event.data.object.get()).map_err(|e| format!("object: {e}"))?;
        apply(&mut tx, stripe, event, &object).await?;
        let reason = match event.kind.as_str() {
            "invoice.payment_failed" => crate::billing::sync::failure_reason(stripe, &object).await,
            _ => None,
        };
        // The customer hears about it in the same transaction: once, however often Stripe
        // delivers the event.
        crate::email::dunning::on_event(
            &mut tx,
            app_url.trim_end_matches('/'),
            &event.id,
            &event.kind,
            &object,
            reason.as_deref(),
        )
        .await
        .map_err(|e| e.to_string())?;
        ledger::mark_processed(&mut tx, &event.id, claim)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(false)
    }
    .await;
    if let Err(e) = &result {
        // The transaction rolled back; keep a trace of the failed attempt outside it.
        if let Err(ledger_err) = ledger::record_failure(db, event, e).await {
            tracing::error!(event_id = %event.id, error = %ledger_err, "could not record a failed webhook attempt");
        }
    }
    result
}

/// The dispatch table. Types not listed are recorded in the ledger and acknowledged.
async fn apply(
    conn: &mut PgConnection,
    stripe: &Stripe,
    event: &Envelope,
    parsed: &serde_json::Value,
) -> Result<(), String> {
    let object = event.data.object.get();
    match event.kind.as_str() {
        "product.created" | "product.updated" => {
            let product = decode::<stripe_product::Product>(object)?;
            sync::apply_product_event(conn, stripe, &product, event.created)
                .await
                .map_err(|e| e.to_string())
        }
        "price.created" | "price.updated" => {
            let price = decode::<stripe_product::Price>(object)?;
            sync::apply_price_event(conn, stripe, &price, event.created)
                .await
                .map_err(|e| e.to_string())
        }
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted"
        | "customer.subscription.paused"
        | "customer.subscription.resumed"
        | "customer.subscription.trial_will_end" => {
            let sub = decode::<stripe_shared::Subscription>(object)?;
            crate::subscriptions::sync::apply_subscription_event(conn, stripe, &sub, event.created)
                .await
                .map_err(|e| e.to_string())
        }
        "checkout.session.completed" => {
            let session = decode::<stripe_shared::CheckoutSession>(object)?;
            crate::subscriptions::sync::link_checkout_customer(conn, &session)
                .await
                .map_err(|e| e.to_string())
        }
        "invoice.created"
        | "invoice.finalized"
        | "invoice.updated"
        | "invoice.paid"
        | "invoice.payment_succeeded"
        | "invoice.payment_failed"
        | "invoice.payment_action_required"
        | "invoice.voided"
        | "invoice.marked_uncollectible" => {
            crate::billing::sync::apply_invoice_event(conn, stripe, parsed, event.created)
                .await
                .map_err(|e| e.to_string())?;
            // An invoice's outcome changes its subscription (active, past_due, …). Stripe
            // also sends customer.subscription.updated, but in no promised order: store what
            // Stripe says about the subscription now.
            let moves_subscription = matches!(
                event.kind.as_str(),
                "invoice.paid" | "invoice.payment_failed" | "invoice.payment_action_required"
            );
            match invoice_subscription(parsed) {
                Some(id) if moves_subscription => crate::subscriptions::sync::refresh_subscription(
                    conn,
                    stripe,
                    &id,
                    event.created,
                )
                .await
                .map_err(|e| e.to_string()),
                _ => Ok(()),
            }
        }
        "payment_method.attached"
        | "payment_method.updated"
        | "payment_method.automatically_updated" => {
            let pm = decode::<stripe_shared::PaymentMethod>(object)?;
            crate::billing::sync::apply_payment_method(conn, &pm)
                .await
                .map_err(|e| e.to_string())
        }
        "customer.created" | "customer.updated" => {
            let customer = decode::<stripe_shared::Customer>(object)?;
            crate::billing::sync::apply_customer(conn, &customer)
                .await
                .map_err(|e| e.to_string())
        }
        "customer.deleted" => {
            // The link goes; Stripe cancels the customer's subscriptions with their own events.
            // A later customer for the same user needs new idempotency keys.
            let id = object_id(parsed)?;
            sqlx::query(
                "with gone as (delete from customers where stripe_customer_id = $1 returning user_id)
                 update users set stripe_customer_generation = stripe_customer_generation + 1
                 where id in (select user_id from gone)",
            )
            .bind(id)
                .execute(&mut *conn)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
        "product.deleted" => deactivate(conn, "products", parsed, event.created).await,
        "price.deleted" => deactivate(conn, "prices", parsed, event.created).await,
        _ => Ok(()),
    }
}

fn object_id(object: &serde_json::Value) -> Result<&str, String> {
    object["id"]
        .as_str()
        .ok_or_else(|| "the event's object has no id".to_owned())
}

async fn deactivate(
    conn: &mut PgConnection,
    table: &str,
    object: &serde_json::Value,
    as_of: i64,
) -> Result<(), String> {
    sync::deactivate(conn, table, object_id(object)?, as_of)
        .await
        .map_err(|e| e.to_string())
}

/// The subscription an invoice belongs to: `parent.subscription_details.subscription` since
/// API 2025-03-31 (basil), the top-level `subscription` before.
fn invoice_subscription(invoice: &serde_json::Value) -> Option<String> {
    invoice["parent"]["subscription_details"]["subscription"]
        .as_str()
        .or_else(|| invoice["subscription"].as_str())
        .map(str::to_owned)
}

/// Decodes into async-stripe's generated type. A failure means Stripe's shape and ours
/// disagree: answer 500 so the event is retried once that is fixed, not lost.
fn decode<T: miniserde::Deserialize>(object: &str) -> Result<T, String> {
    miniserde::json::from_str(object)
        .map_err(|_| format!("could not decode {}", std::any::type_name::<T>()))
}
