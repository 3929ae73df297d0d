//! Replaying events the app may have missed (an outage, a bad deploy, a disabled endpoint):
//! list them from Stripe and feed each through the same processing as the webhook route.
//! The ledger makes this safe to run at any time: processed events are skipped.

use super::{event::Event, process, Deployment, Outcome, Turns};
use crate::stripe::Stripe;
use sqlx::PgPool;
use stripe_core::event::ListEvent;
use stripe_types::RangeQueryTs;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    pub seen: usize,
    pub applied: usize,
    pub already_processed: usize,
    pub failed: usize,
}

/// Events created at or after `since` (unix seconds), oldest first. With
/// `only_undelivered`, only those Stripe could not deliver to some endpoint.
pub async fn replay_events(
    db: &PgPool,
    stripe: &Stripe,
    deployment: Deployment<'_>,
    since: i64,
    only_undelivered: bool,
) -> Result<ReplayReport, stripe::StripeError> {
    let mut list = ListEvent::new()
        .created(RangeQueryTs::gte(since))
        .limit(100);
    if only_undelivered {
        list = list.delivery_success(false);
    }
    let mut events: Vec<stripe_core::Event> = stripe.all(list.paginate()).await?;
    // Stripe lists newest first; apply in the order things happened.
    events.reverse();
    let mut report = ReplayReport {
        seen: events.len(),
        ..Default::default()
    };
    // One event at a time: nothing here waits for a turn, but processing takes them.
    let turns = Turns::default();
    for listed in events {
        let body = serde_json::json!({
            "id": listed.id.as_str(),
            "type": listed.type_.to_string(),
            "created": listed.created,
            "livemode": listed.livemode,
            "api_version": listed.api_version.map(|v| v.to_string()),
            "data": { "object": serde_json::value::RawValue::from_string(
                miniserde::json::to_string(&listed.data.object),
            )
            .map_err(|e| stripe::StripeError::ClientError(e.to_string()))? },
        });
        let event = Event::decode(body.to_string().as_bytes())
            .map_err(|e| stripe::StripeError::ClientError(e.to_string()))?;
        match process(db, stripe, deployment, &turns, &event).await {
            Ok(Outcome::AlreadyProcessed) => report.already_processed += 1,
            Ok(Outcome::Applied) => report.applied += 1,
            Err(e) => {
                tracing::error!(event_id = %event.id, error = %e, "replay could not apply an event");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}
