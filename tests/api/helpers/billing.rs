//! A customer on a test clock with a subscription, made through the app's sandbox account
//! as a merchant's backend would, and moved through time.

use super::{advance_clock_to, now, ok, signed_up_user, TestApp};
use reqwest::Method;

pub const DAY: i64 = 86_400;

pub struct Billed {
    pub user: saas_billing::accounts::User,
    pub customer: String,
    pub clock: String,
    pub start: i64,
}

/// A signed-up user whose customer lives on a test clock, pays with `card` (a test id),
/// and has a subscription to the cheapest monthly plan (`trial_days`, if any).
pub async fn subscribed(app: &TestApp, card: &str, trial_days: Option<&str>) -> Billed {
    let trial: Vec<(&str, &str)> = trial_days
        .map(|days| ("trial_period_days", days))
        .into_iter()
        .collect();
    subscribed_with(app, Some(card), &trial).await
}

/// [`subscribed`] with any card (or none) and further subscription parameters.
pub async fn subscribed_with(app: &TestApp, card: Option<&str>, extra: &[(&str, &str)]) -> Billed {
    let user = signed_up_user(app, "billing").await;
    let start = now();
    let clock = ok(
        app,
        Method::POST,
        "/test_helpers/test_clocks",
        &[("frozen_time", &start.to_string())],
    )
    .await;
    let clock = clock["id"].as_str().unwrap().to_owned();
    let uid = user.id.to_string();
    let customer = ok(
        app,
        Method::POST,
        "/customers",
        &[
            ("email", &user.email),
            ("test_clock", &clock),
            ("metadata[user_id]", &uid),
        ],
    )
    .await;
    let customer = customer["id"].as_str().unwrap().to_owned();
    if let Some(card) = card {
        set_card(app, &customer, card).await;
    }
    let price: String = sqlx::query_scalar(
        "select id from prices where kind = 'recurring' and recurring_interval = 'month' and active order by unit_amount limit 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let mut form = vec![
        ("customer", customer.as_str()),
        ("items[0][price]", price.as_str()),
        ("metadata[user_id]", uid.as_str()),
    ];
    form.extend_from_slice(extra);
    ok(app, Method::POST, "/subscriptions", &form).await;
    Billed {
        user,
        customer,
        clock,
        start,
    }
}

pub async fn set_card(app: &TestApp, customer: &str, card: &str) {
    let pm = ok(
        app,
        Method::POST,
        &format!("/payment_methods/{card}/attach"),
        &[("customer", customer)],
    )
    .await;
    ok(
        app,
        Method::POST,
        &format!("/customers/{customer}"),
        &[(
            "invoice_settings[default_payment_method]",
            pm["id"].as_str().unwrap(),
        )],
    )
    .await;
}

/// Advances the clock to `start + days` and waits until the sandbox is done with it.
pub async fn advance(app: &TestApp, b: &Billed, days: i64) {
    advance_clock_to(app, &b.clock, b.start + days * DAY).await;
}
