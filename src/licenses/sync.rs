//! The webhook side of purchases and licenses. Every rule here is a function of what is
//! stored, not of which event came last: an order's refunds and disputes are read from the
//! `charges` and `disputes` snapshots, a subscription license from its subscription row. So
//! events may arrive in any order, or twice, and the end state is the same; each change of
//! state writes one audit row in the same transaction.
//!
//! Changes to one payment's order (the purchase, a refund, a dispute) take a lock on that
//! payment first, so two of its events cannot each miss the other's write.

use super::{
    key::LicenseKey,
    repo::{self, LicenseRow, NewLicense, NewOrder},
    DEFAULT_MAX_ACTIVATIONS,
};
use crate::{
    email,
    stripe::freshness::{apply, newer_only, wrote, Fetched, Snapshot, SyncError},
    subscriptions::{self, entitlement::entitlement, sync::Locked},
    webhooks::event::id_of_expandable,
};
use sqlx::{PgConnection, PgPool};
use stripe_shared::{Charge, CheckoutSession, CheckoutSessionMode, Dispute, Refund};
use time::OffsetDateTime;
use uuid::Uuid;

/// Who changed a license: written into its audit log.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A Stripe event (its id).
    Webhook(&'a str),
    Admin(Uuid),
    Customer(Uuid),
    /// The app itself (the sweep that suspends licenses whose grace period ran out).
    System,
}

impl Actor<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Self::Webhook(_) => "webhook",
            Self::Admin(_) => "admin",
            Self::Customer(_) => "customer",
            Self::System => "system",
        }
    }

    fn id(&self) -> String {
        match self {
            Self::Webhook(event) => (*event).to_owned(),
            Self::Admin(user) | Self::Customer(user) => user.to_string(),
            Self::System => "saas-billing".to_owned(),
        }
    }
}

/// What a license should be, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Active,
    Suspended(&'static str),
    Revoked(&'static str),
    Cancelled(&'static str),
}

impl Target {
    fn status(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended(_) => "suspended",
            Self::Revoked(_) => "revoked",
            Self::Cancelled(_) => "cancelled",
        }
    }

    fn reason(self) -> Option<&'static str> {
        match self {
            Self::Active => None,
            Self::Suspended(r) | Self::Revoked(r) | Self::Cancelled(r) => Some(r),
        }
    }
}

/// Serializes the changes to one payment's order (a payment without an intent has none).
async fn lock_payment(conn: &mut PgConnection, payment_intent: Option<&str>) -> sqlx::Result<()> {
    if let Some(pi) = payment_intent {
        sqlx::query("select pg_advisory_xact_lock(hashtextextended('payment:' || $1, 0))")
            .bind(pi)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// `checkout.session.completed` (or `.async_payment_succeeded`) in payment mode: the order
/// and, for a licensed product, its license and the email with the key, once per session.
/// Refunds and disputes that arrived first are applied right away.
pub async fn record_purchase(
    conn: &mut PgConnection,
    app_url: &str,
    session: &CheckoutSession,
    actor: Actor<'_>,
) -> Result<(), SyncError> {
    use stripe_shared::CheckoutSessionPaymentStatus as Paid;
    if session.mode != CheckoutSessionMode::Payment
        || !matches!(session.payment_status, Paid::Paid | Paid::NoPaymentRequired)
    {
        return Ok(());
    }
    // Only sessions this app opened name the user and the product.
    let meta = |key: &str| session.metadata.as_ref().and_then(|m| m.get(key)).cloned();
    let (Some(user_id), Some(product_id)) = (
        meta("user_id").and_then(|u| Uuid::parse_str(&u).ok()),
        meta("product_id"),
    ) else {
        return Ok(());
    };
    let payment_intent = session.payment_intent.as_ref().map(id_of_expandable);
    lock_payment(conn, payment_intent.as_deref()).await?;
    let invoice = session.invoice.as_ref().map(id_of_expandable);
    let currency = session
        .currency
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_else(|| "usd".into());
    let price = meta("price_id");
    let order = NewOrder {
        user_id,
        checkout_session_id: session.id.as_str(),
        payment_intent_id: payment_intent.as_deref(),
        product_id: &product_id,
        price_id: price.as_deref(),
        invoice_id: invoice.as_deref(),
        amount_total: session.amount_total.unwrap_or(0),
        currency: &currency,
    };
    let Some(order_id) = repo::insert_order(conn, &order).await? else {
        return Ok(());
    };
    let product: Option<(String, Option<String>, Option<i32>)> =
        sqlx::query_as("select name, license, max_activations from products where id = $1")
            .bind(&product_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some((name, Some(_licensed), max)) = product else {
        return Ok(());
    };
    let key = LicenseKey::generate().map_err(sqlx::Error::Io)?;
    let license = repo::insert_license(
        conn,
        &NewLicense {
            key: key.as_str(),
            user_id,
            product_id: &product_id,
            order_id: Some(order_id),
            subscription_id: None,
            max_activations: max.unwrap_or(DEFAULT_MAX_ACTIVATIONS),
            expires_at: None,
        },
    )
    .await?;
    repo::audit(
        conn,
        license.id,
        "issued",
        actor.kind(),
        &actor.id(),
        None,
        None,
    )
    .await?;
    if let Some(to) = repo::user_email(conn, user_id).await? {
        email::licenses::purchased(&name, key.as_str(), &format!("{app_url}/licenses"))
            .queue(conn, &format!("order-{order_id}"), user_id, &to)
            .await?;
    }
    settle_order(conn, app_url, payment_intent.as_deref(), actor).await?;
    Ok(())
}

/// `charge.refunded`: the charge under the freshness rule, then its order.
pub async fn apply_charge(
    conn: &mut PgConnection,
    app_url: &str,
    charge: &Charge,
    as_of: i64,
    current: Option<&Fetched<Charge>>,
    actor: Actor<'_>,
) -> Result<(), SyncError> {
    let pi = charge.payment_intent.as_ref().map(id_of_expandable);
    lock_payment(conn, pi.as_deref()).await?;
    apply(conn, charge, as_of, current).await?;
    Ok(settle_order(conn, app_url, pi.as_deref(), actor).await?)
}

/// `refund.*`: a refund says what it is, its charge what all refunds add up to. The charge
/// was read from Stripe before this transaction (`current`), and is written as it is now.
pub async fn apply_refund(
    conn: &mut PgConnection,
    app_url: &str,
    refund: &Refund,
    as_of: i64,
    current: Option<&Charge>,
    actor: Actor<'_>,
) -> Result<(), SyncError> {
    let Some(charge) = current else {
        // A refund of no charge (a customer balance refund): nothing of ours.
        return Ok(());
    };
    let pi = charge
        .payment_intent
        .as_ref()
        .or(refund.payment_intent.as_ref())
        .map(id_of_expandable);
    lock_payment(conn, pi.as_deref()).await?;
    charge.write(conn, as_of, false).await?;
    Ok(settle_order(conn, app_url, pi.as_deref(), actor).await?)
}

/// `charge.dispute.*`: the dispute under the freshness rule, then its order.
pub async fn apply_dispute(
    conn: &mut PgConnection,
    app_url: &str,
    dispute: &Dispute,
    as_of: i64,
    current: Option<&Fetched<Dispute>>,
    actor: Actor<'_>,
) -> Result<(), SyncError> {
    let pi = dispute.payment_intent.as_ref().map(id_of_expandable);
    lock_payment(conn, pi.as_deref()).await?;
    apply(conn, dispute, as_of, current).await?;
    Ok(settle_order(conn, app_url, pi.as_deref(), actor).await?)
}

/// Brings an order and its license in line with what Stripe says of its payment: refunded
/// in full, or lost in a dispute, revokes; an open dispute suspends; a won one restores. A
/// partial refund keeps the license, and is audited with its amount.
async fn settle_order(
    conn: &mut PgConnection,
    app_url: &str,
    payment_intent: Option<&str>,
    actor: Actor<'_>,
) -> sqlx::Result<()> {
    let Some(payment_intent) = payment_intent else {
        return Ok(());
    };
    let Some(order) = repo::order_by_payment_intent(conn, payment_intent).await? else {
        return Ok(());
    };
    let refunded = repo::refunded_total(conn, payment_intent).await?;
    let dispute = repo::dispute_status(conn, payment_intent).await?;
    let fully = order.amount_total > 0 && refunded >= order.amount_total;
    let status = match refunded {
        _ if fully => "refunded",
        0 => "paid",
        _ => "partially_refunded",
    };
    let newly_refunded = refunded - order.amount_refunded;
    if newly_refunded != 0 || status != order.status {
        repo::update_order(conn, order.id, refunded, status).await?;
    }
    let Some(license) = repo::license_for_order(conn, order.id).await? else {
        return Ok(());
    };
    if newly_refunded > 0 && !fully {
        let (kind, id) = (actor.kind(), actor.id());
        repo::audit(
            conn,
            license.id,
            "partially_refunded",
            kind,
            &id,
            Some("partial refund"),
            Some(newly_refunded),
        )
        .await?;
    }
    let target = if fully {
        Target::Revoked("refunded")
    } else {
        match dispute.as_deref() {
            Some("lost") => Target::Revoked("dispute lost"),
            Some("won" | "warning_closed" | "prevented") | None => Target::Active,
            Some(_) => Target::Suspended("payment disputed"),
        }
    };
    move_to(conn, app_url, &license, target, actor).await
}

/// Moves a license to `target`, with its audit row and, for a suspension or a revocation,
/// an email to its owner. Revoked and cancelled are final.
async fn move_to(
    conn: &mut PgConnection,
    app_url: &str,
    license: &LicenseRow,
    target: Target,
    actor: Actor<'_>,
) -> sqlx::Result<()> {
    if license.status == target.status()
        || matches!(license.status.as_str(), "revoked" | "cancelled")
    {
        return Ok(());
    }
    let action = match target {
        Target::Active => "restored",
        other => other.status(),
    };
    repo::set_status(conn, license.id, target.status()).await?;
    repo::audit(
        conn,
        license.id,
        action,
        actor.kind(),
        &actor.id(),
        target.reason(),
        None,
    )
    .await?;
    if matches!(target, Target::Suspended(_) | Target::Revoked(_)) {
        let product: Option<String> = sqlx::query_scalar("select name from products where id = $1")
            .bind(&license.product_id)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(to) = repo::user_email(conn, license.user_id).await? {
            let product = product.unwrap_or_else(|| "your product".into());
            let masked = LicenseKey::masked(&license.key);
            let message = match target {
                Target::Revoked(reason) => {
                    email::licenses::revoked(&product, &masked, reason, app_url)
                }
                _ => email::licenses::suspended(&product, &masked, app_url),
            };
            message
                .queue(
                    conn,
                    &format!("license-{}-{action}-{}", license.id, actor.id()),
                    license.user_id,
                    &to,
                )
                .await?;
        }
    }
    Ok(())
}

/// A subscription's license follows the subscription: issued once it is trialing or paid,
/// valid until its period ends plus the grace period (moved on by each renewal), suspended
/// once access lapses (the grace period after a failed payment ran out, or unpaid), restored
/// when it recovers, and cancelled with the subscription. Until the subscription's customer
/// is linked to a user there is nobody to issue it to; linking settles it again. `now` is
/// the customer's (their test clock in sandbox mode: `stripe::clock`).
pub async fn settle_subscription(
    conn: &mut PgConnection,
    app_url: &str,
    subscription: &str,
    grace_days: u32,
    now: i64,
    actor: Actor<'_>,
) -> sqlx::Result<()> {
    match subscriptions::sync::lock(conn, subscription).await? {
        Some(row) => settle_locked(conn, app_url, &row, grace_days, now, actor).await,
        None => Ok(()),
    }
}

/// [`settle_subscription`] for a row the caller locked and read ([`subscriptions::sync::lock`]).
pub async fn settle_locked(
    conn: &mut PgConnection,
    app_url: &str,
    row: &Locked,
    grace_days: u32,
    now: i64,
    actor: Actor<'_>,
) -> sqlx::Result<()> {
    let Some(user_id) = row.user_id else {
        return Ok(());
    };
    let (subscription, state) = (row.id.as_str(), &row.state);
    let grace = time::Duration::days(i64::from(grace_days));
    let target = match state.status.as_str() {
        "canceled" | "incomplete_expired" => Target::Cancelled("subscription ended"),
        _ if entitlement(state, now, grace.whole_seconds()).has_access() => Target::Active,
        "incomplete" => return Ok(()),
        _ => Target::Suspended("payment overdue"),
    };
    let period_end = state
        .current_period_end
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
    let (product, max) = (&row.product_id, row.max_activations);
    let expires = period_end.map(|end| end + grace);
    match repo::license_for_subscription(conn, subscription).await? {
        None if target == Target::Active => {
            let key = LicenseKey::generate().map_err(sqlx::Error::Io)?;
            let license = repo::insert_license(
                conn,
                &NewLicense {
                    key: key.as_str(),
                    user_id,
                    product_id: product.as_deref().unwrap_or_default(),
                    order_id: None,
                    subscription_id: Some(subscription),
                    max_activations: max.unwrap_or(DEFAULT_MAX_ACTIVATIONS),
                    expires_at: expires,
                },
            )
            .await?;
            repo::audit(
                conn,
                license.id,
                "issued",
                actor.kind(),
                &actor.id(),
                None,
                None,
            )
            .await?;
        }
        None => {}
        Some(license) => {
            let renewed = match (license.expires_at, expires) {
                (Some(old), Some(new)) => new > old,
                (None, Some(_)) => true,
                _ => false,
            };
            let live = !matches!(license.status.as_str(), "revoked" | "cancelled");
            if let (true, true, Some(new)) = (renewed, live, expires) {
                repo::set_expires(conn, license.id, new).await?;
                repo::audit(
                    conn,
                    license.id,
                    "renewed",
                    actor.kind(),
                    &actor.id(),
                    None,
                    None,
                )
                .await?;
            }
            move_to(conn, app_url, &license, target, actor).await?;
        }
    }
    Ok(())
}

/// Settles the licenses of every subscription of `customer` (just linked to a user).
pub async fn settle_customer(
    conn: &mut PgConnection,
    app_url: &str,
    customer: &str,
    grace_days: u32,
    now: i64,
    actor: Actor<'_>,
) -> sqlx::Result<()> {
    let subscriptions: Vec<String> = sqlx::query_scalar(
        "select id from subscriptions where stripe_customer_id = $1 order by id",
    )
    .bind(customer)
    .fetch_all(&mut *conn)
    .await?;
    for subscription in subscriptions {
        settle_subscription(conn, app_url, &subscription, grace_days, now, actor).await?;
    }
    Ok(())
}

/// No event marks the moment a grace period runs out: this sweep (every minute) suspends
/// the licenses of subscriptions still past due after it. Returns how many it suspended.
/// With `sandbox` (the app's client to it), each customer's test clock is "now", which may
/// be days ahead of real time.
pub async fn suspend_overdue(
    db: &PgPool,
    app_url: &str,
    grace_days: u32,
    sandbox: Option<&crate::stripe::Stripe>,
) -> sqlx::Result<usize> {
    let overdue: Vec<(String, String)> = sqlx::query_as(
        "select l.subscription_id, s.stripe_customer_id from licenses l
         join subscriptions s on s.id = l.subscription_id
         where l.status = 'active' and s.status = 'past_due'
           and ($2 or s.past_due_since is null or s.past_due_since + make_interval(days => $1) <= now())",
    )
    .bind(grace_days as i32)
    .bind(sandbox.is_some())
    .fetch_all(db)
    .await?;
    let mut suspended = 0;
    for (subscription, customer) in overdue {
        let now = match sandbox {
            Some(stripe) => crate::stripe::clock::now_for_customer(stripe, true, &customer).await,
            None => OffsetDateTime::now_utc(),
        };
        let mut tx = db.begin().await?;
        settle_subscription(
            &mut tx,
            app_url,
            &subscription,
            grace_days,
            now.unix_timestamp(),
            Actor::System,
        )
        .await?;
        // In sandbox mode every past-due subscription is looked at; count those it moved.
        let still_active: bool = sqlx::query_scalar(
            "select exists (select 1 from licenses where subscription_id = $1 and status = 'active')",
        )
        .bind(&subscription)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        suspended += usize::from(!still_active);
    }
    Ok(suspended)
}

impl Snapshot for Charge {
    const TABLE: &'static str = "charges";
    type Written = ();

    fn row_id(&self) -> String {
        self.id.as_str().to_owned()
    }

    async fn write(
        &self,
        conn: &mut PgConnection,
        as_of: i64,
        only_if_newer: bool,
    ) -> sqlx::Result<Option<()>> {
        let written = sqlx::query(&format!(
            "insert into charges (id, payment_intent_id, amount, amount_refunded, currency, stripe_as_of, updated_at)
             values ($1, $2, $3, $4, $5, $6, now())
             on conflict (id) do update set payment_intent_id = excluded.payment_intent_id,
                 amount = excluded.amount, amount_refunded = excluded.amount_refunded,
                 currency = excluded.currency,
                 stripe_as_of = greatest(charges.stripe_as_of, excluded.stripe_as_of), updated_at = now(){}",
            newer_only(Self::TABLE, only_if_newer)
        ))
        .bind(self.id.as_str())
        .bind(self.payment_intent.as_ref().map(id_of_expandable))
        .bind(self.amount)
        .bind(self.amount_refunded)
        .bind(self.currency.to_string())
        .bind(as_of)
        .execute(conn)
        .await?;
        Ok(wrote(&written))
    }

    /// Stripe keeps charges: a 404 is another account's, with nothing here.
    async fn gone(_: &mut PgConnection, _: &str, _: i64) -> sqlx::Result<()> {
        Ok(())
    }
}

impl Snapshot for Dispute {
    const TABLE: &'static str = "disputes";
    type Written = ();

    fn row_id(&self) -> String {
        self.id.as_str().to_owned()
    }

    async fn write(
        &self,
        conn: &mut PgConnection,
        as_of: i64,
        only_if_newer: bool,
    ) -> sqlx::Result<Option<()>> {
        let written = sqlx::query(&format!(
            "insert into disputes (id, charge_id, payment_intent_id, status, amount, stripe_as_of, updated_at)
             values ($1, $2, $3, $4, $5, $6, now())
             on conflict (id) do update set status = excluded.status, amount = excluded.amount,
                 payment_intent_id = excluded.payment_intent_id,
                 stripe_as_of = greatest(disputes.stripe_as_of, excluded.stripe_as_of), updated_at = now(){}",
            newer_only(Self::TABLE, only_if_newer)
        ))
        .bind(self.id.as_str())
        .bind(id_of_expandable(&self.charge))
        .bind(self.payment_intent.as_ref().map(id_of_expandable))
        .bind(self.status.as_str())
        .bind(self.amount)
        .bind(as_of)
        .execute(conn)
        .await?;
        Ok(wrote(&written))
    }

    async fn gone(_: &mut PgConnection, _: &str, _: i64) -> sqlx::Result<()> {
        Ok(())
    }
}
