//! Invoices and the customer's card, written only from Stripe's snapshots (webhooks), under
//! the same freshness rule as subscriptions.

use crate::{
    stripe::{
        freshness::{apply, newer_only, wrote, Fetched, Snapshot, SyncError},
        Stripe,
    },
    webhooks::event::{id_of_expandable, invoice_subscription},
};
use sqlx::PgConnection;
use stripe_billing::invoice::RetrieveInvoice;
use stripe_shared::Invoice;

/// `invoice.*`: stores the invoice under the freshness rule, so `invoice.finalized`
/// arriving after `invoice.paid` in the same second cannot make a paid invoice look open
/// again.
pub async fn apply_invoice(
    conn: &mut PgConnection,
    invoice: &Invoice,
    as_of: i64,
    current: Option<&Fetched<Invoice>>,
) -> Result<(), SyncError> {
    // A draft preview without an id, or an invoice without a customer: nothing to keep.
    if invoice.id.is_none() || invoice.customer.is_none() {
        return Ok(());
    }
    apply(conn, invoice, as_of, current).await
}

/// Why an invoice's latest charge failed, in the words Stripe writes for the customer
/// (`last_payment_error.message`), when Stripe knows. An invoice's `payments` are includable,
/// never in an event, so the invoice is fetched with its payments' intents expanded. A failed
/// look-up costs the email only its reason line: logged, not worth a webhook retry.
pub async fn failure_reason(stripe: &Stripe, invoice: &Invoice) -> Option<String> {
    let id = invoice.id.as_ref()?;
    let request = RetrieveInvoice::new(id.clone())
        .expand(vec!["payments.data.payment.payment_intent".to_owned()]);
    let fetched = match stripe.get(&request).await {
        Ok(fetched) => fetched,
        Err(e) => {
            tracing::warn!(invoice = id.as_str(), error = %e, "could not look up why a payment failed");
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

impl Snapshot for Invoice {
    const TABLE: &'static str = "invoices";
    type Written = ();

    fn row_id(&self) -> String {
        self.id
            .as_ref()
            .map(|id| id.as_str().to_owned())
            .unwrap_or_default()
    }

    async fn write(
        &self,
        conn: &mut PgConnection,
        as_of: i64,
        only_if_newer: bool,
    ) -> sqlx::Result<Option<()>> {
        let Some(customer) = self.customer.as_ref() else {
            return Ok(None);
        };
        let mut lines: Vec<serde_json::Value> = self
            .lines
            .data
            .iter()
            .map(|l| {
                serde_json::json!({ "description": l.description, "quantity": l.quantity, "amount": l.amount })
            })
            .collect();
        // The discount and the tax are not lines on Stripe's invoice but totals beside them;
        // billing settings shows them under the lines, as the invoice itself does.
        let discount: i64 = self
            .total_discount_amounts
            .iter()
            .flatten()
            .map(|d| d.amount)
            .sum();
        let tax: i64 = self.total_taxes.iter().flatten().map(|t| t.amount).sum();
        if discount != 0 {
            lines.push(serde_json::json!({ "description": "Discount", "amount": -discount }));
        }
        if tax != 0 {
            lines.push(serde_json::json!({ "description": "Tax", "amount": tax }));
        }
        let written = sqlx::query(&format!(
            "insert into invoices (id, stripe_customer_id, subscription_id, number, status, currency, total, amount_due,
                 amount_paid, amount_remaining, attempt_count, next_payment_attempt, hosted_invoice_url, invoice_pdf,
                 period_end, created, stripe_as_of, updated_at, lines)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, to_timestamp($12), $13, $14, to_timestamp($15), to_timestamp($16), $17, now(), $18)
             on conflict (id) do update set status = excluded.status, number = excluded.number, total = excluded.total,
                 amount_due = excluded.amount_due, amount_paid = excluded.amount_paid, amount_remaining = excluded.amount_remaining,
                 attempt_count = excluded.attempt_count, next_payment_attempt = excluded.next_payment_attempt,
                 hosted_invoice_url = excluded.hosted_invoice_url, invoice_pdf = excluded.invoice_pdf,
                 lines = excluded.lines,
                 stripe_as_of = greatest(invoices.stripe_as_of, excluded.stripe_as_of), updated_at = now(){}",
            newer_only(Self::TABLE, only_if_newer)
        ))
        .bind(self.row_id())
        .bind(id_of_expandable(customer))
        .bind(invoice_subscription(self))
        .bind(&self.number)
        .bind(self.status.as_ref().map(|s| s.as_str()).unwrap_or("draft"))
        .bind(self.currency.to_string())
        .bind(self.total)
        .bind(self.amount_due)
        .bind(self.amount_paid)
        .bind(self.amount_remaining)
        .bind(self.attempt_count as i32)
        .bind(self.next_payment_attempt.map(|t| t as f64))
        .bind(&self.hosted_invoice_url)
        .bind(&self.invoice_pdf)
        .bind(self.period_end as f64)
        .bind(self.created as f64)
        .bind(as_of)
        .bind(sqlx::types::Json(lines))
        .execute(conn)
        .await?;
        Ok(wrote(&written))
    }

    /// Stripe keeps invoices; a 404 is another account's, with nothing here.
    async fn gone(_: &mut PgConnection, _: &str, _: i64) -> sqlx::Result<()> {
        Ok(())
    }
}

/// `customer.deleted`: the link goes; Stripe cancels the customer's subscriptions with
/// their own events. A later customer for the same user needs new idempotency keys, so the
/// user's customer generation moves on (and, in the sandbox, gets a test clock of its own).
pub async fn unlink_customer(conn: &mut PgConnection, customer: &str) -> sqlx::Result<()> {
    sqlx::query(
        "with gone as (delete from customers where stripe_customer_id = $1 returning user_id)
         update users set stripe_customer_generation = stripe_customer_generation + 1,
                          sandbox_test_clock = null
         where id in (select user_id from gone)",
    )
    .bind(customer)
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
