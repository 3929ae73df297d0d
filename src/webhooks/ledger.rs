//! The event ledger: each Stripe event id is processed once.

use super::event::Event;
use crate::stripe::freshness::Claim;
use sqlx::{PgConnection, PgPool};
use std::sync::LazyLock;

/// Whether the event was already processed: a plain read, so a duplicate costs no Stripe
/// reads. [`claim`] still decides, under the row lock.
pub async fn is_processed(db: &PgPool, id: &str) -> sqlx::Result<bool> {
    let processed: Option<bool> =
        sqlx::query_scalar("select processed_at is not null from stripe_events where id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(processed == Some(true))
}

/// The event's claim in the ledger, for a statement to carry ([`Claim`]).
pub fn claim_of(event: &Event) -> Claim<'_> {
    Claim {
        id: &event.id,
        kind: &event.kind,
        created: event.created,
        livemode: event.livemode,
        api_version: event.api_version.as_deref(),
    }
}

/// Records the event as processed in the caller's transaction, in a statement of its own:
/// true when this transaction got it, false when it was already processed ([`Claim`]).
pub async fn claim(conn: &mut PgConnection, claim: Claim<'_>) -> sqlx::Result<bool> {
    static CLAIM: LazyLock<String> = LazyLock::new(|| {
        format!(
            "with {} select exists (select 1 from claimed)",
            Claim::cte(1)
        )
    });
    let (claimed,): (bool,) = claim
        .bind(sqlx::query_as(CLAIM.as_str()))
        .fetch_one(conn)
        .await?;
    Ok(claimed)
}

/// Outside the rolled-back transaction: count the attempt and keep the error (never the payload).
pub async fn record_failure(db: &PgPool, event: &Event, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "insert into stripe_events (id, type, created, livemode, api_version, last_error)
         values ($1, $2, to_timestamp($3), $4, $5, $6)
         on conflict (id) do update set attempts = stripe_events.attempts + 1, last_error = excluded.last_error",
    )
    .bind(&event.id)
    .bind(&event.kind)
    .bind(event.created as f64)
    .bind(event.livemode)
    .bind(&event.api_version)
    .bind(error)
    .execute(db)
    .await?;
    Ok(())
}
