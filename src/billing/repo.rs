//! SQL for billing settings: the user's customer and card, the next invoice, an unpaid
//! invoice, and the invoice history, all as the webhooks recorded them.

use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// The user's Stripe customer and the card on file.
#[derive(sqlx::FromRow)]
pub struct CustomerRow {
    #[sqlx(rename = "stripe_customer_id")]
    pub id: String,
    card_brand: Option<String>,
    card_last4: Option<String>,
    card_exp_month: Option<i32>,
    card_exp_year: Option<i32>,
}

impl CustomerRow {
    /// "visa •••• 4242, expires 12/2034".
    pub fn card(&self) -> Option<String> {
        match (
            &self.card_brand,
            &self.card_last4,
            self.card_exp_month,
            self.card_exp_year,
        ) {
            (Some(b), Some(l), Some(m), Some(y)) => {
                Some(format!("{b} •••• {l}, expires {m:02}/{y}"))
            }
            _ => None,
        }
    }
}

pub async fn customer(db: impl PgExecutor<'_>, user: Uuid) -> sqlx::Result<Option<CustomerRow>> {
    sqlx::query_as(
        "select stripe_customer_id, card_brand, card_last4, card_exp_month, card_exp_year from customers where user_id = $1",
    )
    .bind(user)
    .fetch_optional(db)
    .await
}

/// The live subscription that will bill at its period end (none when it is set to end).
pub async fn live_subscription(db: &PgPool, customer: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "select s.id from subscriptions s
         where s.stripe_customer_id = $1 and s.status in ('active', 'trialing', 'past_due')
           and not s.cancel_at_period_end and s.current_period_end is not null
         order by s.current_period_end desc limit 1",
    )
    .bind(customer)
    .fetch_optional(db)
    .await
}

#[derive(sqlx::FromRow)]
pub struct PastDueRow {
    pub currency: String,
    pub amount: i64,
    pub url: Option<String>,
}

/// The latest open, attempted invoice of a subscription that is behind on payment.
pub async fn past_due(db: &PgPool, customer: &str) -> sqlx::Result<Option<PastDueRow>> {
    sqlx::query_as(
        "select i.currency, i.amount_remaining as amount, i.hosted_invoice_url as url from invoices i
         where i.stripe_customer_id = $1 and i.status = 'open' and i.amount_remaining > 0 and i.attempt_count > 0
           and exists (select 1 from subscriptions s where s.id = i.subscription_id and s.status in ('past_due', 'unpaid', 'incomplete'))
         order by i.created desc limit 1",
    )
    .bind(customer)
    .fetch_optional(db)
    .await
}

#[derive(sqlx::FromRow)]
pub struct InvoiceRecord {
    pub created: OffsetDateTime,
    pub number: Option<String>,
    pub currency: String,
    pub total: i64,
    pub status: String,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    pub lines: Option<sqlx::types::Json<Vec<InvoiceLine>>>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct InvoiceLine {
    /// "130 × Starter (usage)": the quantity is in Stripe's description.
    pub description: Option<String>,
    pub amount: i64,
}

/// Page `page` (from 1) of the customer's invoices, newest first, and whether more follow.
pub async fn invoice_page(
    db: &PgPool,
    customer: &str,
    page: i64,
    size: i64,
) -> sqlx::Result<(Vec<InvoiceRecord>, bool)> {
    let mut rows: Vec<InvoiceRecord> = sqlx::query_as(
        "select created, number, currency, total, status, hosted_invoice_url, invoice_pdf, lines from invoices
         where stripe_customer_id = $1 and status <> 'draft'
         order by created desc, id desc limit $2 offset $3",
    )
    .bind(customer)
    .bind(size + 1)
    .bind((page - 1) * size)
    .fetch_all(db)
    .await?;
    let has_more = rows.len() as i64 > size;
    rows.truncate(size as usize);
    Ok((rows, has_more))
}
