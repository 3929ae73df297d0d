//! Subscription rows, written only from Stripe's snapshots (webhooks), under the same
//! freshness rule as the catalog.

use super::entitlement::{access_until, SubscriptionState};
use crate::{
    stripe::freshness::{
        apply_returning, newer_only, not_newer, Claim, Claimed, Current, Fetched, Snapshot,
        SyncError,
    },
    webhooks::event::id_of_expandable,
};
use sqlx::PgConnection;
use std::sync::LazyLock;
use stripe_shared::Subscription;
use time::OffsetDateTime;

/// `customer.subscription.*`: links its customer to our user when the metadata names one,
/// then stores the subscription under the freshness rule. Hands back the row as written,
/// locked (`None` if Stripe no longer has it: then [`lock`] reads what is here).
pub async fn apply_subscription(
    conn: &mut PgConnection,
    sub: &Subscription,
    as_of: i64,
    current: Option<&Fetched<Subscription>>,
) -> Result<Option<Locked>, SyncError> {
    // First, so that the write's answer names the user (an event that beats
    // `checkout.session.completed` links the customer). Nothing here depends on freshness:
    // the metadata is ours, set when the subscription was made.
    link_customer(conn, sub).await?;
    apply_returning(conn, sub, as_of, current).await
}

/// [`apply_subscription`] for an event's first attempt (nothing read from Stripe yet), with
/// the event's ledger claim carried by the upsert: an event already processed writes nothing
/// (the link before it is rolled back with the transaction). A snapshot no newer than the
/// row asks for Stripe's current copy, as [`apply_returning`] does.
pub async fn apply_subscription_claiming(
    conn: &mut PgConnection,
    sub: &Subscription,
    as_of: i64,
    claim: Claim<'_>,
) -> Result<Claimed<Locked>, SyncError> {
    link_customer(conn, sub).await?;
    match write_claiming(conn, sub, as_of, claim).await? {
        Claimed::Got(Some(row)) => Ok(Claimed::Got(row)),
        Claimed::Got(None) => Err(not_newer(Subscription::TABLE, sub.id.as_str())),
        Claimed::AlreadyProcessed => Ok(Claimed::AlreadyProcessed),
    }
}

/// Stores a subscription as Stripe has it now (read for an event that names it but does
/// not carry it) as of that event, unless the row moved since it was read (then Stripe is
/// asked again); hands back the row as written, locked (`None` if Stripe no longer has it).
pub async fn write_current(
    conn: &mut PgConnection,
    current: &Fetched<Subscription>,
    as_of: i64,
) -> Result<Option<Locked>, SyncError> {
    let Current::Found(sub) = &current.current else {
        return Ok(None);
    };
    link_customer(conn, sub).await?;
    apply_returning(conn, sub.as_ref(), as_of, Some(current)).await
}

/// `reconcile`: a subscription as Stripe listed it at `as_of`, written only over a row that
/// reflects an earlier second (a webhook of the same second or later already says as much
/// or more), then linked and its access worked out, as an event would leave it.
pub async fn reconcile_subscription(
    conn: &mut PgConnection,
    sub: &Subscription,
    as_of: i64,
    grace_days: u32,
) -> Result<(), SyncError> {
    if sub.write(conn, as_of, true).await?.is_some() {
        link_customer(conn, sub).await?;
        refresh_access_of(conn, sub.id.as_str(), grace_days).await?;
    }
    Ok(())
}

/// A subscription row locked for the caller's transaction, with what its access and its
/// license depend on: as a webhook's upsert wrote it (the upsert holds the lock and hands
/// the row back), or read by [`lock`] (`for update`). The row lock is what serialises
/// everything that works out access or settles the license (webhooks, `reconcile`, the
/// grace sweep): each reads after the lock is granted, so it sees the last committed state.
#[derive(Debug, Clone)]
pub struct Locked {
    pub id: String,
    pub state: SubscriptionState,
    pub access_until: Option<OffsetDateTime>,
    pub product_id: Option<String>,
    /// The user its customer is linked to, if any.
    pub user_id: Option<uuid::Uuid>,
    /// The product's machine limit for a license (product metadata).
    pub max_activations: Option<i32>,
}

/// A [`Locked`]'s columns, as the upsert's `returning` and [`lock`] list them.
type LockedRow = (
    String,
    Option<OffsetDateTime>,
    bool,
    Option<OffsetDateTime>,
    Option<OffsetDateTime>,
    Option<String>,
    Option<uuid::Uuid>,
    Option<i32>,
);

impl Locked {
    fn from_row(id: &str, row: LockedRow) -> Self {
        let (
            status,
            end,
            cancel_at_period_end,
            past_due_since,
            access_until,
            product_id,
            user_id,
            max,
        ) = row;
        Self {
            id: id.to_owned(),
            state: SubscriptionState {
                status,
                current_period_end: end.map(OffsetDateTime::unix_timestamp),
                cancel_at_period_end,
                past_due_since: past_due_since.map(OffsetDateTime::unix_timestamp),
            },
            access_until,
            product_id,
            user_id,
            max_activations: max,
        }
    }
}

/// Locks the subscription `id` and reads it (`None`: there is no such row), for what does
/// not write it first (a customer just linked, the grace sweep, `reconcile`).
pub async fn lock(conn: &mut PgConnection, id: &str) -> sqlx::Result<Option<Locked>> {
    let row: Option<LockedRow> = sqlx::query_as(
        "select s.status, s.current_period_end, s.cancel_at_period_end, s.past_due_since,
                s.access_until, s.product_id, c.user_id, p.max_activations
         from subscriptions s
         left join customers c on c.stripe_customer_id = s.stripe_customer_id
         left join products p on p.id = s.product_id
         where s.id = $1
         for update of s",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| Locked::from_row(id, row)))
}

/// Works out `access_until` for the locked row as it now is (the entitlement rule, with this
/// deployment's grace period), for checks that must be one SQL statement. Written only when
/// it changed: most events leave it as it was.
pub async fn refresh_access(
    conn: &mut PgConnection,
    row: &Locked,
    grace_days: u32,
) -> sqlx::Result<()> {
    let until = access_until(&row.state, i64::from(grace_days) * 86_400).map(|t| {
        OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::PrimitiveDateTime::MAX.assume_utc())
    });
    // Whole seconds: Postgres keeps microseconds, and the far-future bound has nanoseconds.
    let seconds = |t: Option<OffsetDateTime>| t.map(OffsetDateTime::unix_timestamp);
    if seconds(until) == seconds(row.access_until) {
        return Ok(());
    }
    sqlx::query("update subscriptions set access_until = $2 where id = $1")
        .bind(&row.id)
        .bind(until)
        .execute(conn)
        .await?;
    Ok(())
}

/// [`lock`] then [`refresh_access`], for a subscription named by id.
pub async fn refresh_access_of(
    conn: &mut PgConnection,
    subscription: &str,
    grace_days: u32,
) -> sqlx::Result<()> {
    if let Some(row) = lock(conn, subscription).await? {
        refresh_access(conn, &row, grace_days).await?;
    }
    Ok(())
}

/// Works out `access_until` for every live subscription that has none yet (rows written
/// before the column existed): at start-up, so metering never refuses them for lack of it.
pub async fn refresh_missing_access(db: &sqlx::PgPool, grace_days: u32) -> sqlx::Result<usize> {
    let ids: Vec<String> = sqlx::query_scalar(
        "select id from subscriptions where access_until is null and status in ('active', 'trialing', 'past_due')",
    )
    .fetch_all(db)
    .await?;
    for id in &ids {
        let mut tx = db.begin().await?;
        refresh_access_of(&mut tx, id, grace_days).await?;
        tx.commit().await?;
    }
    Ok(ids.len())
}

// The subscription upsert, in pieces: written alone ([`Snapshot::write`]) or carrying the
// event's ledger claim ([`write_claiming`]). A payment fails when it is attempted: for a
// renewal, at the period's start. The event comes after that on Stripe (so `past_due_since`
// is the event's time, as it always was), but a test clock runs ahead of the events' real
// time, and there the period start is the failure in the clock's time that the invoices show.
const UPSERT_COLUMNS: &str = "id, stripe_customer_id, status, price_id, product_id, quantity,
    current_period_start, current_period_end, trial_start, trial_end, cancel_at_period_end,
    cancel_at, canceled_at, ended_at, past_due_since, stripe_as_of, updated_at, metered_price_id";
const UPSERT_VALUES: &str = "$1, $2, $3, $4, $5, $6, to_timestamp($7), to_timestamp($8), to_timestamp($9),
    to_timestamp($10), $11, to_timestamp($12), to_timestamp($13), to_timestamp($14),
    case when $3 = 'past_due' then greatest(to_timestamp($15::bigint), to_timestamp($7)) end, $15, now(), $16";
/// How many values the upsert binds; a claim's come after them.
const UPSERT_BINDS: usize = 16;
const UPSERT_CONFLICT: &str = "on conflict (id) do update set stripe_customer_id = excluded.stripe_customer_id,
    status = excluded.status, price_id = excluded.price_id, product_id = excluded.product_id,
    quantity = excluded.quantity, metered_price_id = excluded.metered_price_id,
    current_period_start = excluded.current_period_start, current_period_end = excluded.current_period_end,
    trial_start = excluded.trial_start, trial_end = excluded.trial_end,
    cancel_at_period_end = excluded.cancel_at_period_end, cancel_at = excluded.cancel_at,
    canceled_at = excluded.canceled_at, ended_at = excluded.ended_at,
    -- The grace period counts from the first failure, not from the latest event.
    past_due_since = case when excluded.status = 'past_due'
                          then coalesce(subscriptions.past_due_since, excluded.past_due_since) end,
    stripe_as_of = greatest(subscriptions.stripe_as_of, excluded.stripe_as_of), updated_at = now()";
/// A [`LockedRow`], as the upsert hands it back.
const WRITTEN: &str =
    "status, current_period_end, cancel_at_period_end, past_due_since, access_until, product_id,
    (select user_id from customers where stripe_customer_id = subscriptions.stripe_customer_id),
    (select max_activations from products where id = subscriptions.product_id)";

/// Binds the upsert's values (`$1` to `$16`) from a subscription as of Stripe time `as_of`.
fn bind_upsert<'q, O>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    sub: &'q Subscription,
    as_of: i64,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    // The plan is the licensed item; a metered item (usage) rides along.
    let metered = |i: &&stripe_shared::SubscriptionItem| {
        i.price
            .recurring
            .as_ref()
            .is_some_and(|r| r.usage_type.as_str() == "metered")
    };
    let item = sub
        .items
        .data
        .iter()
        .find(|i| !metered(i))
        .or(sub.items.data.first());
    let metered_price = sub
        .items
        .data
        .iter()
        .find(metered)
        .map(|i| i.price.id.as_str());
    let ts = |t: Option<i64>| t.map(|t| t as f64);
    query
        .bind(sub.id.as_str())
        .bind(id_of_expandable(&sub.customer))
        .bind(sub.status.as_str())
        .bind(item.map(|i| i.price.id.as_str()))
        .bind(item.map(|i| id_of_expandable(&i.price.product)))
        .bind(item.and_then(|i| i.quantity).map(|q| q as i32))
        .bind(ts(item.map(|i| i.current_period_start)))
        .bind(ts(item.map(|i| i.current_period_end)))
        .bind(ts(sub.trial_start))
        .bind(ts(sub.trial_end))
        .bind(sub.cancel_at_period_end)
        .bind(ts(sub.cancel_at))
        .bind(ts(sub.canceled_at))
        .bind(ts(sub.ended_at))
        .bind(as_of)
        .bind(metered_price)
}

/// [`Snapshot::write`] (only if newer) carrying the event's ledger claim in the same
/// statement: the claim, then the upsert only if the claim got the event.
async fn write_claiming(
    conn: &mut PgConnection,
    sub: &Subscription,
    as_of: i64,
    claim: Claim<'_>,
) -> sqlx::Result<Claimed<Option<Locked>>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "with {},
             written as (
                 insert into subscriptions ({UPSERT_COLUMNS}) select {UPSERT_VALUES}
                 where exists (select 1 from claimed)
                 {UPSERT_CONFLICT}{} returning {WRITTEN})
             select exists (select 1 from claimed), w.* from (select) one left join written w on true",
            Claim::cte(UPSERT_BINDS + 1),
            newer_only(Subscription::TABLE, true)
        )
    });
    type Row = (
        bool,
        Option<String>,
        Option<OffsetDateTime>,
        Option<bool>,
        Option<OffsetDateTime>,
        Option<OffsetDateTime>,
        Option<String>,
        Option<uuid::Uuid>,
        Option<i32>,
    );
    let query = bind_upsert(sqlx::query_as::<_, Row>(SQL.as_str()), sub, as_of);
    let (claimed, status, end, cancel, past_due_since, access_until, product, user, max) =
        claim.bind(query).fetch_one(conn).await?;
    if !claimed {
        return Ok(Claimed::AlreadyProcessed);
    }
    let row = status.map(|status| {
        let row = (
            status,
            end,
            cancel.unwrap_or_default(),
            past_due_since,
            access_until,
            product,
            user,
            max,
        );
        Locked::from_row(sub.id.as_str(), row)
    });
    Ok(Claimed::Got(row))
}

impl Snapshot for Subscription {
    const TABLE: &'static str = "subscriptions";
    /// The row as written, locked by the upsert: what the access and the license need,
    /// without reading it again.
    type Written = Locked;

    fn row_id(&self) -> String {
        self.id.as_str().to_owned()
    }

    async fn write(
        &self,
        conn: &mut PgConnection,
        as_of: i64,
        only_if_newer: bool,
    ) -> sqlx::Result<Option<Locked>> {
        let sql = format!(
            "insert into subscriptions ({UPSERT_COLUMNS}) values ({UPSERT_VALUES})
             {UPSERT_CONFLICT}{} returning {WRITTEN}",
            newer_only(Self::TABLE, only_if_newer)
        );
        let written: Option<LockedRow> = bind_upsert(sqlx::query_as(&sql), self, as_of)
            .fetch_optional(conn)
            .await?;
        Ok(written.map(|row| Locked::from_row(self.id.as_str(), row)))
    }

    /// Stripe keeps canceled subscriptions: a 404 is another account's, with nothing here.
    async fn gone(_: &mut PgConnection, _: &str, _: i64) -> sqlx::Result<()> {
        Ok(())
    }
}

/// Our checkout puts the user id in the subscription's metadata. If the customer is not
/// linked to a user yet (this event beat `checkout.session.completed`), link it now; the
/// unique constraints keep a wrong or second link out.
async fn link_customer(conn: &mut PgConnection, sub: &Subscription) -> sqlx::Result<()> {
    let customer = id_of_expandable(&sub.customer);
    let user = sub.metadata.get("user_id").map(String::as_str);
    if sub.trial_start.is_none() {
        return link(conn, user, &customer).await;
    }
    // One trial per user: this one is theirs, whatever becomes of the subscription. One
    // statement with the link (whose new row the update cannot see, hence `linked`), and no
    // write once the trial is recorded.
    let user = user.and_then(|u| uuid::Uuid::parse_str(u).ok());
    sqlx::query(
        "with linked as (
             insert into customers (user_id, stripe_customer_id)
             select id, $2 from users where id = $1
             on conflict do nothing
             returning user_id)
         update users set trial_used_at = now()
         where trial_used_at is null
           and id = coalesce((select user_id from customers where stripe_customer_id = $2),
                             (select user_id from linked))",
    )
    .bind(user)
    .bind(&customer)
    .execute(conn)
    .await?;
    Ok(())
}

/// `checkout.session.completed`: the session names our user (metadata) and Stripe's customer.
pub async fn link_checkout_customer(
    conn: &mut PgConnection,
    session: &stripe_shared::CheckoutSession,
) -> sqlx::Result<()> {
    let Some(customer) = session
        .customer
        .as_ref()
        .map(|c| c.id().as_str().to_owned())
    else {
        return Ok(());
    };
    let user = session
        .metadata
        .as_ref()
        .and_then(|m| m.get("user_id"))
        .map(String::as_str);
    link(conn, user, &customer).await
}

async fn link(conn: &mut PgConnection, user: Option<&str>, customer: &str) -> sqlx::Result<()> {
    let Some(user_id) = user.and_then(|u| uuid::Uuid::parse_str(u).ok()) else {
        return Ok(());
    };
    sqlx::query(
        "insert into customers (user_id, stripe_customer_id)
         select id, $2 from users where id = $1
         on conflict do nothing",
    )
    .bind(user_id)
    .bind(customer)
    .execute(conn)
    .await?;
    Ok(())
}
