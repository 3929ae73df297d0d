//! The user's Stripe customer, created on first need and never twice.

use crate::{accounts::User, error::AppError, stripe::Stripe};
use sqlx::PgPool;
use stripe_core::customer::CreateCustomer;

/// Returns the user's Stripe customer id, creating the customer if needed. Race-free without
/// a lock: concurrent callers send the same idempotency key, so Stripe creates one customer
/// and replays it to the others, and the unique constraint keeps one row.
pub async fn ensure_customer(
    db: &PgPool,
    stripe: &Stripe,
    user: &User,
    test_clock: bool,
) -> Result<String, AppError> {
    if let Some(id) = stripe_customer_id(db, user).await? {
        return Ok(id);
    }
    // Bumped when Stripe deletes the user's customer, so the keys below are new then.
    let generation: i32 =
        sqlx::query_scalar("select stripe_customer_generation from users where id = $1")
            .bind(user.id)
            .fetch_one(db)
            .await?;
    let key = |what: &str| match generation {
        0 => format!("{what}-for-user-{}", user.id),
        n => format!("{what}-for-user-{}-{n}", user.id),
    };
    // In the sandbox each customer lives on its own test clock, so the sandbox dashboard can
    // move their time forward (renewals, failed payments, trial ends) on demand.
    let clock = if test_clock {
        Some(test_clock_for(db, stripe, user, &key("clock")).await?)
    } else {
        None
    };
    let mut create = CreateCustomer::new()
        .email(user.email.as_str())
        .metadata([("user_id".to_owned(), user.id.to_string())]);
    if let Some(clock) = clock {
        create = create.test_clock(clock);
    }
    let customer = stripe.post(&create, &key("customer")).await?;
    // Either unique constraint may be the one a concurrent twin trips first; both mean
    // "already recorded", and the select below returns the winner.
    sqlx::query("insert into customers (user_id, stripe_customer_id) values ($1, $2) on conflict do nothing")
        .bind(user.id)
        .bind(customer.id.as_str())
        .execute(db)
        .await?;
    stripe_customer_id(db, user)
        .await?
        .ok_or_else(|| AppError::internal("customer row missing after insert"))
}

/// The user's test clock: the recorded one, or a new one, recorded before any customer is
/// made on it. A clock's frozen time is "now", different on every attempt, so its
/// idempotency key carries that time: one key per attempt, and the first recorded wins.
async fn test_clock_for(
    db: &PgPool,
    stripe: &Stripe,
    user: &User,
    key: &str,
) -> Result<String, AppError> {
    use stripe_billing::test_helpers_test_clock::CreateTestHelpersTestClock;
    let recorded: Option<String> =
        sqlx::query_scalar("select sandbox_test_clock from users where id = $1")
            .bind(user.id)
            .fetch_one(db)
            .await?;
    if let Some(clock) = recorded {
        return Ok(clock);
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let clock = stripe
        .post(
            &CreateTestHelpersTestClock::new(now).name(format!("user {}", user.id)),
            &format!("{key}-{now}"),
        )
        .await?;
    Ok(sqlx::query_scalar(
        "update users set sandbox_test_clock = coalesce(sandbox_test_clock, $2) where id = $1
         returning sandbox_test_clock",
    )
    .bind(user.id)
    .bind(clock.id.as_str())
    .fetch_one(db)
    .await?)
}

async fn stripe_customer_id(db: &PgPool, user: &User) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select stripe_customer_id from customers where user_id = $1")
        .bind(user.id)
        .fetch_optional(db)
        .await
}
