//! Usage-based billing end to end through the app's own sandbox: counting under
//! concurrency from two instances, the reporter's exactly-once delivery to the meter (a
//! crash between sending and marking included), the invoice after the period, the 80%
//! warning and the hard limit, API tokens, and reconcile-usage.

use crate::helpers::*;
use reqwest::{header, Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;

/// A user subscribed (through the API, on a test clock, card on file) to `plan` with its
/// metered item, once the app has stored the subscription with it.
async fn metered(app: &TestApp, client: &reqwest::Client, plan: &str) -> Billed {
    let email = unique_email("usage");
    app.call_with(
        client,
        "signup",
        &[("email", &email), ("password", PASSWORD)],
    )
    .await;
    let user: saas_billing::accounts::User = sqlx::query_as(
        "select id, email, password_hash, email_verified_at from users where email = $1",
    )
    .bind(&email)
    .fetch_one(&app.db)
    .await
    .unwrap();
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
    set_card(app, &customer, "pm_card_visa").await;
    let price = |key: String| async move {
        sqlx::query_scalar::<_, String>("select id from prices where lookup_key = $1")
            .bind(key)
            .fetch_one(&app.db)
            .await
            .unwrap()
    };
    let plan_price = price(format!("{plan}_monthly")).await;
    let usage_price = price(format!("{plan}_monthly_reports")).await;
    ok(
        app,
        Method::POST,
        "/subscriptions",
        &[
            ("customer", &customer),
            ("items[0][price]", &plan_price),
            ("items[1][price]", &usage_price),
            ("metadata[user_id]", &uid),
        ],
    )
    .await;
    let stored = eventually(|| async {
        sqlx::query_scalar::<_, Option<String>>(
            "select metered_price_id from subscriptions where stripe_customer_id = $1",
        )
        .bind(&customer)
        .fetch_optional(&app.db)
        .await
        .unwrap()
        .flatten()
            == Some(usage_price.clone())
    })
    .await;
    assert!(
        stored,
        "the app stored the subscription with its metered item"
    );
    Billed {
        user,
        customer,
        clock,
        start,
    }
}

/// Runs a report as the dashboard's button does.
async fn run_report(app: &TestApp, client: &reqwest::Client) -> StatusCode {
    app.call_with(client, "feature", &[]).await.status()
}

async fn counted(app: &TestApp, customer: &str) -> (i64, i64) {
    sqlx::query_as(
        "select coalesce((select c.used from usage_counters c join subscriptions s on s.id = c.subscription_id
                          where s.stripe_customer_id = $1 order by c.period_start desc limit 1), 0),
                (select count(*) from usage_events e join subscriptions s on s.id = e.subscription_id
                 where s.stripe_customer_id = $1)",
    )
    .bind(customer)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// What the sandbox's meter holds for the customer: (events, their sum).
async fn in_stripe(app: &TestApp, customer: &str) -> (i64, i64) {
    sqlx::query_as(
        "select count(*), coalesce(sum(value), 0)::bigint from stripe_sandbox.meter_events where customer = $1",
    )
    .bind(customer)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn two_instances_and_sixteen_callers_count_every_report_once_and_report_it_once() {
    let database = TestDatabase::create().await;
    let a = spawn_app_on(&database, |_| {}).await;
    let b = spawn_app_on(&database, |_| {}).await;
    let client = new_client();
    let billed = metered(&a, &client, "pro").await;
    let client = Arc::new(client);
    let callers: Vec<_> = (0..16)
        .map(|i| {
            let client = client.clone();
            let url = if i % 2 == 0 {
                a.at("/api/feature")
            } else {
                b.at("/api/feature")
            };
            tokio::spawn(async move {
                let mut ok = 0;
                for _ in 0..10 {
                    let res = client.post(&url).send().await.unwrap();
                    ok += usize::from(res.status() == StatusCode::OK);
                }
                ok
            })
        })
        .collect();
    let mut ran = 0;
    for caller in callers {
        ran += caller.await.unwrap();
    }
    assert_eq!(ran, 160);
    assert_eq!(counted(&a, &billed.customer).await, (160, 160));

    // Both instances report at once: every event is in exactly one meter event.
    let (sa, sb) = (a.stripe().await, b.stripe().await);
    let (ra, rb) = tokio::join!(
        saas_billing::usage::report::run_once(&a.db, &sa),
        saas_billing::usage::report::run_once(&b.db, &sb),
    );
    ra.unwrap();
    rb.unwrap();
    saas_billing::usage::report::run_once(&a.db, &sa)
        .await
        .unwrap();
    assert_eq!(in_stripe(&a, &billed.customer).await.1, 160);
    let unsent: i64 =
        sqlx::query_scalar("select count(*) from usage_reports where sent_at is null")
            .fetch_one(&a.db)
            .await
            .unwrap();
    assert_eq!(unsent, 0);
}

#[tokio::test]
async fn a_crash_between_sending_and_marking_sends_again_and_stripe_counts_once() {
    let app = spawn_app().await;
    let billed = metered(&app, &app.client, "pro").await;
    for _ in 0..5 {
        assert_eq!(run_report(&app, &app.client).await, StatusCode::OK);
    }
    let stripe = app.stripe().await;
    use saas_billing::usage::report;
    assert_eq!(report::claim(&app.db).await.unwrap(), 1);
    let claimed: report::Report = sqlx::query_as(
        "select identifier, stripe_customer_id, event_name, quantity, timestamp from usage_reports",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(claimed.quantity, 5);
    // Sent, and the process dies before marking it.
    assert_eq!(
        report::send(&stripe, &claimed).await.unwrap(),
        report::Sent::Accepted
    );
    // The next round sends it again: Stripe already has that identifier.
    let round = report::run_once(&app.db, &stripe).await.unwrap();
    assert_eq!((round.sent, round.failed), (1, 0));
    assert_eq!(in_stripe(&app, &billed.customer).await, (1, 5));

    // reconcile-usage agrees; a report marked sent that Stripe never got is a difference.
    let (fine, said) = app.run_command(&["reconcile-usage"]).await;
    assert!(
        fine && said.contains("counted 5, sent 5, unsent 0, refused 0, Stripe 5: ok"),
        "{said}"
    );
    sqlx::query(
        "insert into usage_reports (identifier, subscription_id, stripe_customer_id, event_name, quantity, timestamp, sent_at)
         select 'lost', subscription_id, stripe_customer_id, event_name, 2, timestamp, now() from usage_reports limit 1",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "insert into usage_events (user_id, subscription_id, period_start, quantity, source, reported_in)
         select user_id, subscription_id, period_start, 2, 'web', 'lost' from usage_events limit 1",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let (fine, said) = app.run_command(&["reconcile-usage"]).await;
    assert!(
        !fine && said.contains("counted 7, sent 7") && said.contains("Stripe 5: DIFFERENT"),
        "{said}"
    );
}

#[tokio::test]
async fn the_invoice_after_the_period_bills_the_usage_through_the_graduated_tiers() {
    let app = spawn_app().await;
    let billed = metered(&app, &app.client, "starter").await;
    // Starter: 100 reports included, then 10 cents each.
    for _ in 0..130 {
        assert_eq!(run_report(&app, &app.client).await, StatusCode::OK);
    }
    let stripe = app.stripe().await;
    saas_billing::usage::report::run_once(&app.db, &stripe)
        .await
        .unwrap();
    let page = app.page("/dashboard").await;
    assert!(page.contains("130 of 200 reports"), "{page}");
    assert!(
        page.contains("100 included, then $0.10 per report"),
        "{page}"
    );
    // Stripe's estimate: next month's plan and this month's usage.
    assert!(page.contains("so far: $12.00"), "{page}");

    advance(&app, &billed, 32).await;
    let billed_usage = eventually(|| async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from invoices where stripe_customer_id = $1 and status = 'paid' and total = 1200",
        )
        .bind(&billed.customer)
        .fetch_one(&app.db)
        .await
        .unwrap()
            == 1
    })
    .await;
    assert!(
        billed_usage,
        "the renewal billed $9 for the plan and $3 for 30 reports"
    );
    let invoice = ok(
        &app,
        Method::GET,
        &format!("/invoices?customer={}&status=paid", billed.customer),
        &[],
    )
    .await;
    let lines: Vec<(i64, i64)> = invoice["data"][0]["lines"]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["quantity"].as_i64().unwrap_or(0),
                l["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(lines.contains(&(130, 300)), "{lines:?}");
    // Billing settings list what the invoice charged for, usage included.
    assert!(
        app.page_eventually_contains("/settings/billing", "130 × Starter (usage): $3.00")
            .await
    );
    // The new period counts from zero.
    let page = app.page("/dashboard").await;
    assert!(
        page.contains("0 of 200 reports") || page.contains("No reports yet"),
        "{page}"
    );
}

#[tokio::test]
async fn the_80_percent_warning_goes_out_once_and_the_hard_limit_refuses() {
    let app = spawn_app().await;
    let billed = metered(&app, &app.client, "starter").await;
    for _ in 0..159 {
        assert_eq!(run_report(&app, &app.client).await, StatusCode::OK);
    }
    assert_eq!(emails(&app, billed.user.id, "usage_warning").await, 0);
    // The 160th (80% of 200), and more at once: one warning.
    let client = &app.client;
    let burst: Vec<_> = (0..20).map(|_| run_report(&app, client)).collect();
    let statuses = futures::future::join_all(burst).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(emails(&app, billed.user.id, "usage_warning").await, 1);
    let body = email_body(&app, billed.user.id, "usage_warning")
        .await
        .unwrap();
    assert!(body.contains("of the 200 reports"), "{body}");
    assert!(app
        .page("/dashboard")
        .await
        .contains("You have used 80% of this period"));

    for _ in 0..21 {
        assert_eq!(run_report(&app, &app.client).await, StatusCode::OK);
    }
    assert_eq!(counted(&app, &billed.customer).await, (200, 200));
    let res = app.call("feature", &[]).await;
    let body = assert_status(res, StatusCode::TOO_MANY_REQUESTS).await;
    assert!(body.contains("UsageLimitReached"), "{body}");
    assert_eq!(
        counted(&app, &billed.customer).await,
        (200, 200),
        "nothing counted"
    );
    let page = app.page("/dashboard").await;
    assert!(page.contains("You have used all 200 reports"), "{page}");
}

/// Makes an API token through the settings page's functions and returns it.
async fn token(app: &TestApp, client: &reqwest::Client, name: &str) -> String {
    let res = app
        .call_with(client, "tokens/create", &[("name", name)])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let listed: Value = app
        .call_with(client, "tokens", &[])
        .await
        .json()
        .await
        .unwrap();
    listed["fresh"]
        .as_str()
        .expect("shown once, right after")
        .to_owned()
}

async fn api_report(app: &TestApp, token: &str) -> reqwest::Response {
    new_client()
        .post(app.at("/api/v1/reports"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn api_tokens_run_reports_until_revoked_and_refuse_anything_else() {
    let app = spawn_app().await;
    let billed = metered(&app, &app.client, "starter").await;
    let secret = token(&app, &app.client, "Nightly export").await;
    assert!(secret.starts_with("sbt_"));
    // Shown once: the list afterwards has its name and last four characters only.
    let listed: Value = app.call("tokens", &[]).await.json().await.unwrap();
    assert!(listed["fresh"].is_null());
    assert_eq!(listed["tokens"][0]["name"], "Nightly export");
    assert_eq!(listed["tokens"][0]["hint"], &secret[secret.len() - 4..]);
    let stored: Vec<u8> = sqlx::query_scalar("select token_hash from api_tokens")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_ne!(stored, secret.as_bytes(), "only a hash is kept");

    let res = api_report(&app, &secret).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["usage"]["used"], 1);
    assert_eq!(counted(&app, &billed.customer).await.0, 1);

    for wrong in ["", "sbt_nope", &format!("{secret}x"), "Bearer"] {
        let res = api_report(&app, wrong).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{wrong}");
    }
    // Another user cannot revoke it; its owner can.
    let id = listed["tokens"][0]["id"].as_str().unwrap();
    let other = new_client();
    app.call_with(
        &other,
        "signup",
        &[("email", &unique_email("other")), ("password", PASSWORD)],
    )
    .await;
    assert_status(
        app.call_with(&other, "tokens/revoke", &[("id", id)]).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    // Their own token, without a subscription: refused with a reason.
    let theirs = token(&app, &other, "Mine").await;
    assert_eq!(
        api_report(&app, &theirs).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call("tokens/revoke", &[("id", id)]).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        api_report(&app, &secret).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // At the hard limit, the API says when it resets.
    let fresh = token(&app, &app.client, "Again").await;
    sqlx::query("update usage_counters set used = 200")
        .execute(&app.db)
        .await
        .unwrap();
    let res = api_report(&app, &fresh).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: i64 = res.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 0, "{wait}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "usage_limit_reached");
}

#[tokio::test]
async fn wrong_tokens_from_one_network_are_refused_before_any_token_is_checked() {
    let app = spawn_app_with(|c| c.reports_api_failures_per_network = 3).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(api_report(&app, "sbt_guess").await.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
}

#[tokio::test]
async fn usage_stripe_will_never_take_is_kept_and_usage_ahead_of_its_clock_waits() {
    let app = spawn_app().await;
    let billed = metered(&app, &app.client, "pro").await;
    assert_eq!(run_report(&app, &app.client).await, StatusCode::OK);
    use saas_billing::usage::report;
    assert_eq!(report::claim(&app.db).await.unwrap(), 1);
    // Two more reports for the same customer: one 40 days old (the app was down that
    // long), one ten minutes ahead of the customer's clock.
    for (identifier, offset) in [("too-old", -40 * 86_400), ("ahead", 600)] {
        sqlx::query(
            "insert into usage_reports (identifier, subscription_id, stripe_customer_id, event_name, quantity, timestamp)
             select $1, subscription_id, stripe_customer_id, event_name, 1, $2 from usage_reports limit 1",
        )
        .bind(identifier)
        .bind(billed.start + offset)
        .execute(&app.db)
        .await
        .unwrap();
    }
    let stripe = app.stripe().await;
    let round = report::send_unsent(&app.db, &stripe).await.unwrap();
    let why: Vec<(String, Option<String>)> =
        sqlx::query_as("select identifier, refused from usage_reports")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        (round.sent, round.refused, round.failed),
        (1, 1, 1),
        "{round:?} {why:?}"
    );
    let states: Vec<(String, bool, Option<String>)> = sqlx::query_as(
        "select identifier, sent_at is not null, refused from usage_reports where identifier in ('too-old', 'ahead') order by identifier",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(states[0].0, "ahead");
    assert_eq!(
        (states[0].1, states[0].2.is_none()),
        (false, true),
        "waits for the next round"
    );
    assert_eq!(states[1].0, "too-old");
    assert!(
        states[1]
            .2
            .as_deref()
            .is_some_and(|r| r.contains("35 days")),
        "{states:?}"
    );
}
