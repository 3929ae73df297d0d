//! Which capability handles which event: what each writes inside the event's transaction,
//! and what each needs read from Stripe between transactions when the event alone cannot
//! decide.

use super::event::{invoice_subscription, Event, Object};
use crate::{
    billing, catalog, email,
    stripe::{
        freshness::{Current, Fetched, Snapshot, SyncError},
        Stripe,
    },
    subscriptions,
};
use sqlx::PgConnection;
use stripe_billing::{invoice::RetrieveInvoice, subscription::RetrieveSubscription};
use stripe_product::{price::RetrievePrice, product::RetrieveProduct, Price, Product};
use stripe_shared::{Invoice, Subscription};

/// What was read from Stripe for one event, outside any transaction. Each field is only
/// ever filled for the kinds of event that need it.
#[derive(Default)]
pub(super) struct Reads {
    pub product: Option<Fetched<Product>>,
    pub price: Option<Fetched<Price>>,
    pub subscription: Option<Fetched<Subscription>>,
    pub invoice: Option<Fetched<Invoice>>,
    /// An invoice's subscription as Stripe has it now, for the outcomes that move it.
    pub invoice_subscription: Option<Box<Subscription>>,
    /// Why an invoice's payment failed, in Stripe's words, for the dunning email.
    pub failure_reason: Option<String>,
}

/// Reads every event of its kind needs, before the first transaction. Only invoice outcomes
/// need any: the subscription they move, and why a payment failed.
pub(super) fn needs_reads_first(event: &Event) -> bool {
    matches!(event.object, Object::Invoice(_)) && moves_subscription(&event.kind)
}

pub(super) async fn read_first(stripe: &Stripe, event: &Event) -> Result<Reads, SyncError> {
    let mut reads = Reads::default();
    if let Object::Invoice(invoice) = &event.object {
        if moves_subscription(&event.kind) {
            if let Some(id) = invoice_subscription(invoice) {
                reads.invoice_subscription =
                    Some(Box::new(stripe.get(&RetrieveSubscription::new(id)).await?));
            }
        }
        if event.kind == "invoice.payment_failed" {
            reads.failure_reason = billing::sync::failure_reason(stripe, invoice).await;
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

/// Reads Stripe's current copy of what a transaction asked for ([`SyncError::NeedsCurrent`]).
pub(super) async fn read_current(
    stripe: &Stripe,
    reads: &mut Reads,
    table: &'static str,
    id: &str,
    seen: Option<i64>,
) -> Result<(), SyncError> {
    match table {
        Product::TABLE => {
            let read = stripe.get(&RetrieveProduct::new(id)).await;
            reads.product = Some(fetched(read, seen)?);
        }
        Price::TABLE => {
            let read = stripe.get(&RetrievePrice::new(id)).await;
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
    })
}

/// Applies the event's change in the caller's transaction, and queues the email it calls for.
pub(super) async fn apply(
    conn: &mut PgConnection,
    app_url: &str,
    event: &Event,
    reads: &Reads,
) -> Result<(), SyncError> {
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
            subscriptions::sync::apply_subscription(conn, s, as_of, reads.subscription.as_ref())
                .await?;
            email::dunning::for_subscription(conn, app_url, &event.id, &event.kind, s).await?;
            Ok(())
        }
        Object::CheckoutCompleted(session) => {
            subscriptions::sync::link_checkout_customer(conn, session).await?;
            Ok(())
        }
        Object::Invoice(i) => {
            billing::sync::apply_invoice(conn, i, as_of, reads.invoice.as_ref()).await?;
            if let Some(sub) = &reads.invoice_subscription {
                subscriptions::sync::write_current(conn, sub, as_of).await?;
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
