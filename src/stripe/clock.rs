//! "Now" for a customer. In sandbox mode a customer may live on a test clock (every customer
//! the app makes there does, unless `SANDBOX_TEST_CLOCKS=false`): the clock dates its
//! invoices, payment retries and the failures that start a grace period, so the dates the app
//! shows and the access it gives follow that clock, or the dashboard would disagree with the
//! invoices. Test and live mode follow real time, as Stripe bills there; so does sandbox mode
//! with test clocks turned off, at no cost.

use super::{Stripe, StripeMode};
use std::{
    collections::HashSet,
    sync::{LazyLock, Mutex},
};
use stripe_core::customer::{RetrieveCustomer, RetrieveCustomerReturned};
use stripe_types::Expandable;
use time::OffsetDateTime;
use uuid::Uuid;

/// Whether this deployment follows its customers' test clocks.
pub fn follows_clocks(config: &crate::config::Config) -> bool {
    config.stripe_mode == StripeMode::Sandbox && config.sandbox_test_clocks
}

/// Customers known to have no test clock. A customer's clock is set when it is created and
/// never changes, so once seen without one, real time is theirs for good: no more reads.
static WITHOUT_CLOCK: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Default::default);

/// "Now" for `customer`: their test clock's frozen time when `follow` is on and they have
/// one, real time otherwise (and if the clock cannot be read: the page still renders).
pub async fn now_for_customer(stripe: &Stripe, follow: bool, customer: &str) -> OffsetDateTime {
    let real = OffsetDateTime::now_utc();
    if !follow || known_without_clock(customer) {
        return real;
    }
    let req = RetrieveCustomer::new(customer).expand(vec!["test_clock".to_owned()]);
    match stripe.get(&req).await {
        Ok(RetrieveCustomerReturned::Customer(c)) => match c.test_clock {
            Some(Expandable::Object(clock)) => {
                OffsetDateTime::from_unix_timestamp(clock.frozen_time).unwrap_or(real)
            }
            _ => {
                if let Ok(mut known) = WITHOUT_CLOCK.lock() {
                    known.insert(customer.to_owned());
                }
                real
            }
        },
        Ok(RetrieveCustomerReturned::DeletedCustomer(_)) => real,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the customer's test clock");
            real
        }
    }
}

fn known_without_clock(customer: &str) -> bool {
    WITHOUT_CLOCK
        .lock()
        .map(|known| known.contains(customer))
        .unwrap_or(false)
}

/// [`now_for_customer`] for a user's Stripe customer, from the app's link to it: real time
/// if they have none yet, and without a query unless `follow` is on.
pub async fn now_for_user(
    stripe: &Stripe,
    follow: bool,
    db: &sqlx::PgPool,
    user: Uuid,
) -> OffsetDateTime {
    if !follow {
        return OffsetDateTime::now_utc();
    }
    let customer: Option<String> =
        sqlx::query_scalar("select stripe_customer_id from customers where user_id = $1")
            .bind(user)
            .fetch_optional(db)
            .await
            .ok()
            .flatten();
    match customer {
        Some(customer) => now_for_customer(stripe, follow, &customer).await,
        None => OffsetDateTime::now_utc(),
    }
}
