//! The subscription statuses time leads to, each as Stripe reaches it: `incomplete_expired`
//! 23 hours after an unpaid first invoice, `paused` when a trial without a card ends and the
//! subscription asked for that, and `unpaid` or still `past_due` after the last retry when the
//! account's setting says so. Each ends decoding in async-stripe's types.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use stripe_billing::subscription::RetrieveSubscription;
use stripe_sandbox::AfterFailedRetries;

const DAY: i64 = 86_400;
const START: i64 = 1_800_000_000;

/// A customer on a fresh clock with `card` attached as default (if any), and a monthly price.
struct Setup {
    key: String,
    clock: String,
    customer: String,
    price: String,
}

async fn setup(app: &TestSandbox, card: Option<&str>) -> Setup {
    let key = test_key();
    let ok = |(status, body): (StatusCode, Value)| {
        assert_eq!(status, StatusCode::OK, "{body}");
        body["id"].as_str().unwrap().to_owned()
    };
    let start = START.to_string();
    let clock = ok(app
        .api(
            Method::POST,
            "/test_helpers/test_clocks",
            Some(&key),
            &[("frozen_time", &start)],
        )
        .await);
    let customer = ok(app
        .api(
            Method::POST,
            "/customers",
            Some(&key),
            &[("email", "status@example.com"), ("test_clock", &clock)],
        )
        .await);
    if let Some(card) = card {
        let pm = ok(app
            .api(
                Method::POST,
                &format!("/payment_methods/{card}/attach"),
                Some(&key),
                &[("customer", &customer)],
            )
            .await);
        ok(app
            .api(
                Method::POST,
                &format!("/customers/{customer}"),
                Some(&key),
                &[("invoice_settings[default_payment_method]", &pm)],
            )
            .await);
    }
    let product = ok(app
        .api(Method::POST, "/products", Some(&key), &[("name", "Plan")])
        .await);
    let price = ok(app
        .api(
            Method::POST,
            "/prices",
            Some(&key),
            &[
                ("product", &product),
                ("unit_amount", "2900"),
                ("currency", "usd"),
                ("recurring[interval]", "month"),
            ],
        )
        .await);
    Setup {
        key,
        clock,
        customer,
        price,
    }
}

impl Setup {
    async fn subscribe(&self, app: &TestSandbox, extra: &[(&str, &str)]) -> Value {
        let mut form = vec![
            ("customer", self.customer.as_str()),
            ("items[0][price]", self.price.as_str()),
        ];
        form.extend_from_slice(extra);
        let (status, sub) = app
            .api(Method::POST, "/subscriptions", Some(&self.key), &form)
            .await;
        assert_eq!(status, StatusCode::OK, "{sub}");
        sub
    }

    /// Moves the clock to `START + days` and waits until it is ready.
    async fn advance_to_day(&self, app: &TestSandbox, days: i64) {
        let to = (START + days * DAY).to_string();
        let (status, body) = app
            .api(
                Method::POST,
                &format!("/test_helpers/test_clocks/{}/advance", self.clock),
                Some(&self.key),
                &[("frozen_time", &to)],
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            eventually(|| async {
                let (_, clock) = app
                    .api(
                        Method::GET,
                        &format!("/test_helpers/test_clocks/{}", self.clock),
                        Some(&self.key),
                        &[],
                    )
                    .await;
                clock["status"] == "ready"
            })
            .await,
            "the clock became ready"
        );
    }

    /// The subscription as async-stripe decodes it, and its status.
    async fn status(&self, app: &TestSandbox, id: &str) -> String {
        let sub = RetrieveSubscription::new(id)
            .send(&app.stripe(&self.key))
            .await
            .expect("the subscription decodes");
        sub.status.as_str().to_owned()
    }

    async fn events(&self, app: &TestSandbox, kind: &str) -> Vec<Value> {
        let (_, list) = app
            .api(
                Method::GET,
                &format!("/events?type={kind}"),
                Some(&self.key),
                &[],
            )
            .await;
        list["data"].as_array().cloned().unwrap_or_default()
    }

    async fn get(&self, app: &TestSandbox, path: &str) -> Value {
        app.api(Method::GET, path, Some(&self.key), &[]).await.1
    }
}

#[tokio::test]
async fn an_unpaid_first_invoice_expires_after_23_hours_and_is_voided() {
    let app = spawn_sandbox().await;
    let s = setup(&app, Some("pm_card_authenticationRequired")).await;
    // 3-D Secure is needed and nobody completes it: incomplete, the invoice open.
    let sub = s.subscribe(&app, &[]).await;
    let id = sub["id"].as_str().unwrap();
    assert_eq!(sub["status"], "incomplete");
    let invoice = sub["latest_invoice"].as_str().unwrap().to_owned();
    assert_eq!(
        s.get(&app, &format!("/invoices/{invoice}")).await["status"],
        "open"
    );

    // 22 hours in: still incomplete. 23 hours: expired for good, the invoice void.
    let to = (START + 22 * 3_600).to_string();
    app.api(
        Method::POST,
        &format!("/test_helpers/test_clocks/{}/advance", s.clock),
        Some(&s.key),
        &[("frozen_time", &to)],
    )
    .await;
    assert!(
        eventually(|| async {
            s.get(&app, &format!("/test_helpers/test_clocks/{}", s.clock))
                .await["status"]
                == "ready"
        })
        .await
    );
    assert_eq!(s.status(&app, id).await, "incomplete");
    s.advance_to_day(&app, 1).await;
    assert_eq!(s.status(&app, id).await, "incomplete_expired");
    let sub = s.get(&app, &format!("/subscriptions/{id}")).await;
    assert_eq!(sub["ended_at"], START + 23 * 3_600);
    let invoice = s.get(&app, &format!("/invoices/{invoice}")).await;
    assert_eq!(invoice["status"], "void", "{invoice}");
    assert_eq!(
        invoice["status_transitions"]["voided_at"],
        START + 23 * 3_600
    );
    assert_eq!(s.events(&app, "invoice.voided").await.len(), 1);
    let updates = s.events(&app, "customer.subscription.updated").await;
    assert_eq!(
        updates[0]["data"]["object"]["status"], "incomplete_expired",
        "the newest update says so"
    );
    // Terminal: a month later nothing more was billed.
    s.advance_to_day(&app, 40).await;
    assert_eq!(s.status(&app, id).await, "incomplete_expired");
    let invoices = s
        .get(&app, &format!("/invoices?customer={}", s.customer))
        .await;
    assert_eq!(invoices["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_trial_without_a_card_ends_as_the_subscription_asked() {
    let app = spawn_sandbox().await;
    let s = setup(&app, None).await;
    let paused = s
        .subscribe(
            &app,
            &[
                ("trial_period_days", "7"),
                (
                    "trial_settings[end_behavior][missing_payment_method]",
                    "pause",
                ),
            ],
        )
        .await;
    assert_eq!(
        paused["trial_settings"]["end_behavior"]["missing_payment_method"],
        "pause"
    );
    let canceled = s
        .subscribe(
            &app,
            &[
                ("trial_period_days", "7"),
                (
                    "trial_settings[end_behavior][missing_payment_method]",
                    "cancel",
                ),
            ],
        )
        .await;
    let invoiced = s.subscribe(&app, &[("trial_period_days", "7")]).await;
    // Stripe's values only.
    let (status, body) = app
        .api(
            Method::POST,
            "/subscriptions",
            Some(&s.key),
            &[
                ("customer", s.customer.as_str()),
                ("items[0][price]", s.price.as_str()),
                ("trial_period_days", "7"),
                (
                    "trial_settings[end_behavior][missing_payment_method]",
                    "wait",
                ),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"]["param"],
        "trial_settings[end_behavior][missing_payment_method]"
    );

    s.advance_to_day(&app, 8).await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    assert_eq!(s.status(&app, &id(&paused)).await, "paused");
    assert_eq!(s.status(&app, &id(&canceled)).await, "canceled");
    // The default: an invoice nobody can pay, past due.
    assert_eq!(s.status(&app, &id(&invoiced)).await, "past_due");
    let pauses = s.events(&app, "customer.subscription.paused").await;
    assert_eq!(pauses.len(), 1);
    assert_eq!(pauses[0]["data"]["object"]["id"], id(&paused).as_str());
    // Paused bills nothing: only the past-due subscription has an invoice.
    let invoices = s
        .get(&app, &format!("/invoices?customer={}", s.customer))
        .await;
    let billed: Vec<&Value> = invoices["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["amount_due"].as_i64() > Some(0))
        .collect();
    assert_eq!(billed.len(), 1, "{invoices}");
}

#[tokio::test]
async fn after_the_last_retry_the_account_setting_decides() {
    for (setting, status) in [
        (AfterFailedRetries::Unpaid, "unpaid"),
        (AfterFailedRetries::PastDue, "past_due"),
        (AfterFailedRetries::Cancel, "canceled"),
    ] {
        let app = spawn_sandbox_with(|s| s.after_failed_retries = setting).await;
        let s = setup(&app, Some("pm_card_chargeCustomerFail")).await;
        let sub = s.subscribe(&app, &[("trial_period_days", "1")]).await;
        let id = sub["id"].as_str().unwrap();
        // The trial ends and the card fails; retries on days 3, 5 and 7 fail too.
        s.advance_to_day(&app, 2).await;
        assert_eq!(s.status(&app, id).await, "past_due");
        s.advance_to_day(&app, 9).await;
        assert_eq!(s.status(&app, id).await, status, "{setting:?}");
        let open = s
            .get(
                &app,
                &format!("/invoices?customer={}&status=open", s.customer),
            )
            .await;
        if setting == AfterFailedRetries::Unpaid {
            // The invoice stays open with no attempt planned.
            assert_eq!(
                open["data"][0]["next_payment_attempt"],
                Value::Null,
                "{open}"
            );
            assert_eq!(open["data"][0]["attempt_count"], 4);
        }
    }
}
