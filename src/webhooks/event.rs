//! A Stripe event, decoded once: the envelope with serde, its object with async-stripe's
//! generated types (Stripe's OpenAPI spec in Rust), chosen by the event's type. Every
//! handler matches on [`Object`]; none looks at type strings or raw JSON again.

use serde::Deserialize;
use stripe_product::{Price, Product};
use stripe_shared::{
    Charge, CheckoutSession, Customer, Dispute, Invoice, PaymentMethod, Refund, Subscription,
};
use stripe_types::Expandable;

/// The object an event carries, in the type the app handles it as.
#[derive(Debug)]
pub enum Object {
    Product(Box<Product>),
    ProductDeleted(String),
    Price(Box<Price>),
    PriceDeleted(String),
    /// `customer.subscription.*`, whatever happened to it.
    Subscription(Box<Subscription>),
    /// `checkout.session.completed`, and `.async_payment_succeeded` for payment methods
    /// that settle later.
    CheckoutCompleted(Box<CheckoutSession>),
    /// `charge.refunded`: the charge with its `amount_refunded` so far.
    Charge(Box<Charge>),
    /// `refund.*` and `charge.refund.updated`: one refund; its charge says what it adds up to.
    Refund(Box<Refund>),
    /// `charge.dispute.*`.
    Dispute(Box<Dispute>),
    /// `billing.meter.*`.
    Meter(Box<stripe_billing::BillingMeter>),
    /// `invoice.*`, whatever happened to it.
    Invoice(Box<Invoice>),
    PaymentMethod(Box<PaymentMethod>),
    Customer(Box<Customer>),
    CustomerDeleted(String),
    /// A type the app does not act on: recorded in the ledger and acknowledged.
    Unhandled,
    /// An object that does not have the shape async-stripe's types require (named here):
    /// processing fails with a 500, so Stripe retries once the app is fixed, not lost.
    Malformed(&'static str),
}

/// One event as Stripe sent it.
#[derive(Debug)]
pub struct Event {
    pub id: String,
    /// Stripe's type, as sent (`invoice.paid`): for the ledger, logs and email keys.
    pub kind: String,
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub object: Object,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
    livemode: bool,
    api_version: Option<String>,
    #[serde(borrow)]
    data: Data<'a>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    object: &'a serde_json::value::RawValue,
}

#[derive(Deserialize)]
struct Id {
    id: String,
}

/// The body is not a Stripe event at all.
#[derive(Debug, thiserror::Error)]
#[error("not a Stripe event")]
pub struct NotAnEvent;

impl Event {
    pub fn decode(body: &[u8]) -> Result<Self, NotAnEvent> {
        let envelope: Envelope = serde_json::from_slice(body).map_err(|_| NotAnEvent)?;
        let object = Object::decode(&envelope.kind, envelope.data.object.get())
            .unwrap_or_else(Object::Malformed);
        Ok(Self {
            id: envelope.id,
            kind: envelope.kind,
            created: envelope.created,
            livemode: envelope.livemode,
            api_version: envelope.api_version,
            object,
        })
    }
}

impl Object {
    fn decode(kind: &str, raw: &str) -> Result<Self, &'static str> {
        Ok(match kind {
            "product.created" | "product.updated" => Object::Product(typed(raw, "Product")?),
            "product.deleted" => Object::ProductDeleted(id_of(raw)?),
            "price.created" | "price.updated" => Object::Price(typed(raw, "Price")?),
            "price.deleted" => Object::PriceDeleted(id_of(raw)?),
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted"
            | "customer.subscription.paused"
            | "customer.subscription.resumed"
            | "customer.subscription.trial_will_end" => {
                Object::Subscription(typed(raw, "Subscription")?)
            }
            "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
                Object::CheckoutCompleted(typed(raw, "CheckoutSession")?)
            }
            "charge.refunded" => Object::Charge(typed(raw, "Charge")?),
            "refund.created" | "refund.updated" | "refund.failed" | "charge.refund.updated" => {
                Object::Refund(typed(raw, "Refund")?)
            }
            "charge.dispute.created"
            | "charge.dispute.updated"
            | "charge.dispute.closed"
            | "charge.dispute.funds_withdrawn"
            | "charge.dispute.funds_reinstated" => Object::Dispute(typed(raw, "Dispute")?),
            "billing.meter.created"
            | "billing.meter.updated"
            | "billing.meter.deactivated"
            | "billing.meter.reactivated" => Object::Meter(typed(raw, "BillingMeter")?),
            "invoice.created"
            | "invoice.finalized"
            | "invoice.updated"
            | "invoice.paid"
            | "invoice.payment_succeeded"
            | "invoice.payment_failed"
            | "invoice.payment_action_required"
            | "invoice.voided"
            | "invoice.marked_uncollectible" => Object::Invoice(typed(raw, "Invoice")?),
            "payment_method.attached"
            | "payment_method.updated"
            | "payment_method.automatically_updated" => {
                Object::PaymentMethod(typed(raw, "PaymentMethod")?)
            }
            "customer.created" | "customer.updated" => Object::Customer(typed(raw, "Customer")?),
            "customer.deleted" => Object::CustomerDeleted(id_of(raw)?),
            _ => Object::Unhandled,
        })
    }
}

fn typed<T: miniserde::Deserialize>(raw: &str, name: &'static str) -> Result<Box<T>, &'static str> {
    miniserde::json::from_str(raw)
        .map(Box::new)
        .map_err(|_| name)
}

fn id_of(raw: &str) -> Result<String, &'static str> {
    serde_json::from_str::<Id>(raw)
        .map(|o| o.id)
        .map_err(|_| "an object id")
}

/// The id behind an expandable reference, expanded or not.
pub fn id_of_expandable<T: stripe_types::Object>(e: &Expandable<T>) -> String {
    use stripe_types::AsCursorOpt;
    e.id().as_cursor_opt().unwrap_or_default().to_owned()
}

/// The subscription an invoice belongs to: `parent.subscription_details.subscription` since
/// API 2025-03-31 (basil), the top-level `subscription` before.
pub fn invoice_subscription(invoice: &Invoice) -> Option<String> {
    invoice
        .parent
        .as_ref()
        .and_then(|p| p.subscription_details.as_ref())
        .map(|d| id_of_expandable(&d.subscription))
        .or_else(|| invoice.subscription.as_ref().map(id_of_expandable))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `register-webhook` subscribes the endpoint to is exactly what this decodes.
    #[test]
    fn the_registered_event_types_are_the_handled_ones() {
        for kind in crate::webhooks::register::HANDLED_EVENTS {
            assert!(
                !matches!(Object::decode(kind, "{}"), Ok(Object::Unhandled)),
                "{kind} is registered but not handled"
            );
        }
        let mut unique = crate::webhooks::register::HANDLED_EVENTS.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            crate::webhooks::register::HANDLED_EVENTS.len()
        );
        // And the other way: every type the decoder names is in the list.
        let source = include_str!("event.rs");
        let decoder =
            &source[source.find("fn decode(kind").unwrap()..source.find("fn typed<").unwrap()];
        for quoted in decoder.split('"').skip(1).step_by(2) {
            if quoted.contains('.') {
                assert!(
                    crate::webhooks::register::HANDLED_EVENTS.contains(&quoted),
                    "{quoted} is handled but register-webhook does not subscribe to it"
                );
            }
        }
    }

    #[test]
    fn unknown_types_are_unhandled_and_bad_bodies_are_not_events() {
        let body = br#"{"id":"evt_1","type":"radar.early_fraud_warning.created","created":1,"livemode":false,"api_version":null,"data":{"object":{"id":"x"}}}"#;
        let event = Event::decode(body).unwrap();
        assert!(matches!(event.object, Object::Unhandled));
        assert!(Event::decode(b"{}").is_err());
        let wrong_shape = br#"{"id":"evt_2","type":"product.created","created":1,"livemode":false,"api_version":null,"data":{"object":{"id":"prod_1"}}}"#;
        assert!(matches!(
            Event::decode(wrong_shape).unwrap().object,
            Object::Malformed("Product")
        ));
        let deleted = br#"{"id":"evt_3","type":"customer.deleted","created":1,"livemode":false,"api_version":null,"data":{"object":{"id":"cus_1","object":"customer","deleted":true}}}"#;
        assert!(
            matches!(Event::decode(deleted).unwrap().object, Object::CustomerDeleted(id) if id == "cus_1")
        );
    }
}
