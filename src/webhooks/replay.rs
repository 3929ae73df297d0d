//! Replaying events the app may have missed (an outage, a bad deploy, a disabled endpoint):
//! list them from Stripe and feed each through the same processing as the webhook route.
//! The ledger makes this safe to run at any time: processed events are skipped.

use super::{process, Envelope, EnvelopeData};
use crate::stripe::Stripe;
use futures::TryStreamExt;
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
    app_url: &str,
    since: i64,
    only_undelivered: bool,
) -> Result<ReplayReport, stripe::StripeError> {
    let mut list = ListEvent::new()
        .created(RangeQueryTs::gte(since))
        .limit(100);
    if only_undelivered {
        list = list.delivery_success(false);
    }
    let mut events: Vec<stripe_core::Event> = list
        .paginate()
        .stream(stripe.client())
        .try_collect()
        .await?;
    // Stripe lists newest first; apply in the order things happened.
    events.reverse();
    let mut report = ReplayReport {
        seen: events.len(),
        ..Default::default()
    };
    for event in events {
        let object = miniserde::json::to_string(&event.data.object);
        let envelope = Envelope {
            id: event.id.as_str().to_owned(),
            kind: event.type_.to_string(),
            created: event.created,
            livemode: event.livemode,
            api_version: event.api_version.map(|v| v.to_string()),
            data: EnvelopeData {
                object: serde_json::value::RawValue::from_string(object)
                    .map_err(|e| stripe::StripeError::ClientError(e.to_string()))?,
            },
        };
        match process(db, stripe, app_url, &envelope).await {
            Ok(true) => report.already_processed += 1,
            Ok(false) => report.applied += 1,
            Err(e) => {
                tracing::error!(event_id = %envelope.id, error = %e, "replay could not apply an event");
                report.failed += 1;
            }
        }
    }
    Ok(report)
}
