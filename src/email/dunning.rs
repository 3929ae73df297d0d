//! The billing emails: what a webhook tells the customer. Called inside the webhook's
//! transaction, so the email is queued exactly when the event is first processed.

use super::message::Message;
use crate::{
    catalog::money::format_money, ui::format::long_date_unix as date,
    webhooks::event::id_of_expandable,
};
use sqlx::PgConnection;
use stripe_shared::{Invoice, Subscription};
use uuid::Uuid;

async fn recipient(
    conn: &mut PgConnection,
    customer: &str,
) -> sqlx::Result<Option<(Uuid, String)>> {
    sqlx::query_as(
        "select u.id, u.email from customers c join users u on u.id = c.user_id where c.stripe_customer_id = $1",
    )
    .bind(customer)
    .fetch_optional(conn)
    .await
}

/// `invoice.*`: a failed payment, a payment that needs 3-D Secure, or a payment that
/// recovers after a failure. `reason` is Stripe's customer-facing words for a failed
/// charge, when known. `app_url` ends without a slash.
pub async fn for_invoice(
    conn: &mut PgConnection,
    app_url: &str,
    event_id: &str,
    kind: &str,
    invoice: &Invoice,
    reason: Option<&str>,
) -> sqlx::Result<()> {
    let Some(customer) = invoice.customer.as_ref().map(id_of_expandable) else {
        return Ok(());
    };
    let currency = invoice.currency.to_string();
    let money = |amount: i64| format_money(amount, &currency);
    let number = invoice.number.as_deref().unwrap_or("");
    let pay_link = invoice
        .hosted_invoice_url
        .clone()
        .unwrap_or_else(|| format!("{app_url}/settings/billing"));
    let message = match kind {
        "invoice.payment_failed" => {
            let due = money(invoice.amount_remaining);
            let next = match invoice.next_payment_attempt {
                Some(t) => format!("We will try your card again on {}.", date(t)),
                None => "We will not retry this payment automatically.".to_owned(),
            };
            let mut paragraphs = vec![format!(
                "We could not charge your card for invoice {number}. Amount due: {due}."
            )];
            paragraphs.extend(reason.map(|r| format!("Reason: {r}")));
            paragraphs.push(next);
            paragraphs.push(
                "Pay now, or update your card in billing settings, to keep your subscription."
                    .to_owned(),
            );
            Message {
                kind: "payment_failed",
                subject: format!("Your payment of {due} failed"),
                paragraphs,
                link: Some(("Pay now", pay_link)),
            }
        }
        "invoice.payment_action_required" => Message {
            kind: "payment_action_required",
            subject: "Confirm your payment".to_owned(),
            paragraphs: vec![format!(
                "Your bank asks you to confirm the payment of {} (3-D Secure). Your subscription stays active once you do.",
                money(invoice.amount_remaining)
            )],
            link: Some(("Confirm payment", pay_link)),
        },
        // Paid after at least one failed attempt: the customer heard about the failure.
        "invoice.paid" if invoice.attempt_count > 1 => Message {
            kind: "payment_recovered",
            subject: "Payment received: you're all set".to_owned(),
            paragraphs: vec![format!(
                "We received your payment of {} for invoice {number}. Your subscription is active again, with full access.",
                money(invoice.amount_paid),
            )],
            link: Some(("Billing settings", format!("{app_url}/settings/billing"))),
        },
        _ => return Ok(()),
    };
    send(conn, event_id, &customer, message).await
}

/// `customer.subscription.*`: the trial ends in three days, or the subscription ended.
pub async fn for_subscription(
    conn: &mut PgConnection,
    app_url: &str,
    event_id: &str,
    kind: &str,
    sub: &Subscription,
) -> sqlx::Result<()> {
    let message = match kind {
        "customer.subscription.trial_will_end" => {
            let amount = sub
                .items
                .data
                .first()
                .map(|item| {
                    let quantity = item.quantity.unwrap_or(1) as i64;
                    let unit = item.price.unit_amount.unwrap_or(0);
                    format_money(unit * quantity, &item.price.currency.to_string())
                })
                .unwrap_or_default();
            let ends = date(sub.trial_end.unwrap_or(0));
            Message {
                kind: "trial_will_end",
                subject: format!("Your trial ends on {ends}"),
                paragraphs: vec![format!(
                    "Your free trial ends on {ends}. Your card will then be charged {amount} (plus any tax). Nothing to do if you want to continue; you can cancel any time before then."
                )],
                link: Some(("Manage billing", format!("{app_url}/settings/billing"))),
            }
        }
        "customer.subscription.deleted" => {
            let unpaid = sub
                .cancellation_details
                .as_ref()
                .and_then(|d| d.reason.as_ref())
                .is_some_and(|r| r.as_str() == "payment_failed");
            let why = if unpaid {
                "We could not collect payment after several attempts, so your subscription has ended and paid features are no longer available."
            } else {
                "Your subscription has ended and paid features are no longer available."
            };
            Message {
                kind: "subscription_ended",
                subject: "Your subscription has ended".to_owned(),
                paragraphs: vec![
                    why.to_owned(),
                    "You can subscribe again at any time.".to_owned(),
                ],
                link: Some(("See plans", format!("{app_url}/pricing"))),
            }
        }
        _ => return Ok(()),
    };
    send(conn, event_id, &id_of_expandable(&sub.customer), message).await
}

/// Queues the message for the user behind `customer`, once per event and kind.
async fn send(
    conn: &mut PgConnection,
    event_id: &str,
    customer: &str,
    message: Message,
) -> sqlx::Result<()> {
    let Some((user_id, to)) = recipient(conn, customer).await? else {
        // A customer not (yet) linked to a user: nobody to write to.
        return Ok(());
    };
    message.queue(conn, event_id, user_id, &to).await?;
    Ok(())
}
