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

/// Waits until the app has stored `status` for the customer's subscription.
pub async fn eventually_status(app: &TestApp, customer: &str, status: &str) -> bool {
    eventually(|| async { app_status(app, customer).await.as_deref() == Some(status) }).await
}
