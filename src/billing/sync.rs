//! Invoices and the customer's card, written only from Stripe's snapshots (webhooks), under
//! the same freshness rule as subscriptions.

use crate::{
    catalog::sync::{freshness, stored_as_of, Freshness, SyncError},
    stripe::Stripe,
};
use serde_json::Value;
use sqlx::PgConnection;
use stripe_billing::invoice::RetrieveInvoice;

/// `invoice.*`: stores the invoice. A snapshot no newer than what we hold is replaced by
/// Stripe's current one, so `invoice.finalized` arriving after `invoice.paid` in the same
/// second cannot make a paid invoice look open again.
pub async fn apply_invoice_event(
    conn: &mut PgConnection,
    stripe: &Stripe,
    invoice: &Value,
    as_of: i64,
) -> Result<(), SyncError> {
    let Some(id) = invoice["id"].as_str() else {
        return Ok(());
    };
    let current = match freshness(stored_as_of(conn, "invoices", id).await?, as_of) {
        Freshness::Newer => invoice.clone(),
        Freshness::Tie | Freshness::Older => {
            let fetched = stripe.get(&RetrieveInvoice::new(id)).await?;
            serde_json::to_value(InvoiceView::from(&fetched))
                .map_err(|e| SyncError::Decode(e.to_string()))?
        }
    };
    write(conn, &current, as_of).await?;
    Ok(())
}

/// Why an invoice's latest charge failed, in the words Stripe writes for the customer
/// (`last_payment_error.message`), when Stripe knows. An invoice's `payments` are includable,
/// never in an event, so the invoice is fetched with its payments' intents expanded. A failed
/// look-up costs the email only its reason line: logged, not worth a webhook retry.
pub async fn failure_reason(stripe: &Stripe, invoice: &Value) -> Option<String> {
    let id = invoice["id"].as_str()?;
    let request =
        RetrieveInvoice::new(id).expand(vec!["payments.data.payment.payment_intent".to_owned()]);
    let fetched = match stripe.get(&request).await {
        Ok(fetched) => fetched,
        Err(e) => {
            tracing::warn!(invoice = id, error = %e, "could not look up why a payment failed");
            return None;
        }
    };
    let latest = fetched
        .payments?
        .data
        .into_iter()
        .max_by_key(|p| p.created)?;
    match latest.payment.payment_intent? {
        stripe_types::Expandable::Object(intent) => intent.last_payment_error?.message,
        stripe_types::Expandable::Id(_) => None,
    }
}

/// The fields we keep, named as in Stripe's JSON, so a typed invoice and an event's JSON
/// go through the same `write`.
#[derive(serde::Serialize)]
struct InvoiceView {
    id: Option<String>,
    customer: Option<String>,
    parent: Value,
    number: Option<String>,
    status: Option<String>,
    currency: String,
    total: i64,
    amount_due: i64,
    amount_paid: i64,
    amount_remaining: i64,
    attempt_count: u64,
    next_payment_attempt: Option<i64>,
    hosted_invoice_url: Option<String>,
    invoice_pdf: Option<String>,
    period_end: i64,
    created: i64,
}

impl From<&stripe_shared::Invoice> for InvoiceView {
    fn from(i: &stripe_shared::Invoice) -> Self {
        let subscription = i
            .parent
            .as_ref()
            .and_then(|p| p.subscription_details.as_ref())
            .map(|d| d.subscription.id().as_str().to_owned());
        Self {
            id: i.id.as_ref().map(|id| id.as_str().to_owned()),
            customer: i.customer.as_ref().map(|c| c.id().as_str().to_owned()),
            parent: serde_json::json!({ "subscription_details": { "subscription": subscription } }),
            number: i.number.clone(),
            status: i.status.as_ref().map(|s| s.as_str().to_owned()),
            currency: i.currency.to_string(),
            total: i.total,
            amount_due: i.amount_due,
            amount_paid: i.amount_paid,
            amount_remaining: i.amount_remaining,
            attempt_count: i.attempt_count,
            next_payment_attempt: i.next_payment_attempt,
            hosted_invoice_url: i.hosted_invoice_url.clone(),
            invoice_pdf: i.invoice_pdf.clone(),
            period_end: i.period_end,
            created: i.created,
        }
    }
}

async fn write(conn: &mut PgConnection, i: &Value, as_of: i64) -> sqlx::Result<()> {
    let Some(customer) = i["customer"].as_str() else {
        return Ok(());
    };
    sqlx::query(
        "insert into invoices (id, stripe_customer_id, subscription_id, number, status, currency, total, amount_due,
             amount_paid, amount_remaining, attempt_count, next_payment_attempt, hosted_invoice_url, invoice_pdf,
             period_end, created, stripe_as_of, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, to_timestamp($12), $13, $14, to_timestamp($15), to_timestamp($16), $17, now())
         on conflict (id) do update set status = excluded.status, number = excluded.number, total = excluded.total,
             amount_due = excluded.amount_due, amount_paid = excluded.amount_paid, amount_remaining = excluded.amount_remaining,
             attempt_count = excluded.attempt_count, next_payment_attempt = excluded.next_payment_attempt,
             hosted_invoice_url = excluded.hosted_invoice_url, invoice_pdf = excluded.invoice_pdf,
             stripe_as_of = greatest(invoices.stripe_as_of, excluded.stripe_as_of), updated_at = now()",
    )
    .bind(i["id"].as_str())
    .bind(customer)
    .bind(i["parent"]["subscription_details"]["subscription"].as_str())
    .bind(i["number"].as_str())
    .bind(i["status"].as_str().unwrap_or("draft"))
    .bind(i["currency"].as_str().unwrap_or("usd"))
    .bind(i["total"].as_i64().unwrap_or(0))
    .bind(i["amount_due"].as_i64().unwrap_or(0))
    .bind(i["amount_paid"].as_i64().unwrap_or(0))
    .bind(i["amount_remaining"].as_i64().unwrap_or(0))
    .bind(i["attempt_count"].as_i64().unwrap_or(0) as i32)
    .bind(i["next_payment_attempt"].as_i64().map(|t| t as f64))
    .bind(i["hosted_invoice_url"].as_str())
    .bind(i["invoice_pdf"].as_str())
    .bind(i["period_end"].as_i64().map(|t| t as f64))
    .bind(i["created"].as_i64().unwrap_or(0) as f64)
    .bind(as_of)
    .execute(conn)
    .await?;
    Ok(())
}

/// `payment_method.attached` / `.updated`: remember the card's description; if it is some
/// customer's default already, describe it there too.
pub async fn apply_payment_method(
    conn: &mut PgConnection,
    pm: &stripe_shared::PaymentMethod,
) -> sqlx::Result<()> {
    let Some(card) = &pm.card else { return Ok(()) };
    sqlx::query(
        "insert into payment_methods (id, stripe_customer_id, brand, last4, exp_month, exp_year) values ($1, $2, $3, $4, $5, $6)
         on conflict (id) do update set stripe_customer_id = excluded.stripe_customer_id, brand = excluded.brand,
             last4 = excluded.last4, exp_month = excluded.exp_month, exp_year = excluded.exp_year",
    )
    .bind(pm.id.as_str())
    .bind(pm.customer.as_ref().map(|c| c.id().as_str().to_owned()))
    .bind(&card.brand)
    .bind(&card.last4)
    .bind(card.exp_month as i32)
    .bind(card.exp_year as i32)
    .execute(&mut *conn)
    .await?;
    describe_default(conn, "default_payment_method = $1", pm.id.as_str()).await
}

/// `customer.created` / `.updated`: the default payment method may have changed.
pub async fn apply_customer(
    conn: &mut PgConnection,
    customer: &stripe_shared::Customer,
) -> sqlx::Result<()> {
    let default = customer
        .invoice_settings
        .as_ref()
        .and_then(|s| s.default_payment_method.as_ref())
        .map(|pm| pm.id().as_str().to_owned());
    sqlx::query("update customers set default_payment_method = $2 where stripe_customer_id = $1")
        .bind(customer.id.as_str())
        .bind(&default)
        .execute(&mut *conn)
        .await?;
    describe_default(conn, "stripe_customer_id = $1", customer.id.as_str()).await
}

/// Copies the card details of each matching customer's default payment method (blank if
/// we have not seen that card yet; its `payment_method.attached` will fill them).
async fn describe_default(conn: &mut PgConnection, which: &str, key: &str) -> sqlx::Result<()> {
    sqlx::query(&format!(
        "update customers c set card_brand = pm.brand, card_last4 = pm.last4, card_exp_month = pm.exp_month, card_exp_year = pm.exp_year
         from (select c2.user_id, p.brand, p.last4, p.exp_month, p.exp_year from customers c2
               left join payment_methods p on p.id = c2.default_payment_method where c2.{which}) pm
         where c.user_id = pm.user_id"
    ))
    .bind(key)
    .execute(conn)
    .await?;
    Ok(())
}
