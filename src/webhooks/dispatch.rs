//! Which capability handles which event: what each writes inside the event's transaction,
//! and what each needs read from Stripe between transactions when the event alone cannot
//! decide.

use super::{
    event::{id_of_expandable, invoice_subscription, Event, Object},
    ledger, Deployment, Outcome,
};
use crate::{
    billing, catalog, email,
    licenses::{self, sync::Actor},
    stripe::{
        freshness::{read_time, row_version, Claimed, Current, Fetched, Snapshot, SyncError},
        Stripe,
    },
    subscriptions,
};
use sqlx::{PgConnection, PgPool};
use stripe_billing::{invoice::RetrieveInvoice, subscription::RetrieveSubscription};
use stripe_core::{charge::RetrieveCharge, dispute::RetrieveDispute};
use stripe_product::{price::RetrievePrice, product::RetrieveProduct, Price, Product};
use stripe_shared::{Charge, Dispute, Invoice, Subscription};

/// What was read from Stripe for one event, outside any transaction. Each field is only
/// ever filled for the kinds of event that need it.
#[derive(Default)]
pub(super) struct Reads {
    pub product: Option<Fetched<Product>>,
    pub price: Option<Fetched<Price>>,
    /// For a subscription's event, its current copy when the event could not decide; for an
    /// invoice outcome that moves its subscription, that subscription as Stripe has it now.
    pub subscription: Option<Fetched<Subscription>>,
    pub invoice: Option<Fetched<Invoice>>,
    /// Why an invoice's payment failed, in Stripe's words, for the dunning email.
    pub failure_reason: Option<String>,
    pub charge: Option<Fetched<Charge>>,
    pub dispute: Option<Fetched<Dispute>>,
    /// A refund's charge as Stripe has it now: what all its refunds add up to.
    pub refund_charge: Option<Box<Charge>>,
    /// In sandbox mode, the customer's test-clock time, for a grace period that may be
    /// running (`stripe::clock`); real time otherwise.
    pub now: Option<i64>,
}

impl Reads {
    fn now(&self) -> i64 {
        self.now
            .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp())
    }
}

/// Reads every event of its kind needs, before the first transaction: for invoice outcomes,
/// the subscription they move and why a payment failed; for a refund, its charge; in sandbox
/// mode, the clock of a customer whose grace period may be running.
pub(super) fn needs_reads_first(event: &Event, deployment: Deployment<'_>) -> bool {
    match &event.object {
        Object::Invoice(_) => moves_subscription(&event.kind),
        Object::Refund(_) => true,
        Object::Subscription(s) => deployment.sandbox && grace_may_run(s),
        _ => false,
    }
}

/// Only a past-due subscription's license depends on the time (its grace period).
fn grace_may_run(s: &Subscription) -> bool {
    s.status == stripe_shared::SubscriptionStatus::PastDue
}

pub(super) async fn read_first(
    db: &PgPool,
    stripe: &Stripe,
    deployment: Deployment<'_>,
    event: &Event,
) -> Result<Reads, SyncError> {
    let mut reads = Reads::default();
    // The row's version before Stripe is read: if another event writes the subscription
    // while this one reads it, what was read may be older than what that event wrote, and
    // the write below must not undo it (it asks again instead).
    let moved = read_first_object(event).map(|(_, id)| id);
    let seen = match &moved {
        Some(id) => row_version(db, Subscription::TABLE, id, false).await?,
        None => None,
    };
    let clock_of = match &event.object {
        Object::Subscription(s) if grace_may_run(s) => Some(id_of_expandable(&s.customer)),
        Object::Invoice(i) => i.customer.as_ref().map(id_of_expandable),
        _ => None,
    };
    if let (true, Some(customer)) = (deployment.sandbox, clock_of) {
        let now = crate::stripe::clock::now_for_customer(stripe, true, &customer).await;
        reads.now = Some(now.unix_timestamp());
    }
    if let Some(id) = moved {
        let read = stripe.get(&RetrieveSubscription::new(id)).await;
        reads.subscription = Some(fetched(read, seen)?);
    }
    if let Object::Invoice(invoice) = &event.object {
        if event.kind == "invoice.payment_failed" {
            reads.failure_reason = billing::sync::failure_reason(stripe, invoice).await;
        }
    }
    if let Object::Refund(refund) = &event.object {
        if let Some(charge) = &refund.charge {
            let id = id_of_expandable(charge);
            reads.refund_charge = Some(Box::new(stripe.get(&RetrieveCharge::new(id)).await?));
        }
    }
    Ok(reads)
}

/// An invoice's outcome changes its subscription (active, past_due, …). Stripe also sends
/// `customer.subscription.updated`, but in no promised order: the app stores what Stripe
/// says about the subscription now.
fn moves_subscription(kind: &str) -> bool {
    matches!(
        kind,
        "invoice.paid" | "invoice.payment_failed" | "invoice.payment_action_required"
    )
}

/// The subscription an invoice event moves, if it is an outcome and the invoice has one.
fn moved_subscription(kind: &str, invoice: &Invoice) -> Option<String> {
    invoice_subscription(invoice).filter(|_| moves_subscription(kind))
}

/// The object [`read_first`] reads and the event then writes, whose turn it waits for: the
/// subscription an invoice outcome moves.
pub(super) fn read_first_object(event: &Event) -> Option<(&'static str, String)> {
    match &event.object {
        Object::Invoice(invoice) => moved_subscription(&event.kind, invoice),
        _ => None,
    }
    .map(|id| (Subscription::TABLE, id))
}

/// Reads Stripe's current copy of what a transaction asked for ([`SyncError::NeedsCurrent`]),
/// taking the row's version first: the copy may be written only while the row stays at it.
pub(super) async fn read_current(
    db: &PgPool,
    stripe: &Stripe,
    reads: &mut Reads,
    table: &'static str,
    id: &str,
) -> Result<(), SyncError> {
    let seen = row_version(db, table, id, false).await?;
    match table {
        Product::TABLE => {
            let read = stripe.get(&RetrieveProduct::new(id)).await;
            reads.product = Some(fetched(read, seen)?);
        }
        Price::TABLE => {
            // With its tiers, which events leave out.
            let read = stripe
                .get(&RetrievePrice::new(id).expand(vec!["tiers".to_owned()]))
                .await;
            reads.price = Some(fetched(read, seen)?);
        }
        Subscription::TABLE => {
            let read = stripe.get(&RetrieveSubscription::new(id)).await;
            reads.subscription = Some(fetched(read, seen)?);
        }
        Invoice::TABLE => {
            let read = stripe.get(&RetrieveInvoice::new(id)).await;
            reads.invoice = Some(fetched(read, seen)?);
        }
        Charge::TABLE => {
            let read = stripe.get(&RetrieveCharge::new(id)).await;
            reads.charge = Some(fetched(read, seen)?);
        }
        Dispute::TABLE => {
            let read = stripe.get(&RetrieveDispute::new(id)).await;
            reads.dispute = Some(fetched(read, seen)?);
        }
        _ => return Err(SyncError::Decode("a request for an unknown table")),
    }
    Ok(())
}

fn fetched<T>(
    read: Result<T, stripe::StripeError>,
    seen: Option<i64>,
) -> Result<Fetched<T>, SyncError> {
    Ok(Fetched {
        current: Current::from_read(read)?,
        seen,
        read_at: read_time(),
    })
}

/// What a subscription's new state means here: its access (`access_until`) and its license,
/// from the row as the event's write left it (`written`, locked), or, when nothing was
/// written, as it is.
async fn settle(
    conn: &mut PgConnection,
    deployment: Deployment<'_>,
    subscription: &str,
    written: Option<subscriptions::sync::Locked>,
    now: i64,
    actor: Actor<'_>,
) -> sqlx::Result<()> {
    let row = match written {
        Some(row) => row,
        None => match subscriptions::sync::lock(conn, subscription).await? {
            Some(row) => row,
            None => return Ok(()),
        },
    };
    subscriptions::sync::refresh_access(conn, &row, deployment.grace_days).await?;
    let (app_url, grace_days) = (deployment.app_url, deployment.grace_days);
    licenses::sync::settle_locked(conn, app_url, &row, grace_days, now, actor).await
}

/// Claims the event in the ledger and applies its change in the caller's transaction, and
/// queues the email it calls for. A subscription's event carries its claim in its upsert
/// when nothing was read from Stripe for it (one round trip fewer); every other event claims
/// first, in a statement of its own.
pub(super) async fn claim_and_apply(
    conn: &mut PgConnection,
    deployment: Deployment<'_>,
    event: &Event,
    reads: &Reads,
) -> Result<Outcome, SyncError> {
    let claim = ledger::claim_of(event);
    if let (Object::Subscription(s), None) = (&event.object, &reads.subscription) {
        let row =
            match subscriptions::sync::apply_subscription_claiming(conn, s, event.created, claim)
                .await?
            {
                Claimed::Got(row) => row,
                Claimed::AlreadyProcessed => return Ok(Outcome::AlreadyProcessed),
            };
        subscription_written(conn, deployment, event, s, Some(row), reads).await?;
        return Ok(Outcome::Applied);
    }
    if !ledger::claim(conn, claim).await? {
        return Ok(Outcome::AlreadyProcessed);
    }
    apply(conn, deployment, event, reads).await?;
    Ok(Outcome::Applied)
}

/// What follows a subscription's write: its access and license, and the email its event
/// calls for.
async fn subscription_written(
    conn: &mut PgConnection,
    deployment: Deployment<'_>,
    event: &Event,
    sub: &Subscription,
    row: Option<subscriptions::sync::Locked>,
    reads: &Reads,
) -> Result<(), SyncError> {
    let actor = Actor::Webhook(&event.id);
    settle(conn, deployment, sub.id.as_str(), row, reads.now(), actor).await?;
    email::dunning::for_subscription(conn, deployment.app_url, &event.id, &event.kind, sub).await?;
    Ok(())
}

/// Applies the event's change (claimed already) in the caller's transaction.
async fn apply(
    conn: &mut PgConnection,
    deployment: Deployment<'_>,
    event: &Event,
    reads: &Reads,
) -> Result<(), SyncError> {
    let (app_url, grace_days) = (deployment.app_url, deployment.grace_days);
    let actor = Actor::Webhook(&event.id);
    let as_of = event.created;
    match &event.object {
        Object::Product(p) => {
            catalog::sync::apply_product(conn, p, as_of, reads.product.as_ref()).await
        }
        Object::Price(p) => {
            let (price, product) = (reads.price.as_ref(), reads.product.as_ref());
            catalog::sync::apply_price(conn, p, as_of, price, product).await
        }
        Object::ProductDeleted(id) => catalog::sync::deactivate_product(conn, id, as_of).await,
        Object::PriceDeleted(id) => catalog::sync::deactivate_price(conn, id, as_of).await,
        Object::Subscription(s) => {
            let current = reads.subscription.as_ref();
            let row = subscriptions::sync::apply_subscription(conn, s, as_of, current).await?;
            subscription_written(conn, deployment, event, s, row, reads).await
        }
        Object::CheckoutCompleted(session) => {
            subscriptions::sync::link_checkout_customer(conn, session).await?;
            if let Some(customer) = session.customer.as_ref().map(id_of_expandable) {
                let now = reads.now();
                licenses::sync::settle_customer(conn, app_url, &customer, grace_days, now, actor)
                    .await?;
            }
            licenses::sync::record_purchase(conn, app_url, session, actor).await
        }
        Object::Charge(c) => {
            let current = reads.charge.as_ref();
            licenses::sync::apply_charge(conn, app_url, c, as_of, current, actor).await
        }
        Object::Refund(r) => {
            let current = reads.refund_charge.as_deref();
            licenses::sync::apply_refund(conn, app_url, r, as_of, current, actor).await
        }
        Object::Meter(m) => Ok(catalog::sync::write_meter(conn, m).await?),
        Object::Dispute(d) => {
            let current = reads.dispute.as_ref();
            licenses::sync::apply_dispute(conn, app_url, d, as_of, current, actor).await
        }
        Object::Invoice(i) => {
            billing::sync::apply_invoice(conn, i, as_of, reads.invoice.as_ref()).await?;
            let moved = moved_subscription(&event.kind, i);
            if let (Some(id), Some(current)) = (moved, &reads.subscription) {
                let row = subscriptions::sync::write_current(conn, current, as_of).await?;
                settle(conn, deployment, &id, row, reads.now(), actor).await?;
            }
            email::dunning::for_invoice(
                conn,
                app_url,
                &event.id,
                &event.kind,
                i,
                reads.failure_reason.as_deref(),
            )
            .await?;
            Ok(())
        }
        Object::PaymentMethod(pm) => {
            billing::sync::apply_payment_method(conn, pm).await?;
            Ok(())
        }
        Object::Customer(c) => {
            billing::sync::apply_customer(conn, c).await?;
            Ok(())
        }
        Object::CustomerDeleted(id) => {
            billing::sync::unlink_customer(conn, id).await?;
            Ok(())
        }
        Object::Unhandled => Ok(()),
        Object::Malformed(what) => Err(SyncError::Decode(what)),
    }
}
