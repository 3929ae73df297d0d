//! Which capability handles which event, in two steps: what must be read from Stripe (before
//! the transaction, with no row locked), then what is written (inside it, with the ledger).

use super::event::{invoice_subscription, Event, Object};
use crate::{
    billing, catalog, email,
    stripe::{
        freshness::{Current, SyncError},
        Stripe,
    },
    subscriptions,
};
use sqlx::{PgConnection, PgPool};
use stripe_product::{Price, Product};
use stripe_shared::{Invoice, Subscription};

/// What an event's handlers need from Stripe, read before the transaction opens.
pub(super) enum ReadAhead {
    Nothing,
    Product(Option<Current<Product>>),
    Price {
        current: Option<Current<Price>>,
        /// The price's product, when the app does not know it yet.
        product: Option<Box<Product>>,
    },
    Subscription(Option<Current<Subscription>>),
    Invoice {
        current: Option<Current<Invoice>>,
        /// The invoice's subscription as Stripe has it now, for the outcomes that move it.
        subscription: Option<Box<Subscription>>,
        /// Why the payment failed, in Stripe's words, for the dunning email.
        failure_reason: Option<String>,
    },
}

/// `again`: a first attempt found a row changed under it ([`SyncError::Stale`]), so read
/// Stripe's current copy whatever the row says now.
pub(super) async fn read_ahead(
    db: &PgPool,
    stripe: &Stripe,
    event: &Event,
    again: bool,
) -> Result<ReadAhead, SyncError> {
    let as_of = event.created;
    Ok(match &event.object {
        Object::Product(p) => {
            ReadAhead::Product(catalog::sync::read_product(db, stripe, p, as_of, again).await?)
        }
        Object::Price(p) => {
            let (current, product) = catalog::sync::read_price(db, stripe, p, as_of, again).await?;
            ReadAhead::Price { current, product }
        }
        Object::Subscription(s) => ReadAhead::Subscription(
            subscriptions::sync::read_subscription(db, stripe, s, as_of, again).await?,
        ),
        Object::Invoice(i) => {
            let current = billing::sync::read_invoice(db, stripe, i, as_of, again).await?;
            let subscription = match invoice_subscription(i) {
                Some(id) if moves_subscription(&event.kind) => {
                    Some(Box::new(subscriptions::sync::fetch(stripe, &id).await?))
                }
                _ => None,
            };
            let failure_reason = if event.kind == "invoice.payment_failed" {
                billing::sync::failure_reason(stripe, i).await
            } else {
                None
            };
            ReadAhead::Invoice {
                current,
                subscription,
                failure_reason,
            }
        }
        _ => ReadAhead::Nothing,
    })
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

/// Applies the event's change in the caller's transaction, and queues the email it calls for.
pub(super) async fn apply(
    conn: &mut PgConnection,
    app_url: &str,
    event: &Event,
    read: &ReadAhead,
) -> Result<(), SyncError> {
    let as_of = event.created;
    match (&event.object, read) {
        (Object::Product(p), ReadAhead::Product(current)) => {
            catalog::sync::apply_product(conn, p, as_of, current.as_ref()).await
        }
        (Object::Price(p), ReadAhead::Price { current, product }) => {
            catalog::sync::apply_price(conn, p, as_of, current.as_ref(), product.as_deref()).await
        }
        (Object::ProductDeleted(id), _) => catalog::sync::deactivate_product(conn, id, as_of).await,
        (Object::PriceDeleted(id), _) => catalog::sync::deactivate_price(conn, id, as_of).await,
        (Object::Subscription(s), ReadAhead::Subscription(current)) => {
            subscriptions::sync::apply_subscription(conn, s, as_of, current.as_ref()).await?;
            email::dunning::for_subscription(conn, app_url, &event.id, &event.kind, s).await?;
            Ok(())
        }
        (Object::CheckoutCompleted(session), _) => {
            subscriptions::sync::link_checkout_customer(conn, session).await?;
            Ok(())
        }
        (
            Object::Invoice(i),
            ReadAhead::Invoice {
                current,
                subscription,
                failure_reason,
            },
        ) => {
            billing::sync::apply_invoice(conn, i, as_of, current.as_ref()).await?;
            if let Some(sub) = subscription {
                subscriptions::sync::write_current(conn, sub, as_of).await?;
            }
            email::dunning::for_invoice(
                conn,
                app_url,
                &event.id,
                &event.kind,
                i,
                failure_reason.as_deref(),
            )
            .await?;
            Ok(())
        }
        (Object::PaymentMethod(pm), _) => {
            billing::sync::apply_payment_method(conn, pm).await?;
            Ok(())
        }
        (Object::Customer(c), _) => {
            billing::sync::apply_customer(conn, c).await?;
            Ok(())
        }
        (Object::CustomerDeleted(id), _) => {
            billing::sync::unlink_customer(conn, id).await?;
            Ok(())
        }
        (Object::Unhandled, _) => Ok(()),
        (Object::Malformed(what), _) => Err(SyncError::Decode(what)),
        // A read-ahead that does not belong to the event cannot happen: both come from it.
        _ => Err(SyncError::Decode("a read-ahead for another kind of event")),
    }
}
