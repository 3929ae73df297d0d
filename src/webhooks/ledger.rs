//! The event ledger: each Stripe event id is processed once.

use super::event::Event;
use sqlx::{PgConnection, PgPool};

#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// First sight of this event.
    New,
    /// Seen before but not processed (an earlier attempt failed): process now.
    Retry,
    AlreadyProcessed,
}

/// Whether the event was already processed: a plain read, so a duplicate delivery costs no
/// Stripe reads. [`claim`] still decides, under the row lock.
pub async fn is_processed(db: &PgPool, id: &str) -> sqlx::Result<bool> {
    let processed: Option<bool> =
        sqlx::query_scalar("select processed_at is not null from stripe_events where id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(processed == Some(true))
}

/// Records the event (or finds it) and locks its row for this transaction. A concurrent
/// delivery of the same id waits on the row, then sees it processed.
pub async fn claim(conn: &mut PgConnection, event: &Event) -> sqlx::Result<Claim> {
    let inserted = sqlx::query(
        "insert into stripe_events (id, type, created, livemode, api_version)
         values ($1, $2, to_timestamp($3), $4, $5)
         on conflict (id) do nothing",
    )
    .bind(&event.id)
    .bind(&event.kind)
    .bind(event.created as f64)
    .bind(event.livemode)
    .bind(&event.api_version)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let processed: Option<time::OffsetDateTime> =
        sqlx::query_scalar("select processed_at from stripe_events where id = $1 for update")
            .bind(&event.id)
            .fetch_one(&mut *conn)
            .await?;
    Ok(match (inserted, processed) {
        (_, Some(_)) => Claim::AlreadyProcessed,
        (1, None) => Claim::New,
        _ => Claim::Retry,
    })
}

pub async fn mark_processed(conn: &mut PgConnection, id: &str, claim: Claim) -> sqlx::Result<()> {
    let extra_attempt = i32::from(claim == Claim::Retry);
    sqlx::query("update stripe_events set processed_at = now(), attempts = attempts + $2, last_error = null where id = $1")
        .bind(id)
        .bind(extra_attempt)
        .execute(conn)
        .await?;
    Ok(())
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
