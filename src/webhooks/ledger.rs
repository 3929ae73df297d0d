//! The event ledger: each Stripe event id is processed once.

use super::event::Event;
use sqlx::{PgConnection, PgPool};

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

/// Records the event as processed in the caller's transaction, in one statement: true when
/// this transaction got it (first sight, or a retry of a failed attempt), false when it was
/// already processed. The row stays locked until the transaction ends, so a concurrent
/// delivery of the same id waits, then finds it processed; a rollback takes the claim back
/// with the change.
pub async fn claim(conn: &mut PgConnection, event: &Event) -> sqlx::Result<bool> {
    let claimed = sqlx::query(
        "insert into stripe_events (id, type, created, livemode, api_version, processed_at)
         values ($1, $2, to_timestamp($3), $4, $5, now())
         on conflict (id) do update set processed_at = now(), attempts = stripe_events.attempts + 1,
             last_error = null
         where stripe_events.processed_at is null",
    )
    .bind(&event.id)
    .bind(&event.kind)
    .bind(event.created as f64)
    .bind(event.livemode)
    .bind(&event.api_version)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(claimed == 1)
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
