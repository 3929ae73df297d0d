//! Subscription rows, written only from Stripe's snapshots (webhooks), under the same
//! freshness rule as the catalog.

use crate::{
    stripe::freshness::{apply, newer_only, Fetched, Snapshot, SyncError},
    webhooks::event::id_of_expandable,
};
use sqlx::PgConnection;
use stripe_shared::Subscription;

/// `customer.subscription.*`: stores the subscription under the freshness rule and links
/// its customer to our user when the metadata names one.
pub async fn apply_subscription(
    conn: &mut PgConnection,
    sub: &Subscription,
    as_of: i64,
    current: Option<&Fetched<Subscription>>,
) -> Result<(), SyncError> {
    apply(conn, sub, as_of, current).await?;
    link_customer(conn, sub).await?;
    Ok(())
}

/// Stores a subscription as Stripe has it now (read for an event that names it but does
/// not carry it) as of that event.
pub async fn write_current(
    conn: &mut PgConnection,
    sub: &Subscription,
    as_of: i64,
) -> Result<(), SyncError> {
    sub.write(conn, as_of, false).await?;
    link_customer(conn, sub).await?;
    Ok(())
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
    if sub.write(conn, as_of, true).await? {
        link_customer(conn, sub).await?;
        refresh_access(conn, sub.id.as_str(), grace_days).await?;
    }
    Ok(())
}

/// Works out `access_until` for the row as it now is (the entitlement rule, with this
/// deployment's grace period), for checks that must be one SQL statement.
pub async fn refresh_access(
    conn: &mut PgConnection,
    subscription: &str,
    grace_days: u32,
) -> sqlx::Result<()> {
    use super::entitlement::{access_until, SubscriptionState};
    type Row = (
        String,
        Option<time::OffsetDateTime>,
        bool,
        Option<time::OffsetDateTime>,
    );
    let row: Option<Row> = sqlx::query_as(
        "select status, current_period_end, cancel_at_period_end, past_due_since from subscriptions where id = $1",
    )
    .bind(subscription)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((status, end, cancel_at_period_end, past_due_since)) = row else {
        return Ok(());
    };
    let state = SubscriptionState {
        status,
        current_period_end: end.map(time::OffsetDateTime::unix_timestamp),
        cancel_at_period_end,
        past_due_since: past_due_since.map(time::OffsetDateTime::unix_timestamp),
    };
    let until = access_until(&state, i64::from(grace_days) * 86_400).map(|t| {
        time::OffsetDateTime::from_unix_timestamp(t)
            .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc())
    });
    sqlx::query("update subscriptions set access_until = $2 where id = $1")
        .bind(subscription)
        .bind(until)
        .execute(conn)
        .await?;
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
        let mut conn = db.acquire().await?;
        refresh_access(&mut conn, id, grace_days).await?;
    }
    Ok(ids.len())
}

impl Snapshot for Subscription {
    const TABLE: &'static str = "subscriptions";

    fn row_id(&self) -> String {
        self.id.as_str().to_owned()
    }

    async fn write(
        &self,
        conn: &mut PgConnection,
        as_of: i64,
        only_if_newer: bool,
    ) -> sqlx::Result<bool> {
        // The plan is the licensed item; a metered item (usage) rides along.
        let metered = |i: &&stripe_shared::SubscriptionItem| {
            i.price
                .recurring
                .as_ref()
                .is_some_and(|r| r.usage_type.as_str() == "metered")
        };
        let item = self
            .items
            .data
            .iter()
            .find(|i| !metered(i))
            .or(self.items.data.first());
        let metered_price = self
            .items
            .data
            .iter()
            .find(metered)
            .map(|i| i.price.id.as_str().to_owned());
        let ts = |t: Option<i64>| t.map(|t| t as f64);
        // A payment fails when it is attempted: for a renewal, at the period's start. The
        // event comes after that on Stripe (so `past_due_since` is the event's time, as it
        // always was), but a test clock runs ahead of the events' real time, and there the
        // period start is the failure in the clock's time that the invoices show.
        let written = sqlx::query(&format!(
            "insert into subscriptions (id, stripe_customer_id, status, price_id, product_id, quantity,
                 current_period_start, current_period_end, trial_start, trial_end, cancel_at_period_end,
                 cancel_at, canceled_at, ended_at, past_due_since, stripe_as_of, updated_at, metered_price_id)
             values ($1, $2, $3, $4, $5, $6, to_timestamp($7), to_timestamp($8), to_timestamp($9), to_timestamp($10), $11,
                 to_timestamp($12), to_timestamp($13), to_timestamp($14),
                 case when $3 = 'past_due' then greatest(to_timestamp($15::bigint), to_timestamp($7)) end, $15, now(), $16)
             on conflict (id) do update set stripe_customer_id = excluded.stripe_customer_id, status = excluded.status,
                 price_id = excluded.price_id, product_id = excluded.product_id, quantity = excluded.quantity,
                 metered_price_id = excluded.metered_price_id,
                 current_period_start = excluded.current_period_start, current_period_end = excluded.current_period_end,
                 trial_start = excluded.trial_start, trial_end = excluded.trial_end,
                 cancel_at_period_end = excluded.cancel_at_period_end, cancel_at = excluded.cancel_at,
                 canceled_at = excluded.canceled_at, ended_at = excluded.ended_at,
                 -- The grace period counts from the first failure, not from the latest event.
                 past_due_since = case when excluded.status = 'past_due'
                                       then coalesce(subscriptions.past_due_since, excluded.past_due_since) end,
                 stripe_as_of = greatest(subscriptions.stripe_as_of, excluded.stripe_as_of), updated_at = now(){}",
            newer_only(Self::TABLE, only_if_newer)
        ))
        .bind(self.id.as_str())
        .bind(id_of_expandable(&self.customer))
        .bind(self.status.as_str())
        .bind(item.map(|i| i.price.id.as_str().to_owned()))
        .bind(item.map(|i| id_of_expandable(&i.price.product)))
        .bind(item.and_then(|i| i.quantity).map(|q| q as i32))
        .bind(ts(item.map(|i| i.current_period_start)))
        .bind(ts(item.map(|i| i.current_period_end)))
        .bind(ts(self.trial_start))
        .bind(ts(self.trial_end))
        .bind(self.cancel_at_period_end)
        .bind(ts(self.cancel_at))
        .bind(ts(self.canceled_at))
        .bind(ts(self.ended_at))
        .bind(as_of)
        .bind(metered_price)
        .execute(conn)
        .await?;
        Ok(written.rows_affected() == 1)
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
    link(
        conn,
        sub.metadata.get("user_id").map(String::as_str),
        &customer,
    )
    .await?;
    if sub.trial_start.is_some() {
        // One trial per user: this one is theirs, whatever becomes of the subscription.
        sqlx::query(
            "update users set trial_used_at = coalesce(trial_used_at, now())
             where id = (select user_id from customers where stripe_customer_id = $1)",
        )
        .bind(&customer)
        .execute(conn)
        .await?;
    }
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
