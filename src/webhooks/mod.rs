//! `POST /api/webhooks/stripe`: the only source of truth about money.
//!
//! Verify the signature over the raw body; decode the event once; read from Stripe what the
//! handlers will need (no transaction open yet); then, in one transaction, record the event
//! id in the ledger and apply its change; answer 200 only once that commits. A duplicate
//! finds the id already processed and changes nothing. A failure rolls back and answers 500
//! so Stripe retries. Unknown event types are recorded and acknowledged. Payloads are never
//! logged.

mod dispatch;
pub mod event;
mod ledger;
pub mod replay;
pub mod signature;

use crate::{
    config::StripeMode,
    state::AppState,
    stripe::{freshness::SyncError, Stripe},
};
use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use event::Event;
use sqlx::PgPool;

/// Stripe's events are far below this; anything larger is not from Stripe.
pub const MAX_BODY: usize = 1024 * 1024;

/// A row that changed under a transaction is read from Stripe again and the event applied
/// again, this many times at most before the delivery fails (and Stripe retries later).
const ATTEMPTS: usize = 3;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/api/webhooks/stripe",
        post(receive).layer(DefaultBodyLimit::max(MAX_BODY)),
    )
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("signature: {0}")]
    Signature(#[from] signature::SignatureError),
    #[error("payload is not a Stripe event")]
    NotAnEvent,
    #[error("livemode does not match this deployment")]
    WrongMode,
    #[error("processing failed: {0}")]
    Processing(#[from] SyncError),
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

/// Whether an event changed anything here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    AlreadyProcessed,
}

#[tracing::instrument(name = "webhook", skip_all, fields(event_id, event_type))]
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
    let event = Event::decode(&body).map_err(|_| WebhookError::NotAnEvent)?;
    let span = tracing::Span::current();
    span.record("event_id", event.id.as_str());
    span.record("event_type", event.kind.as_str());
    if event.livemode != (state.config.stripe_mode == StripeMode::Live) {
        tracing::warn!("refused a webhook from the other mode");
        return Err(WebhookError::WrongMode);
    }
    let outcome = process(
        &state.db,
        &state.stripe,
        state.config.app_url.as_str(),
        &event,
    )
    .await
    .inspect_err(|e| tracing::error!(error = %e, "webhook processing failed"))?;
    let duplicate = outcome == Outcome::AlreadyProcessed;
    tracing::info!(duplicate, "webhook accepted");
    Ok(Json(
        serde_json::json!({ "received": true, "duplicate": duplicate }),
    ))
}

/// Records and applies one event. The route and `replay-events` both come through here.
pub async fn process(
    db: &PgPool,
    stripe: &Stripe,
    app_url: &str,
    event: &Event,
) -> Result<Outcome, SyncError> {
    let app_url = app_url.trim_end_matches('/');
    let mut result = Err(SyncError::Decode("no attempt was made"));
    for attempt in 0..ATTEMPTS {
        result = attempt_once(db, stripe, app_url, event, attempt > 0).await;
        match &result {
            Err(SyncError::Stale { table, id }) => {
                tracing::info!(table, id, "a row changed meanwhile; reading Stripe again");
            }
            _ => break,
        }
    }
    if let Err(e) = &result {
        // The transaction rolled back; keep a trace of the failed attempt outside it.
        if let Err(ledger_err) = ledger::record_failure(db, event, &e.to_string()).await {
            tracing::error!(error = %ledger_err, "could not record a failed webhook attempt");
        }
    }
    result
}

async fn attempt_once(
    db: &PgPool,
    stripe: &Stripe,
    app_url: &str,
    event: &Event,
    again: bool,
) -> Result<Outcome, SyncError> {
    // A duplicate needs no Stripe reads; the claim below still decides under the row lock.
    if ledger::is_processed(db, &event.id).await? {
        return Ok(Outcome::AlreadyProcessed);
    }
    let read = dispatch::read_ahead(db, stripe, event, again).await?;
    let mut tx = db.begin().await?;
    let claim = ledger::claim(&mut tx, event).await?;
    if claim == ledger::Claim::AlreadyProcessed {
        tx.commit().await?;
        return Ok(Outcome::AlreadyProcessed);
    }
    dispatch::apply(&mut tx, app_url, event, &read).await?;
    ledger::mark_processed(&mut tx, &event.id, claim).await?;
    tx.commit().await?;
    Ok(Outcome::Applied)
}
