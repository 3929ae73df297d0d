//! The billing emails: what a webhook tells the customer. Called inside the webhook's
//! transaction, so the email is queued exactly when the event is first processed.

use super::outbox::{enqueue, Email};
use crate::catalog::money::format_money;
use maud::html;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[month repr:long] [day padding:none], [year]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// Paragraphs and one call to action, as plain text and HTML.
fn bodies(paragraphs: &[String], link: Option<(&str, &str)>) -> (String, String) {
    let mut text = paragraphs.join("\n\n");
    if let Some((label, url)) = link {
        text.push_str(&format!("\n\n{label}: {url}"));
    }
    let html = html! {
        @for p in paragraphs { p { (p) } }
        @if let Some((label, url)) = link { p { a href=(url) { (label) } } }
    };
    (text, html.into_string())
}

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

/// Queues the email an event calls for, if any. `app_url` ends without a slash; `reason` is
/// Stripe's customer-facing words for a failed charge, when known.
pub async fn on_event(
    conn: &mut PgConnection,
    app_url: &str,
    event_id: &str,
    kind: &str,
    object: &Value,
    reason: Option<&str>,
) -> sqlx::Result<()> {
    let Some(customer) = object["customer"].as_str() else {
        return Ok(());
    };
    let billing = format!("{app_url}/settings/billing");
    let currency = object["currency"].as_str().unwrap_or("usd");
    let money = |v: &Value| format_money(v.as_i64().unwrap_or(0), currency);
    let pay_link = object["hosted_invoice_url"]
        .as_str()
        .unwrap_or(&billing)
        .to_owned();
    let (email_kind, subject, paragraphs, link): (&'static str, String, Vec<String>, Option<(&str, String)>) = match kind {
        "invoice.payment_failed" => {
            let due = money(&object["amount_remaining"]);
            let next = match object["next_payment_attempt"].as_i64() {
                Some(t) => format!("We will try your card again on {}.", date(t)),
                None => "We will not retry this payment automatically.".to_owned(),
            };
            let mut paragraphs = vec![format!(
                "We could not charge your card for invoice {}. Amount due: {due}.",
                object["number"].as_str().unwrap_or("")
            )];
            paragraphs.extend(reason.map(|r| format!("Reason: {r}")));
            paragraphs.push(next);
            paragraphs.push(
                "Pay now, or update your card in billing settings, to keep your subscription."
                    .to_owned(),
            );
            (
                "payment_failed",
                format!("Your payment of {due} failed"),
                paragraphs,
                Some(("Pay now", pay_link)),
            )
        }
        "invoice.payment_action_required" => (
            "payment_action_required",
            "Confirm your payment".to_owned(),
            vec![format!(
                "Your bank asks you to confirm the payment of {} (3-D Secure). Your subscription stays active once you do.",
                money(&object["amount_remaining"])
            )],
            Some(("Confirm payment", pay_link)),
        ),
        // Paid after at least one failed attempt: the customer heard about the failure.
        "invoice.paid" if object["attempt_count"].as_i64().unwrap_or(0) > 1 => (
            "payment_recovered",
            "Payment received: you're all set".to_owned(),
            vec![format!(
                "We received your payment of {} for invoice {}. Your subscription is active again, with full access.",
                money(&object["amount_paid"]),
                object["number"].as_str().unwrap_or("")
            )],
            Some(("Billing settings", billing.clone())),
        ),
        "customer.subscription.trial_will_end" => {
            let item = &object["items"]["data"][0];
            let amount = item["price"]["unit_amount"].as_i64().unwrap_or(0) * item["quantity"].as_i64().unwrap_or(1);
            let ends = object["trial_end"].as_i64().unwrap_or(0);
            (
                "trial_will_end",
                format!("Your trial ends on {}", date(ends)),
                vec![format!(
                    "Your free trial ends on {}. Your card will then be charged {} (plus any tax). Nothing to do if you want to continue; you can cancel any time before then.",
                    date(ends),
                    format_money(amount, item["price"]["currency"].as_str().unwrap_or(currency)),
                )],
                Some(("Manage billing", billing.clone())),
            )
        }
        "customer.subscription.deleted" => {
            let why = if object["cancellation_details"]["reason"] == "payment_failed" {
                "We could not collect payment after several attempts, so your subscription has ended and paid features are no longer available."
            } else {
                "Your subscription has ended and paid features are no longer available."
            };
            (
                "subscription_ended",
                "Your subscription has ended".to_owned(),
                vec![why.to_owned(), "You can subscribe again at any time.".to_owned()],
                Some(("See plans", format!("{app_url}/pricing"))),
            )
        }
        _ => return Ok(()),
    };
    let Some((user_id, to)) = recipient(conn, customer).await? else {
        // A customer not (yet) linked to a user: nobody to write to.
        return Ok(());
    };
    let (text, html) = bodies(&paragraphs, link.as_ref().map(|(l, u)| (*l, u.as_str())));
    enqueue(
        conn,
        &Email {
            dedupe_key: format!("{event_id}:{email_kind}"),
            user_id,
            to,
            kind: email_kind,
            subject,
            text,
            html,
        },
    )
    .await?;
    Ok(())
}
