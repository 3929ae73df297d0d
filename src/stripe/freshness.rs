//! The freshness rule every table kept from Stripe's snapshots follows (catalog,
//! subscriptions, invoices), and the one error the webhook side returns.
//!
//! Stripe delivers events at least once and in no promised order, and `event.created` has
//! one-second resolution. Each row remembers the Stripe time of the snapshot it holds
//! (`stripe_as_of`); a snapshot replaces it only when strictly newer. On a tie, or an
//! older-looking event, the payload cannot decide: the app asks Stripe for the object as it
//! is now. That read happens before the transaction opens, so no row lock is held while
//! Stripe answers; under the lock, the rule decides again which copy to write.

use sqlx::{PgConnection, PgExecutor};

/// Why applying a webhook's change failed. Every variant answers 5xx, so Stripe retries.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("stripe: {0}")]
    Stripe(#[from] stripe::StripeError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("could not decode {0}")]
    Decode(&'static str),
    /// A row changed between the read-ahead and the transaction, so the event's snapshot
    /// is no longer newer and Stripe's current copy was not fetched: read again.
    #[error("{table} {id} changed meanwhile; it must be read from Stripe again")]
    Stale { table: &'static str, id: String },
}

/// How a snapshot taken at `incoming` relates to a row that reflects `stored`. Stripe's
/// timestamps have one-second resolution, so two changes in one second look equal: a tie
/// cannot be settled from the payload, only by asking Stripe for the object as it is now.
#[derive(Debug, PartialEq, Eq)]
pub enum Freshness {
    Newer,
    Tie,
    Older,
}

pub fn freshness(stored: Option<i64>, incoming: i64) -> Freshness {
    match stored {
        None => Freshness::Newer,
        Some(s) if incoming > s => Freshness::Newer,
        Some(s) if incoming == s => Freshness::Tie,
        Some(_) => Freshness::Older,
    }
}

/// The Stripe time a row reflects. Inside a transaction (`lock`) the row stays locked until
/// it ends, so concurrent events for the same object apply one after the other.
pub async fn stored_as_of(
    db: impl PgExecutor<'_>,
    table: &'static str,
    id: &str,
    lock: bool,
) -> sqlx::Result<Option<i64>> {
    let lock = if lock { " for update" } else { "" };
    sqlx::query_scalar(&format!(
        "select stripe_as_of from {table} where id = $1{lock}"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Stripe's word on an object, read before the transaction: the object as it is now, or
/// gone (404).
#[derive(Debug, Clone)]
pub enum Current<T> {
    Found(Box<T>),
    Gone,
}

/// Reads the object from Stripe when the event's snapshot may not be the newest: when the
/// row already reflects the event's second or later (or `always`, after a [`SyncError::Stale`]).
/// No lock is held meanwhile.
pub async fn read_ahead<T, F>(
    db: &sqlx::PgPool,
    table: &'static str,
    id: &str,
    as_of: i64,
    always: bool,
    fetch: F,
) -> Result<Option<Current<T>>, SyncError>
where
    F: std::future::Future<Output = Result<T, stripe::StripeError>>,
{
    if !always && freshness(stored_as_of(db, table, id, false).await?, as_of) == Freshness::Newer {
        return Ok(None);
    }
    match fetch.await {
        Ok(current) => Ok(Some(Current::Found(Box::new(current)))),
        Err(stripe::StripeError::Stripe(_, 404)) => Ok(Some(Current::Gone)),
        Err(e) => Err(e.into()),
    }
}

/// Which copy to write, decided under the row lock.
pub enum Write<'a, T> {
    /// The event's snapshot is strictly newer than the row.
    Snapshot(&'a T),
    /// Stripe's current copy (the snapshot tied or was older).
    Current(&'a T),
    /// Stripe no longer has the object.
    Gone,
}

/// Locks the row and applies the freshness rule to the event's `snapshot` and what
/// [`read_ahead`] found.
pub async fn choose<'a, T>(
    conn: &mut PgConnection,
    table: &'static str,
    id: &str,
    as_of: i64,
    snapshot: &'a T,
    current: Option<&'a Current<T>>,
) -> Result<Write<'a, T>, SyncError> {
    match (
        freshness(stored_as_of(&mut *conn, table, id, true).await?, as_of),
        current,
    ) {
        (Freshness::Newer, _) => Ok(Write::Snapshot(snapshot)),
        (_, Some(Current::Found(current))) => Ok(Write::Current(current)),
        (_, Some(Current::Gone)) => Ok(Write::Gone),
        (_, None) => Err(SyncError::Stale {
            table,
            id: id.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::{freshness, Freshness};

    #[test]
    fn only_strictly_newer_snapshots_apply_directly() {
        assert_eq!(freshness(None, 100), Freshness::Newer);
        assert_eq!(freshness(Some(99), 100), Freshness::Newer);
        // Same second: could be before or after what we have; ask Stripe.
        assert_eq!(freshness(Some(100), 100), Freshness::Tie);
        assert_eq!(freshness(Some(101), 100), Freshness::Older);
    }
}
