//! Subscription rows, written only from Stripe's snapshots (webhooks), under the same
//! freshness rule as the catalog.

use crate::stripe::{
    freshness::{choose, read_ahead, Current, SyncError, Write},
    Stripe,
};
use sqlx::{PgConnection, PgPool};
use stripe_billing::subscription::RetrieveSubscription;
use stripe_shared::Subscription;
use stripe_types::Expandable;

/// Before the transaction: Stripe's current subscription, when the event's may not be newest.
pub async fn read_subscription(
    db: &PgPool,
    stripe: &Stripe,
    sub: &Subscription,
    as_of: i64,
    again: bool,
) -> Result<Option<Current<Subscription>>, SyncError> {
    let request = RetrieveSubscription::new(sub.id.clone());
    read_ahead(
        db,
        "subscriptions",
        sub.id.as_str(),
        as_of,
        again,
        stripe.get(&request),
    )
    .await
}

/// `customer.subscription.*`: stores the subscription under the freshness rule and links
/// its customer to our user when the metadata names one.
pub async fn apply_subscription(
    conn: &mut PgConnection,
    sub: &Subscription,
    as_of: i64,
    current: Option<&Current<Subscription>>,
) -> Result<(), SyncError> {
    match choose(conn, "subscriptions", sub.id.as_str(), as_of, sub, current).await? {
        Write::Snapshot(s) | Write::Current(s) => write(conn, s, as_of).await?,
        // Stripe keeps canceled subscriptions; a 404 means another account's or a typo.
        Write::Gone => return Ok(()),
    }
    link_customer(conn, sub).await?;
    Ok(())
}

/// The subscription as Stripe has it now, for events that name it but do not carry it.
pub async fn fetch(stripe: &Stripe, id: &str) -> Result<Subscription, SyncError> {
    Ok(stripe.get(&RetrieveSubscription::new(id)).await?)
}

/// Stores a subscription read from Stripe (see [`fetch`]) as of the event that asked for it.
pub async fn write_current(
    conn: &mut PgConnection,
    sub: &Subscription,
    as_of: i64,
) -> Result<(), SyncError> {
    write(conn, sub, as_of).await?;
    link_customer(conn, sub).await?;
    Ok(())
}

fn customer_id(sub: &Subscription) -> String {
    match &sub.customer {
        Expandable::Id(id) => id.as_str().to_owned(),
        Expandable::Object(c) => c.id.as_str().to_owned(),
    }
}

async fn write(conn: &mut PgConnection, sub: &Subscription, as_of: i64) -> sqlx::Result<()> {
    let item = sub.items.data.first();
    let price_id = item.map(|i| i.price.id.as_str().to_owned());
    let product_id = item.map(|i| match &i.price.product {
        Expandable::Id(id) => id.as_str().to_owned(),
        Expandable::Object(p) => p.id.as_str().to_owned(),
    });
    let ts = |t: Option<i64>| t.map(|t| t as f64);
    sqlx::query(
        "insert into subscriptions (id, stripe_customer_id, status, price_id, product_id, quantity,
             current_period_start, current_period_end, trial_start, trial_end, cancel_at_period_end,
             cancel_at, canceled_at, ended_at, past_due_since, stripe_as_of, updated_at)
         values ($1, $2, $3, $4, $5, $6, to_timestamp($7), to_timestamp($8), to_timestamp($9), to_timestamp($10), $11,
             to_timestamp($12), to_timestamp($13), to_timestamp($14),
             case when $3 = 'past_due' then to_timestamp($15::bigint) end, $15, now())
         on conflict (id) do update set stripe_customer_id = excluded.stripe_customer_id, status = excluded.status,
             price_id = excluded.price_id, product_id = excluded.product_id, quantity = excluded.quantity,
             current_period_start = excluded.current_period_start, current_period_end = excluded.current_period_end,
             trial_start = excluded.trial_start, trial_end = excluded.trial_end,
             cancel_at_period_end = excluded.cancel_at_period_end, cancel_at = excluded.cancel_at,
             canceled_at = excluded.canceled_at, ended_at = excluded.ended_at,
             -- The grace period counts from the first failure, not from the latest event.
             past_due_since = case when excluded.status = 'past_due'
                                   then coalesce(subscriptions.past_due_since, excluded.past_due_since) end,
             stripe_as_of = greatest(subscriptions.stripe_as_of, excluded.stripe_as_of), updated_at = now()",
    )
    .bind(sub.id.as_str())
    .bind(customer_id(sub))
    .bind(sub.status.as_str())
    .bind(price_id)
    .bind(product_id)
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
    .execute(conn)
    .await?;
    Ok(())
}

/// Our checkout puts the user id in the subscription's metadata. If the customer is not
/// linked to a user yet (this event beat `checkout.session.completed`), link it now; the
/// unique constraints keep a wrong or second link out.
async fn link_customer(conn: &mut PgConnection, sub: &Subscription) -> sqlx::Result<()> {
    link(
        conn,
        sub.metadata.get("user_id").map(String::as_str),
        &customer_id(sub),
    )
    .await
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
