//! Test clocks on the app's sandbox account, and waiting for what they cause.

use super::{api, eventually, ok, TestApp};
use reqwest::Method;

/// Advances a test clock to `to` and waits until it is `ready`.
pub async fn advance_clock_to(app: &TestApp, clock: &str, to: i64) {
    ok(
        app,
        Method::POST,
        &format!("/test_helpers/test_clocks/{clock}/advance"),
        &[("frozen_time", &to.to_string())],
    )
    .await;
    let ready = eventually(|| async {
        api(
            app,
            Method::GET,
            &format!("/test_helpers/test_clocks/{clock}"),
            &[],
        )
        .await
        .1["status"]
            == "ready"
    })
    .await;
    assert!(ready, "the clock became ready");
}

/// The status the app stored for the customer's latest subscription.
pub async fn app_status(app: &TestApp, customer: &str) -> Option<String> {
    sqlx::query_scalar("select status from subscriptions where stripe_customer_id = $1 order by updated_at desc limit 1")
        .bind(customer)
        .fetch_optional(&app.db)
        .await
        .unwrap()
}

/// When the customer's subscription failed to renew (`past_due_since`), in Unix seconds.
pub async fn failed_at(app: &TestApp, customer: &str) -> i64 {
    subscription_time(app, customer, "past_due_since").await
}

/// When the customer's subscription's current period ends, in Unix seconds.
pub async fn period_end(app: &TestApp, customer: &str) -> i64 {
    subscription_time(app, customer, "current_period_end").await
}

async fn subscription_time(app: &TestApp, customer: &str, column: &str) -> i64 {
    let seconds: f64 = sqlx::query_scalar(&format!(
        "select extract(epoch from {column})::float8 from subscriptions where stripe_customer_id = $1"
    ))
    .bind(customer)
    .fetch_one(&app.db)
    .await
    .unwrap();
    seconds as i64
}

/// Waits until the app has stored `status` for the customer's subscription.
pub async fn eventually_status(app: &TestApp, customer: &str, status: &str) -> bool {
    eventually(|| async { app_status(app, customer).await.as_deref() == Some(status) }).await
}
