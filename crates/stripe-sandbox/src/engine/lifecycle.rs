//! What time does to a subscription, applied when a test clock advances: the trial-end
//! reminder three days ahead, renewals charged to the default card, failed payments retried
//! on a schedule and then what the account's setting says (cancel, `unpaid`, or leave
//! `past_due`), a trial without a payment method ending as `trial_settings` asks (invoice,
//! `paused` or canceled), an `incomplete` subscription expiring after 23 hours, and
//! cancellations that take effect at period end. Each step happens at its own moment, in
//! time order.

use super::{
    catalog::product_name,
    customers::customer_of,
    invoices::{self, reason, Line},
    payments::Outcome,
    subscriptions::add_interval,
};
use crate::{
    http::{Account, RequestInfo, StripeError},
    kind::Kind,
    settings::AfterFailedRetries,
    store,
};
use serde_json::{json, Value};
use sqlx::PgConnection;

const DAY: i64 = 86_400;

/// Stripe sends `customer.subscription.trial_will_end` this long before a trial ends.
pub const TRIAL_WILL_END_BEFORE: i64 = 3 * DAY;

/// An `incomplete` subscription whose first invoice is still unpaid this long after it was
/// created becomes `incomplete_expired`, and the invoice is voided.
pub const INCOMPLETE_EXPIRES_AFTER: i64 = 23 * 3_600;

/// Retries of a failed renewal, in days after the first attempt (Stripe's default schedule
/// is "smart"; a fixed one is easier to test against). After the last, the account's
/// [`AfterFailedRetries`] decides.
pub const RETRY_DAYS: [i64; 3] = [3, 5, 7];

/// When the next retry of an invoice is due, given the attempts made so far.
pub fn retry_after(first_attempt: i64, attempts: i64) -> Option<i64> {
    usize::try_from(attempts - 1)
        .ok()
        .and_then(|i| RETRY_DAYS.get(i))
        .map(|d| first_attempt + d * DAY)
}

enum Step {
    TrialWillEnd(i64),
    Retry(i64, Value),
    PeriodEnd(i64),
    Expire(i64),
}

impl Step {
    fn at(&self) -> i64 {
        match self {
            Step::TrialWillEnd(t) | Step::Retry(t, _) | Step::PeriodEnd(t) | Step::Expire(t) => *t,
        }
    }
}

/// Brings every subscription of the clock's customers up to `to`.
pub async fn advance_clock(
    conn: &mut PgConnection,
    account: &Account,
    req: &RequestInfo,
    public_url: &str,
    clock: &str,
    to: i64,
    after_retries: AfterFailedRetries,
) -> Result<(), StripeError> {
    let subs: Vec<String> = sqlx::query_scalar(
        "select s.id from stripe_sandbox.objects s
         join stripe_sandbox.objects c on c.account = s.account and c.id = s.data ->> 'customer'
         where s.account = $1 and s.object = 'subscription' and c.data ->> 'test_clock' = $2
           and s.data ->> 'status' not in ('canceled', 'incomplete_expired')
         order by s.seq",
    )
    .bind(&account.0)
    .bind(clock)
    .fetch_all(&mut *conn)
    .await?;
    for id in subs {
        advance_subscription(conn, account, req, public_url, &id, to, after_retries).await?;
    }
    Ok(())
}

async fn advance_subscription(
    conn: &mut PgConnection,
    account: &Account,
    req: &RequestInfo,
    public_url: &str,
    id: &str,
    to: i64,
    after_retries: AfterFailedRetries,
) -> Result<(), StripeError> {
    // A bound, so a bad state can never loop forever: years of daily periods fit in it.
    for _ in 0..2_000 {
        let sub = store::get(conn, account, Kind::Subscription, id).await?;
        let Some(step) = next_step(conn, account, &sub, to).await? else {
            return Ok(());
        };
        match step {
            Step::TrialWillEnd(_) => {
                let mut after = sub.clone();
                after["sandbox"]["trial_will_end_sent"] = json!(sub["trial_end"]);
                store::save(conn, account, &after).await?;
                store::emit(
                    conn,
                    account,
                    "customer.subscription.trial_will_end",
                    &after,
                    None,
                    req,
                )
                .await?;
            }
            Step::Retry(at, invoice) => {
                let customer = customer_of(conn, account, &sub).await?;
                let pm = invoices::paying_method(conn, account, &customer, Some(&sub)).await?;
                let mut invoice = invoice;
                let attempts = invoice["attempt_count"].as_i64().unwrap_or(0) + 1;
                let first = invoice["status_transitions"]["finalized_at"]
                    .as_i64()
                    .unwrap_or(at);
                let retry_at = retry_after(first, attempts);
                let outcome = invoices::pay(
                    conn,
                    account,
                    req,
                    &mut invoice,
                    &customer,
                    pm.as_ref(),
                    false,
                    retry_at,
                    at,
                )
                .await?;
                match (outcome, after_retries) {
                    (Outcome::Paid, _) => set_status(conn, account, req, &sub, "active").await?,
                    (_, AfterFailedRetries::Cancel) if retry_at.is_none() => {
                        end(conn, account, req, &sub, at, "payment_failed").await?
                    }
                    (_, AfterFailedRetries::Unpaid) if retry_at.is_none() => {
                        set_status(conn, account, req, &sub, "unpaid").await?
                    }
                    _ => {}
                }
            }
            Step::PeriodEnd(at) => {
                if sub["cancel_at_period_end"] == json!(true) {
                    end(conn, account, req, &sub, at, "cancellation_requested").await?;
                    continue;
                }
                renew(conn, account, req, public_url, &sub, at).await?;
            }
            Step::Expire(at) => expire(conn, account, req, &sub, at).await?,
        }
    }
    Err(StripeError::internal(
        "a subscription needed too many steps to catch up",
    ))
}

async fn next_step(
    conn: &mut PgConnection,
    account: &Account,
    sub: &Value,
    to: i64,
) -> Result<Option<Step>, StripeError> {
    // An `unpaid` subscription stays as it is until its invoice is paid by hand (the sandbox
    // does not make the draft invoices Stripe keeps making for it); a `paused` one until it
    // is resumed, which the sandbox does not implement.
    match sub["status"].as_str() {
        Some("canceled" | "incomplete_expired" | "unpaid" | "paused") => return Ok(None),
        Some("incomplete") => {
            let at = sub["created"].as_i64().unwrap_or(0) + INCOMPLETE_EXPIRES_AFTER;
            return Ok(Some(Step::Expire(at)).filter(|s| s.at() <= to));
        }
        _ => {}
    }
    let mut steps = Vec::new();
    if sub["status"] == "trialing" && sub["sandbox"]["trial_will_end_sent"] != sub["trial_end"] {
        if let Some(end) = sub["trial_end"].as_i64() {
            steps.push(Step::TrialWillEnd(end - TRIAL_WILL_END_BEFORE));
        }
    }
    let retry: Option<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.objects
         where account = $1 and object = 'invoice' and data @> $2
           and (data ->> 'next_payment_attempt') is not null
         order by (data ->> 'next_payment_attempt')::bigint limit 1",
    )
    .bind(&account.0)
    .bind(json!({ "status": "open", "parent": { "subscription_details": { "subscription": sub["id"] } } }))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(invoice) = retry {
        let at = invoice["next_payment_attempt"].as_i64().unwrap_or(i64::MAX);
        steps.push(Step::Retry(at, invoice));
    }
    if let Some(end) = sub["items"]["data"][0]["current_period_end"].as_i64() {
        steps.push(Step::PeriodEnd(end));
    }
    // Ties: the reminder, then retries, then the period end (as the names suggest).
    Ok(steps
        .into_iter()
        .filter(|s| s.at() <= to)
        .min_by_key(Step::at))
}

async fn set_status(
    conn: &mut PgConnection,
    account: &Account,
    req: &RequestInfo,
    before: &Value,
    status: &str,
) -> Result<(), StripeError> {
    if before["status"] == status {
        return Ok(());
    }
    let mut after = before.clone();
    after["status"] = json!(status);
    updated(conn, account, req, before, &after).await
}

/// Saves a subscription's change and sends `customer.subscription.updated`.
async fn updated(
    conn: &mut PgConnection,
    account: &Account,
    req: &RequestInfo,
    before: &Value,
    after: &Value,
) -> Result<(), StripeError> {
    store::record_change(
        conn,
        account,
        "customer.subscription.updated",
        before,
        after,
        req,
    )
    .await
}

/// Ends a subscription at `at` (`customer.subscription.deleted`).
pub async fn end(
    conn: &mut PgConnection,
    account: &Account,
    req: &RequestInfo,
    before: &Value,
    at: i64,
    why: &str,
) -> Result<(), StripeError> {
    let mut after = before.clone();
    after["status"] = json!("canceled");
    after["ended_at"] = json!(at);
    if after["canceled_at"].is_null() {
        after["canceled_at"] = json!(at);
    }
    after["cancellation_details"]["reason"] = json!(why);
    store::record_change(
        conn,
        account,
        "customer.subscription.deleted",
        before,
        &after,
        req,
    )
    .await?;
    Ok(())
}

/// An `incomplete` subscription nobody paid for in time: `incomplete_expired` (terminal, no
/// more invoices) and its first invoice voided.
async fn expire(
    conn: &mut PgConnection,
    account: &Account,
    req: &RequestInfo,
    before: &Value,
    at: i64,
) -> Result<(), StripeError> {
    if let Some(id) = before["latest_invoice"].as_str() {
        let invoice = store::get(conn, account, Kind::Invoice, id).await?;
        if invoice["status"] == "open" {
            let mut voided = invoice.clone();
            voided["status"] = json!("void");
            voided["next_payment_attempt"] = Value::Null;
            voided["status_transitions"]["voided_at"] = json!(at);
            store::record_change(conn, account, "invoice.updated", &invoice, &voided, req).await?;
            store::emit(conn, account, "invoice.voided", &voided, None, req).await?;
        }
    }
    let mut after = before.clone();
    after["status"] = json!("incomplete_expired");
    after["ended_at"] = json!(at);
    updated(conn, account, req, before, &after).await
}

/// A new period from `at`: invoice it, charge the default card, and move the status.
async fn renew(
    conn: &mut PgConnection,
    account: &Account,
    req: &RequestInfo,
    public_url: &str,
    before: &Value,
    at: i64,
) -> Result<(), StripeError> {
    let mut after = before.clone();
    let price = &before["items"]["data"][0]["price"];
    let end = add_interval(
        at,
        price["recurring"]["interval"].as_str().unwrap_or("month"),
        price["recurring"]["interval_count"].as_i64().unwrap_or(1),
    );
    let mut lines = Vec::new();
    let customer_id = before["customer"].as_str().unwrap_or_default().to_owned();
    if let Some(items) = after["items"]["data"].as_array_mut() {
        for item in items {
            let name = product_name(conn, account, &item["price"]).await?;
            if invoices::is_metered(&item["price"]) {
                // Metered items bill the period that just ended, from their meter.
                let since = item["current_period_start"].as_i64().unwrap_or(at);
                let used =
                    super::meters::item_usage(conn, account, item, &customer_id, since, at).await?;
                lines.push(Line::for_usage(item, &name, (since, at), used));
            }
            item["current_period_start"] = json!(at);
            item["current_period_end"] = json!(end);
            if !invoices::is_metered(&item["price"]) {
                lines.push(Line::for_item(item, &name, (at, end)));
            }
        }
    }
    let mut customer = customer_of(conn, account, before).await?;
    let pm = invoices::paying_method(conn, account, &customer, Some(before)).await?;
    if before["status"] == "trialing" && pm.is_none() {
        // A trial that began without a card ends as the subscription asked.
        match before["trial_settings"]["end_behavior"]["missing_payment_method"].as_str() {
            Some("pause") => {
                let mut paused = before.clone();
                paused["status"] = json!("paused");
                updated(conn, account, req, before, &paused).await?;
                store::emit(
                    conn,
                    account,
                    "customer.subscription.paused",
                    &paused,
                    None,
                    req,
                )
                .await?;
                return Ok(());
            }
            Some("cancel") => {
                return self::end(conn, account, req, before, at, "cancellation_requested").await
            }
            _ => {}
        }
    }
    let automatic_tax = before["automatic_tax"]["enabled"] == json!(true);
    let (invoice, outcome) = invoices::bill(
        conn,
        account,
        req,
        public_url,
        &mut customer,
        Some(&after),
        &lines,
        reason::CYCLE,
        automatic_tax,
        pm.as_ref(),
        false,
        retry_after(at, 1),
        at,
    )
    .await?;
    after["latest_invoice"] = invoice["id"].clone();
    after["status"] = json!(match outcome {
        Outcome::Paid => "active",
        _ => "past_due",
    });
    if before["status"] == "trialing" {
        // The trial is over; the subscription bills from here on.
        after["billing_cycle_anchor"] = json!(at);
    }
    updated(conn, account, req, before, &after).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_schedule_then_stop() {
        assert_eq!(retry_after(0, 1), Some(3 * DAY));
        assert_eq!(retry_after(0, 2), Some(5 * DAY));
        assert_eq!(retry_after(0, 3), Some(7 * DAY));
        assert_eq!(retry_after(0, 4), None);
        assert_eq!(retry_after(0, 0), None);
    }
}
