//! `POST /api/webhooks/stripe`: the only source of truth about money.
//!
//! Verify the signature over the raw body; decode the event once; then, in one transaction,
//! record the event id in the ledger and apply its change; answer 200 only once that
//! commits. When the event alone cannot decide (a snapshot no newer than the row), the
//! transaction is dropped, Stripe is read with no transaction open, and the event applied
//! again with what Stripe said. A duplicate
//! finds the id already processed and changes nothing. A failure rolls back and answers 500
//! so Stripe retries. Unknown event types are recorded and acknowledged. Payloads are never
//! logged.

mod dispatch;
pub mod event;
mod ledger;
pub mod register;
pub mod replay;
pub mod signature;
mod turns;

pub use turns::Turns;

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

/// Transactions per event at most: the first, then one after each read from Stripe (a
/// price's product, then the price; or a row that moved while Stripe was read). After that
/// the delivery fails and Stripe retries later.
const ATTEMPTS: usize = 4;

/// How often one event's transaction is run again after Postgres aborted it for a deadlock.
const CONFLICT_RETRIES: usize = 3;

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

/// What processing an event needs to know about this deployment.
#[derive(Debug, Clone, Copy)]
pub struct Deployment<'a> {
    /// `APP_URL`, for links in email (with or without the trailing slash).
    pub app_url: &'a str,
    /// `GRACE_DAYS`: how long a failed payment keeps access (and a license valid).
    pub grace_days: u32,
    /// Sandbox mode following test clocks, where "now" for a customer is their clock's
    /// (`stripe::clock`).
    pub sandbox: bool,
}

impl<'a> Deployment<'a> {
    pub fn of(config: &'a crate::config::Config) -> Self {
        Self {
            app_url: config.app_url.as_str(),
            grace_days: config.grace_days,
            sandbox: crate::stripe::clock::follows_clocks(config),
        }
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
        Deployment::of(&state.config),
        &state.webhook_turns,
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
    deployment: Deployment<'_>,
    turns: &Turns,
    event: &Event,
) -> Result<Outcome, SyncError> {
    let deployment = Deployment {
        app_url: deployment.app_url.trim_end_matches('/'),
        ..deployment
    };
    let result = apply_with_reads(db, stripe, deployment, turns, event).await;
    if let Err(e) = &result {
        // The transaction rolled back; keep a trace of the failed attempt outside it.
        if let Err(ledger_err) = ledger::record_failure(db, event, &e.to_string()).await {
            tracing::error!(error = %ledger_err, "could not record a failed webhook attempt");
        }
    }
    result
}

async fn apply_with_reads(
    db: &PgPool,
    stripe: &Stripe,
    deployment: Deployment<'_>,
    turns: &Turns,
    event: &Event,
) -> Result<Outcome, SyncError> {
    // Held from a read of Stripe until the event is applied with what was read, or until the
    // next read (given back first: a task never holds two turns).
    let mut turn = None;
    let mut reads = dispatch::Reads::default();
    if dispatch::needs_reads_first(event, deployment) {
        // A duplicate needs no Stripe reads; the claim below still decides.
        if ledger::is_processed(db, &event.id).await? {
            return Ok(Outcome::AlreadyProcessed);
        }
        if let Some((table, id)) = dispatch::read_first_object(event) {
            turn = Some(turns.take(table, &id).await);
        }
        reads = dispatch::read_first(db, stripe, deployment, event).await?;
    }
    let (mut reads_done, mut conflicts) = (1, 0);
    loop {
        match apply_once(db, deployment, event, &reads).await {
            Err(SyncError::NeedsCurrent { table, id }) if reads_done < ATTEMPTS => {
                reads_done += 1;
                drop(turn.take());
                // The row's version is taken once this turn begins (in `read_current`): the
                // event before this one in line may have written it, and this read comes after.
                turn = Some(turns.take(table, &id).await);
                tracing::debug!(table, id, "reading Stripe's current copy");
                dispatch::read_current(db, stripe, &mut reads, table, &id).await?;
            }
            // Concurrent events can lock the same rows in opposite orders (a price's upsert
            // takes a key-share lock on its product while another event updates that
            // product); Postgres breaks the tie by failing one. Nothing was written, and
            // running it again at once succeeds: no need to make Stripe retry in an hour.
            Err(SyncError::Database(e)) if conflicts < CONFLICT_RETRIES && is_conflict(&e) => {
                conflicts += 1;
                tracing::debug!(error = %e, "transaction conflict; applying the event again");
                tokio::time::sleep(std::time::Duration::from_millis(5 * conflicts as u64)).await;
            }
            done => return done,
        }
    }
}

/// Deadlock or serialization failure: the transaction was rolled back and may simply run again.
fn is_conflict(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "40P01" || code == "40001")
}

/// One transaction: claim the event in the ledger (marked processed, so claim and mark
/// commit together), apply its change, commit. A duplicate rolls back whatever ran before
/// its claim.
async fn apply_once(
    db: &PgPool,
    deployment: Deployment<'_>,
    event: &Event,
    reads: &dispatch::Reads,
) -> Result<Outcome, SyncError> {
    let mut tx = db.begin().await?;
    let outcome = dispatch::claim_and_apply(&mut tx, deployment, event, reads).await?;
    if outcome == Outcome::Applied {
        tx.commit().await?;
    }
    Ok(outcome)
}
