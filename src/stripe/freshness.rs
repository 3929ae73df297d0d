//! The freshness rule every table kept from Stripe's snapshots follows (catalog,
//! subscriptions, invoices), and the one error the webhook side returns.
//!
//! Stripe delivers events at least once and in no promised order, and `event.created` has
//! one-second resolution. Each row remembers the Stripe time of the snapshot it holds
//! (`stripe_as_of`); a snapshot replaces it only when strictly newer, which one conditional
//! upsert decides. When it does not write (a tie, or an older-looking event), the payload
//! cannot decide: the transaction is dropped, the app asks Stripe for the object as it is
//! now (no row locked meanwhile), and writes that in a second transaction, provided the row
//! has not moved in between. "Moved" is judged by the row's version (Postgres's `xmin`, new
//! on every committed write), not by its Stripe time: two writes within one second of
//! Stripe time leave that time equal, and a copy read before the second would overwrite it.

use sqlx::{PgConnection, PgExecutor};

/// Why applying a webhook's change did not complete. All but [`SyncError::NeedsCurrent`]
/// answer 5xx, so Stripe retries.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("stripe: {0}")]
    Stripe(#[from] stripe::StripeError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("could not decode {0}")]
    Decode(&'static str),
    /// The event's snapshot is not newer than the row, or the row moved while Stripe was
    /// read: Stripe's current copy must be read, outside the transaction (the row's
    /// [`row_version`] taken just before), and the event applied again.
    #[error("{table} {id} needs Stripe's current copy")]
    NeedsCurrent { table: &'static str, id: String },
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
/// it ends, so concurrent writes to the same object apply one after the other.
pub async fn stored_as_of(
    db: impl PgExecutor<'_>,
    table: &'static str,
    id: &str,
    lock: bool,
) -> sqlx::Result<Option<i64>> {
    read_of_row(db, "stripe_as_of", table, id, lock).await
}

/// Which committed write a row is (`None`: there is no row): Postgres's `xmin`, the id of
/// the transaction that wrote this version of it. A copy of the object read from Stripe
/// after this was taken may be written only while it is unchanged. With `lock`, the row
/// stays locked until the transaction ends.
pub async fn row_version(
    db: impl PgExecutor<'_>,
    table: &'static str,
    id: &str,
    lock: bool,
) -> sqlx::Result<Option<i64>> {
    read_of_row(db, "xmin::text::bigint", table, id, lock).await
}

/// One number of the row `id` (`None`: no such row), locking it when asked.
async fn read_of_row(
    db: impl PgExecutor<'_>,
    what: &'static str,
    table: &'static str,
    id: &str,
    lock: bool,
) -> sqlx::Result<Option<i64>> {
    let lock = if lock { " for update" } else { "" };
    sqlx::query_scalar(&format!("select {what} from {table} where id = $1{lock}"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The end of a [`Snapshot::write`] upsert's `on conflict … do update`: with
/// `only_if_newer`, the update happens only when the row reflects an older Stripe time.
pub fn newer_only(table: &str, only_if_newer: bool) -> String {
    if only_if_newer {
        format!(" where {table}.stripe_as_of < excluded.stripe_as_of")
    } else {
        String::new()
    }
}

/// An event's claim in the webhook ledger (`stripe_events`), as a CTE named `claimed` that a
/// statement can carry: one row when this transaction got the event (first sight, or a
/// retry of a failed attempt), none when it was already processed. The row stays locked
/// until the transaction ends, so a concurrent delivery of the same id waits, then finds it
/// processed; a rollback takes the claim back with the change. Carried by an event's first
/// write, the claim costs no round trip of its own.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<&'a str>,
}

impl<'a> Claim<'a> {
    /// `claimed as (…)`, with its five values bound from `$first` on by [`Claim::bind`].
    pub fn cte(first: usize) -> String {
        let [id, kind, created, livemode, version] = std::array::from_fn(|i| first + i);
        format!(
            "claimed as (
                 insert into stripe_events (id, type, created, livemode, api_version, processed_at)
                 values (${id}, ${kind}, to_timestamp(${created}), ${livemode}, ${version}, now())
                 on conflict (id) do update set processed_at = now(), attempts = stripe_events.attempts + 1,
                     last_error = null
                 where stripe_events.processed_at is null
                 returning 1)"
        )
    }

    /// Binds the claim's values, after the statement's own.
    pub fn bind<'q, O>(
        &self,
        query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>
    where
        'a: 'q,
    {
        query
            .bind(self.id)
            .bind(self.kind)
            .bind(self.created as f64)
            .bind(self.livemode)
            .bind(self.api_version)
    }
}

/// What a write that carried the event's [`Claim`] found.
#[derive(Debug)]
pub enum Claimed<T> {
    /// This transaction got the event; the write's own answer.
    Got(T),
    /// The event was already processed: nothing was written.
    AlreadyProcessed,
}

/// An object the app keeps a row of, written from Stripe's snapshots. Crate-private: its
/// futures are only ever awaited on concrete types, where they are `Send`.
pub(crate) trait Snapshot {
    const TABLE: &'static str;

    /// What a write hands back about the row it wrote (`()` for most tables; a
    /// subscription's state for working out its access and license without a second read).
    type Written;

    fn row_id(&self) -> String;

    /// Upserts the row as of Stripe time `as_of`. With `only_if_newer`, an existing row is
    /// changed only when it reflects an older time (`where stripe_as_of < $as_of`). Returns
    /// what it wrote, `None` when it did not write.
    async fn write(
        &self,
        conn: &mut PgConnection,
        as_of: i64,
        only_if_newer: bool,
    ) -> sqlx::Result<Option<Self::Written>>;

    /// Stripe no longer has the object (a 404 when it was read).
    async fn gone(conn: &mut PgConnection, id: &str, as_of: i64) -> sqlx::Result<()>;
}

/// Stripe's word on an object, read between the two transactions.
#[derive(Debug, Clone)]
pub enum Current<T> {
    Found(Box<T>),
    Gone,
}

impl<T> Current<T> {
    /// A read's result: the object, or gone on a 404.
    pub fn from_read(read: Result<T, stripe::StripeError>) -> Result<Self, SyncError> {
        match read {
            Ok(object) => Ok(Self::Found(Box::new(object))),
            Err(stripe::StripeError::Stripe(_, 404)) => Ok(Self::Gone),
            Err(e) => Err(e.into()),
        }
    }
}

/// Stripe's current copy, the [`row_version`] taken before it was read, and when it was read.
#[derive(Debug, Clone)]
pub struct Fetched<T> {
    pub current: Current<T>,
    pub seen: Option<i64>,
    /// A Stripe time no earlier than the read ([`read_time`]): the copy reflects every event
    /// created until then, so it is stored as of this time, not of the (older) event that
    /// asked for it. Stored as of the event, a snapshot emitted before the read but delivered
    /// after it would look newer and undo it.
    pub read_at: i64,
}

/// The time to store a copy read from Stripe just now as of: the next whole second, and one
/// more for a server clock slightly behind Stripe's. Too late only costs a read (an event
/// then looks older and Stripe is asked again); too early lets a stale snapshot through.
pub fn read_time() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() + 2
}

/// Whether an upsert wrote its row, as [`Snapshot::write`] says it for tables that hand
/// nothing back.
pub fn wrote(result: &sqlx::postgres::PgQueryResult) -> Option<()> {
    (result.rows_affected() == 1).then_some(())
}

/// Applies an event's `snapshot` taken at `as_of` under the freshness rule. Without
/// `fetched`, the snapshot is written only if strictly newer (one statement), else this
/// asks for Stripe's current copy. With it, the current copy is written, unless the row
/// moved since it was read (another version: then it asks again).
pub(crate) async fn apply<T: Snapshot>(
    conn: &mut PgConnection,
    snapshot: &T,
    as_of: i64,
    fetched: Option<&Fetched<T>>,
) -> Result<(), SyncError> {
    apply_returning(conn, snapshot, as_of, fetched).await?;
    Ok(())
}

/// What a snapshot the freshness rule refused (no newer than the row `id`) asks for:
/// Stripe's current copy.
pub(crate) fn not_newer(table: &'static str, id: &str) -> SyncError {
    SyncError::NeedsCurrent {
        table,
        id: id.to_owned(),
    }
}

/// [`apply`], handing back what was written (`None` when Stripe no longer has the object).
pub(crate) async fn apply_returning<T: Snapshot>(
    conn: &mut PgConnection,
    snapshot: &T,
    as_of: i64,
    fetched: Option<&Fetched<T>>,
) -> Result<Option<T::Written>, SyncError> {
    let id = snapshot.row_id();
    match fetched {
        None => match snapshot.write(conn, as_of, true).await? {
            Some(written) => Ok(Some(written)),
            None => Err(not_newer(T::TABLE, &id)),
        },
        Some(Fetched {
            current,
            seen,
            read_at,
        }) => {
            let version = row_version(&mut *conn, T::TABLE, &id, true).await?;
            if version != *seen {
                return Err(not_newer(T::TABLE, &id));
            }
            match current {
                Current::Found(object) => {
                    Ok(object.write(conn, as_of.max(*read_at), false).await?)
                }
                Current::Gone => {
                    T::gone(conn, &id, as_of).await?;
                    Ok(None)
                }
            }
        }
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
