//! `saas-billing reconcile`: reads each linked customer's subscriptions, invoices, cards and
//! customer record from Stripe and repairs the rows that differ, under the freshness rule
//! the webhooks use. For outages longer than Stripe's retries and older than the 30 days of
//! events `replay-events` can reach.

use crate::stripe::{
    freshness::{Snapshot, SyncError},
    Stripe,
};
use sqlx::{PgConnection, PgPool};
use stripe_billing::{
    invoice::ListInvoice,
    subscription::{ListSubscription, ListSubscriptionStatus},
};
use stripe_core::customer::{RetrieveCustomer, RetrieveCustomerReturned};
use stripe_payment::payment_method::{ListPaymentMethod, ListPaymentMethodType};

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// One customer only (`--customer cus_…`); otherwise every customer linked to a user.
    pub customer: Option<String>,
    /// Subscriptions and invoices created at or after this time (unix seconds).
    pub since: Option<i64>,
    /// Compare and report, change nothing.
    pub dry_run: bool,
}

/// Per kind of object: how many were compared, and how many differed (and were repaired,
/// unless it was a dry run).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub checked: usize,
    pub repaired: usize,
}

impl Tally {
    pub fn unchanged(&self) -> usize {
        self.checked - self.repaired
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub customers: Tally,
    pub subscriptions: Tally,
    pub invoices: Tally,
    pub payment_methods: Tally,
}

pub async fn reconcile(
    db: &PgPool,
    stripe: &Stripe,
    grace_days: u32,
    options: &Options,
) -> Result<Summary, SyncError> {
    let customers: Vec<String> = match &options.customer {
        Some(one) => vec![one.clone()],
        None => {
            sqlx::query_scalar("select stripe_customer_id from customers order by user_id")
                .fetch_all(db)
                .await?
        }
    };
    let since = options.since.unwrap_or(i64::MIN);
    let mut summary = Summary::default();
    for id in &customers {
        // Read first, note when: what Stripe said then is a snapshot as of that second, and
        // a webhook of a later second still wins over it (and it over an earlier one).
        let as_of = time::OffsetDateTime::now_utc().unix_timestamp();
        let customer = match stripe.get(&RetrieveCustomer::new(id.as_str())).await? {
            RetrieveCustomerReturned::Customer(customer) => customer,
            // Deleted at Stripe: its `customer.deleted` unlinks it; nothing here to compare.
            RetrieveCustomerReturned::DeletedCustomer(_) => continue,
        };
        let mut subscriptions = stripe
            .all(
                ListSubscription::new()
                    .customer(id.as_str())
                    .status(ListSubscriptionStatus::All)
                    .limit(100)
                    .paginate(),
            )
            .await?;
        subscriptions.retain(|s| s.created >= since);
        let mut invoices = stripe
            .all(
                ListInvoice::new()
                    .customer(id.as_str())
                    .limit(100)
                    .paginate(),
            )
            .await?;
        invoices.retain(|i| i.created >= since);
        let cards = stripe
            .all(
                ListPaymentMethod::new()
                    .customer(id.as_str())
                    .type_(ListPaymentMethodType::Card)
                    .limit(100)
                    .paginate(),
            )
            .await?;

        let mut tx = db.begin().await?;
        for card in &cards {
            let row = Row::of("payment_methods", card.id.as_str());
            let before = row.content(&mut tx).await?;
            crate::billing::sync::apply_payment_method(&mut tx, card).await?;
            tally(
                &mut summary.payment_methods,
                before,
                row.content(&mut tx).await?,
            );
        }
        let row = Row::customer(id);
        let before = row.content(&mut tx).await?;
        crate::billing::sync::apply_customer(&mut tx, &customer).await?;
        tally(&mut summary.customers, before, row.content(&mut tx).await?);
        for sub in &subscriptions {
            let row = Row::of("subscriptions", sub.id.as_str());
            let before = row.content(&mut tx).await?;
            crate::subscriptions::sync::reconcile_subscription(&mut tx, sub, as_of, grace_days)
                .await?;
            tally(
                &mut summary.subscriptions,
                before,
                row.content(&mut tx).await?,
            );
        }
        for invoice in invoices.iter().filter(|i| i.id.is_some()) {
            let id = invoice.row_id();
            let row = Row::of("invoices", &id);
            let before = row.content(&mut tx).await?;
            invoice.write(&mut tx, as_of, true).await?;
            tally(&mut summary.invoices, before, row.content(&mut tx).await?);
        }
        if options.dry_run {
            tx.rollback().await?;
        } else {
            tx.commit().await?;
        }
    }
    Ok(summary)
}

/// Counts a row as checked, and as repaired when its content changed.
fn tally(t: &mut Tally, before: Option<String>, after: Option<String>) {
    t.checked += 1;
    t.repaired += usize::from(before != after);
}

/// One row, for comparing its content before and after a write: everything but the
/// bookkeeping columns (the Stripe time it reflects, when it was written).
struct Row<'a> {
    sql: String,
    id: &'a str,
}

impl<'a> Row<'a> {
    fn of(table: &str, id: &'a str) -> Self {
        Self {
            sql: format!(
                "select (to_jsonb(t) - 'stripe_as_of' - 'updated_at')::text from {table} t where id = $1"
            ),
            id,
        }
    }

    /// The customer's row, keyed by its Stripe id.
    fn customer(id: &'a str) -> Self {
        Self {
            sql: "select to_jsonb(c)::text from customers c where stripe_customer_id = $1".into(),
            id,
        }
    }

    async fn content(&self, conn: &mut PgConnection) -> Result<Option<String>, SyncError> {
        Ok(sqlx::query_scalar(&self.sql)
            .bind(self.id)
            .fetch_optional(conn)
            .await?)
    }
}
