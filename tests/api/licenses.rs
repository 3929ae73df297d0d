//! One-time purchases and license keys, end to end through the app's own sandbox: the
//! order, the key and its email once however often the event comes; refunds and disputes
//! in any order; subscription licenses through renewals, a lapse and recovery; the
//! append-only audit log; the license API; and the admin refund.

use crate::helpers::*;
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

const ADMIN: &str = "admin@example.com";

async fn lifetime_price(app: &TestApp) -> String {
    app.price_id("desktop_lifetime").await
}

/// What the app holds about one purchase.
struct Purchase {
    user: saas_billing::accounts::User,
    session: String,
    payment_intent: String,
}

/// Signs up a user (with `client`), buys the lifetime license through the app's Checkout and
/// pays with `card`. Does not wait for the webhook.
async fn buy(app: &TestApp, client: &reqwest::Client, card: &str) -> Purchase {
    let email = unique_email("buyer");
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
    let price = lifetime_price(app).await;
    let res = app
        .call_with(client, "checkout/purchase", &[("price_id", &price)])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let url = location(&res).to_owned();
    assert!(url.contains("/sandbox/checkout/cs_test_"), "{url}");
    let page = app.page(&url).await;
    assert!(
        page.contains("Desktop app") && page.contains("$49.00"),
        "{page}"
    );
    let paid = client
        .post(&url)
        .form(&[
            ("card_number", card),
            ("card_expiry", "12 / 40"),
            ("card_cvc", "123"),
            ("name", "Ann Buyer"),
            ("country", "US"),
            ("postal_code", "10001"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let session = url.rsplit('/').next().unwrap().to_owned();
    let checkout = ok(
        app,
        Method::GET,
        &format!("/checkout/sessions/{session}"),
        &[],
    )
    .await;
    let payment_intent = checkout["payment_intent"].as_str().unwrap().to_owned();
    Purchase {
        user,
        session,
        payment_intent,
    }
}

/// The license of a purchase once the webhook made it: (key, status).
async fn license_of(app: &TestApp, p: &Purchase) -> Option<(String, String)> {
    sqlx::query_as(
        "select l.key, l.status from licenses l join orders o on o.id = l.order_id where o.checkout_session_id = $1",
    )
    .bind(&p.session)
    .fetch_optional(&app.db)
    .await
    .unwrap()
}

async fn eventually_license(app: &TestApp, p: &Purchase, status: &str) -> String {
    for _ in 0..100 {
        if let Some((key, s)) = license_of(app, p).await {
            if s == status {
                return key;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "license never {status}: last seen {:?}",
        license_of(app, p).await
    );
}

/// What the order came to (the price plus tax).
async fn order_total(app: &TestApp, p: &Purchase) -> i64 {
    sqlx::query_scalar("select amount_total from orders where checkout_session_id = $1")
        .bind(&p.session)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

async fn order_state(app: &TestApp, p: &Purchase) -> (String, i64) {
    sqlx::query_as("select status, amount_refunded from orders where checkout_session_id = $1")
        .bind(&p.session)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// The license's audit log: (action, actor kind, amount), oldest first.
async fn audit_of(app: &TestApp, key: &str) -> Vec<(String, String, Option<i64>)> {
    sqlx::query_as(
        "select e.action, e.actor_kind, e.amount from license_events e join licenses l on l.id = e.license_id
         where l.key = $1 order by e.id",
    )
    .bind(key)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

/// The sandbox events of `kind` about the payment, oldest first.
async fn events_about(app: &TestApp, kind: &str, needle: &str) -> Vec<String> {
    sqlx::query_scalar(
        "select id from stripe_sandbox.events where type = $1 and data::text like '%' || $2 || '%' order by seq",
    )
    .bind(kind)
    .bind(needle)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

/// Stops the sandbox delivering to the app (events are still created), or starts it again.
async fn app_endpoint(app: &TestApp, enabled: bool) {
    let id = app.setting("sandbox_webhook_endpoint").await;
    let disabled = (!enabled).to_string();
    ok(
        app,
        Method::POST,
        &format!("/webhook_endpoints/{id}"),
        &[("disabled", &disabled)],
    )
    .await;
}

async fn refund(app: &TestApp, p: &Purchase, amount: Option<&str>) {
    let mut form = vec![("payment_intent", p.payment_intent.as_str())];
    form.extend(amount.map(|a| ("amount", a)));
    ok(app, Method::POST, "/refunds", &form).await;
}

async fn license_api(app: &TestApp, action: &str, body: Value) -> (StatusCode, Value) {
    let res = new_client()
        .post(app.at(&format!("/api/v1/licenses/{action}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_purchase_makes_one_order_one_license_and_one_email_however_often_it_is_delivered() {
    let app = spawn_app().await;
    let pricing = app.page("/pricing").await;
    assert!(
        pricing.contains("Buy once") && pricing.contains("Desktop app"),
        "{pricing}"
    );
    let p = buy(&app, &app.client, "4242424242424242").await;
    let key = eventually_license(&app, &p, "active").await;
    assert!(
        saas_billing::licenses::key::LicenseKey::parse(&key).is_ok(),
        "{key}"
    );

    // The success page shows the key; so does /licenses (hidden until asked for).
    let poll = app
        .call("checkout/poll", &[("session_id", &p.session)])
        .await
        .text()
        .await
        .unwrap();
    assert!(poll.contains("Purchased") && poll.contains(&key), "{poll}");
    let page = app.page("/licenses").await;
    assert!(
        page.contains("Desktop app") && page.contains("Lifetime license"),
        "{page}"
    );
    assert!(
        page.contains(&key[key.len() - 4..]) && page.contains("Show key"),
        "{page}"
    );
    // The receipt: the invoice Checkout made (`invoice_creation`), on its hosted page.
    assert!(
        app.page_eventually_contains("/licenses", "View receipt")
            .await
    );
    let page = app.page("/licenses").await;
    assert!(page.contains("/sandbox/invoices/in_"), "{page}");

    // Stripe delivers the completion five more times, at once.
    let completed = events_about(&app, "checkout.session.completed", &p.session).await;
    assert_eq!(completed.len(), 1);
    let again: Vec<_> = (0..5).map(|_| deliver_again(&app, &completed[0])).collect();
    futures::future::join_all(again).await;
    let counts: (i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from orders where user_id = $1),
                (select count(*) from licenses where user_id = $1),
                (select count(*) from email_outbox where user_id = $1 and kind = 'license_purchased'),
                (select count(*) from license_events e join licenses l on l.id = e.license_id where l.user_id = $1)",
    )
    .bind(p.user.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(counts, (1, 1, 1, 1));
    let body = email_body(&app, p.user.id, "license_purchased")
        .await
        .unwrap();
    assert!(body.contains(&key), "the email carries the key");
    assert_eq!(
        audit_of(&app, &key).await,
        [("issued".into(), "webhook".into(), None)]
    );

    // Only licensed one-time prices can be bought this way.
    let pro: String = app.price_id("pro_monthly").await;
    let body = assert_status(
        app.call("checkout/purchase", &[("price_id", &pro)]).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body.contains("PlanUnavailable"), "{body}");
}

#[tokio::test]
async fn a_refund_that_arrives_before_the_purchase_still_revokes_its_license() {
    let app = spawn_app().await;
    app.webhooks_settled().await;
    app_endpoint(&app, false).await;
    let p = buy(&app, &app.client, "4242424242424242").await;
    refund(&app, &p, None).await;
    // Stripe sends them in no promised order: here the refund comes first, then the purchase.
    for kind in [
        "charge.refunded",
        "refund.created",
        "checkout.session.completed",
    ] {
        for id in events_about(&app, kind, &p.payment_intent).await {
            deliver_again(&app, &id).await;
        }
    }
    let key = eventually_license(&app, &p, "revoked").await;
    assert_eq!(
        order_state(&app, &p).await,
        ("refunded".into(), order_total(&app, &p).await)
    );
    let actions: Vec<String> = audit_of(&app, &key)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(actions, ["issued", "revoked"]);
    assert_eq!(emails(&app, p.user.id, "license_revoked").await, 1);

    // The API says so, to whoever holds the key; activating it is refused.
    let (status, body) = license_api(&app, "verify", json!({ "key": key })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["valid"].clone(), body["status"].clone()),
        (json!(false), json!("revoked"))
    );
    let (status, body) =
        license_api(&app, "activate", json!({ "key": key, "machine_id": "m1" })).await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::FORBIDDEN, json!("license_not_active"))
    );
}

#[tokio::test]
async fn a_partial_refund_keeps_the_license_and_the_rest_revokes_it() {
    let app = spawn_app().await;
    let p = buy(&app, &app.client, "4242424242424242").await;
    let key = eventually_license(&app, &p, "active").await;
    refund(&app, &p, Some("1000")).await;
    let partly =
        eventually(|| async { order_state(&app, &p).await == ("partially_refunded".into(), 1000) })
            .await;
    assert!(partly, "{:?}", order_state(&app, &p).await);
    assert_eq!(license_of(&app, &p).await.unwrap().1, "active");
    assert_eq!(
        audit_of(&app, &key).await.last().unwrap(),
        &(
            "partially_refunded".to_owned(),
            "webhook".to_owned(),
            Some(1000)
        )
    );
    refund(&app, &p, None).await;
    eventually_license(&app, &p, "revoked").await;
    assert_eq!(
        order_state(&app, &p).await,
        ("refunded".into(), order_total(&app, &p).await)
    );
    let actions: Vec<String> = audit_of(&app, &key)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(actions, ["issued", "partially_refunded", "revoked"]);
    // The owner's page says it in words.
    let page = app.page("/licenses").await;
    assert!(
        page.contains("Revoked") && page.contains("was revoked"),
        "{page}"
    );
}

#[tokio::test]
async fn a_dispute_suspends_the_license_until_it_is_won_and_a_lost_one_revokes_it() {
    const TOKEN: &str = "the-dashboard-token-of-this-test";
    let app = spawn_app_with(|c| c.sandbox.dashboard_token = TOKEN.into()).await;
    let won = buy(&app, &new_client(), "4000000000000259").await;
    let key = eventually_license(&app, &won, "suspended").await;
    assert_eq!(emails(&app, won.user.id, "license_suspended").await, 1);
    let (_, body) = license_api(&app, "verify", json!({ "key": key })).await;
    assert_eq!(body["status"], "suspended");

    // The bank decides for the merchant, on the sandbox dashboard.
    let dispute = &events_about(&app, "charge.dispute.created", &won.payment_intent).await[0];
    let event = ok(&app, Method::GET, &format!("/events/{dispute}"), &[]).await;
    let dispute_id = event["data"]["object"]["id"].as_str().unwrap();
    app.get(&format!("/sandbox?token={TOKEN}")).await;
    let dashboard = app.page("/sandbox").await;
    let account = dashboard
        .split(&format!("/sandbox/disputes/{dispute_id}/close?account="))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the dashboard offers to close the dispute")
        .to_owned();
    let res = app
        .client
        .post(app.at(&format!(
            "/sandbox/disputes/{dispute_id}/close?account={account}"
        )))
        .header(header::ORIGIN, &app.url)
        .form(&[("verdict", "won")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    eventually_license(&app, &won, "active").await;
    let actions: Vec<String> = audit_of(&app, &key)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(actions, ["issued", "suspended", "restored"]);

    // Accepting a dispute (through the API) loses it.
    let lost = buy(&app, &new_client(), "4000000000000259").await;
    let key = eventually_license(&app, &lost, "suspended").await;
    let dispute = &events_about(&app, "charge.dispute.created", &lost.payment_intent).await[0];
    let event = ok(&app, Method::GET, &format!("/events/{dispute}"), &[]).await;
    let dispute_id = event["data"]["object"]["id"].as_str().unwrap();
    ok(
        &app,
        Method::POST,
        &format!("/disputes/{dispute_id}/close"),
        &[],
    )
    .await;
    eventually_license(&app, &lost, "revoked").await;
    let actions: Vec<String> = audit_of(&app, &key)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(actions, ["issued", "suspended", "revoked"]);
    assert_eq!(emails(&app, lost.user.id, "license_revoked").await, 1);
}

#[tokio::test]
async fn the_audit_log_refuses_changes_and_deletions() {
    let app = spawn_app().await;
    let p = buy(&app, &app.client, "4242424242424242").await;
    let key = eventually_license(&app, &p, "active").await;
    for statement in [
        "update license_events set action = 'restored'",
        "delete from license_events",
        "truncate license_events",
    ] {
        let err = sqlx::query(statement).execute(&app.db).await.unwrap_err();
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    assert_eq!(audit_of(&app, &key).await.len(), 1);
}

#[tokio::test]
async fn a_subscription_license_follows_renewals_a_lapse_recovery_and_the_end() {
    // Two days of grace: over before the first retry (three days on), so only the sweep can
    // be what suspends the license.
    let app = spawn_app_with(|c| c.grace_days = 2).await;
    let b = subscribed(&app, "pm_card_visa", None).await;
    let license = || async {
        sqlx::query_as::<_, (String, String, Option<time::OffsetDateTime>)>(
            "select l.key, l.status, l.expires_at from licenses l where l.user_id = $1",
        )
        .bind(b.user.id)
        .fetch_optional(&app.db)
        .await
        .unwrap()
    };
    let issued = eventually(|| async { license().await.is_some() }).await;
    assert!(issued, "the subscription brought a license");
    let (key, status, first_expiry) = license().await.unwrap();
    assert_eq!(status, "active");
    let first_expiry = first_expiry.expect("valid until the period ends, plus grace");
    let grace = 2 * DAY;
    assert!((first_expiry.unix_timestamp() - (b.start + 30 * DAY + grace)).abs() <= 2 * DAY);

    // A renewal moves the date on.
    advance(&app, &b, 32).await;
    let renewed = eventually(|| async {
        license()
            .await
            .and_then(|l| l.2)
            .is_some_and(|e| e > first_expiry)
    })
    .await;
    assert!(renewed, "renewed: {:?}", license().await);

    // The next renewal fails: still active during the grace period, suspended after it.
    set_card(&app, &b.customer, "pm_card_chargeCustomerFail").await;
    let renews = period_end(&app, &b.customer).await;
    advance_clock_to(&app, &b.clock, renews + 3_600).await;
    assert!(eventually_status(&app, &b.customer, "past_due").await);
    // Every event of the failed renewal in (the open invoice too) before time is moved on
    // here: a late one must not be what suspends the license instead of the sweep.
    app.webhooks_settled().await;
    assert_eq!(license().await.unwrap().1, "active");
    // The grace period runs out on the customer's clock, two days after the renewal failed
    // there, long before it would in real time.
    let failed = failed_at(&app, &b.customer).await;
    assert!(failed > b.start + 60 * DAY, "in the clock's time");
    advance_clock_to(&app, &b.clock, failed + grace + 60).await;
    app.webhooks_settled().await;
    // The sweep the app runs every minute, in each customer's clock time, run now (the
    // app's own may have beaten it to it).
    let stripe = app.stripe().await;
    saas_billing::licenses::sync::suspend_overdue(&app.db, &app.url, 2, Some(&stripe))
        .await
        .unwrap();
    assert_eq!(license().await.unwrap().1, "suspended");
    assert_eq!(emails(&app, b.user.id, "license_suspended").await, 1);
    let (_, body) = license_api(&app, "verify", json!({ "key": key })).await;
    assert_eq!(
        (body["valid"].clone(), body["status"].clone()),
        (json!(false), json!("suspended"))
    );

    // A new card pays the open invoice: restored.
    set_card(&app, &b.customer, "pm_card_visa").await;
    let open: String = sqlx::query_scalar(
        "select id from invoices where stripe_customer_id = $1 and status = 'open' order by created desc limit 1",
    )
    .bind(&b.customer)
    .fetch_one(&app.db)
    .await
    .unwrap();
    ok(&app, Method::POST, &format!("/invoices/{open}/pay"), &[]).await;
    let restored = eventually(|| async { license().await.unwrap().1 == "active" }).await;
    assert!(restored, "{:?}", license().await);

    // The subscription ends: so does the license.
    let sub: String =
        sqlx::query_scalar("select id from subscriptions where stripe_customer_id = $1")
            .bind(&b.customer)
            .fetch_one(&app.db)
            .await
            .unwrap();
    ok(&app, Method::DELETE, &format!("/subscriptions/{sub}"), &[]).await;
    let ended = eventually(|| async { license().await.unwrap().1 == "cancelled" }).await;
    assert!(ended, "{:?}", license().await);
    let actions: Vec<String> = audit_of(&app, &key)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(actions.first().map(String::as_str), Some("issued"));
    for expected in ["renewed", "suspended", "restored", "cancelled"] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} in {actions:?}"
        );
    }
    let system: i64 = sqlx::query_scalar(
        "select count(*) from license_events e join licenses l on l.id = e.license_id
         where l.key = $1 and e.action = 'suspended' and e.actor_kind = 'system'",
    )
    .bind(&key)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(system, 1, "the sweep is recorded as the app's own doing");
}

#[tokio::test]
async fn the_license_api_verifies_activates_within_the_limit_and_reveals_nothing_else() {
    let app = spawn_app().await;
    let p = buy(&app, &app.client, "4242424242424242").await;
    let key = eventually_license(&app, &p, "active").await;

    let (status, body) = license_api(
        &app,
        "verify",
        json!({ "key": key.to_lowercase().replace('-', " ") }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "valid": true, "status": "active", "product": "Desktop app", "expires_at": null })
    );
    assert!(!body.to_string().contains(&p.user.email));

    for machine in ["m1", "m2", "m3"] {
        let (status, body) = license_api(
            &app,
            "activate",
            json!({ "key": key, "machine_id": machine }),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) =
        license_api(&app, "activate", json!({ "key": key, "machine_id": "m4" })).await;
    assert_eq!(
        (status, body["error"].clone()),
        (StatusCode::CONFLICT, json!("activation_limit_reached"))
    );
    let (status, body) =
        license_api(&app, "activate", json!({ "key": key, "machine_id": "m1" })).await;
    assert_eq!(
        (status, body["activations"].clone()),
        (StatusCode::OK, json!(3)),
        "again is fine"
    );
    let (_, body) = license_api(&app, "verify", json!({ "key": key, "machine_id": "m1" })).await;
    assert_eq!(
        (body["valid"].clone(), body["activated"].clone()),
        (json!(true), json!(true))
    );
    let (_, body) = license_api(&app, "verify", json!({ "key": key, "machine_id": "m4" })).await;
    assert_eq!(
        (body["valid"].clone(), body["activated"].clone()),
        (json!(false), json!(false))
    );

    // The owner frees a machine on /licenses; m4 fits then.
    let page = app.page("/licenses").await;
    assert!(
        page.contains("3 of 3 machines") && page.contains("Deactivate m2"),
        "{page}"
    );
    let license_id: Uuid = sqlx::query_scalar("select id from licenses where key = $1")
        .bind(&key)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let res = app
        .call(
            "licenses/deactivate",
            &[
                ("license_id", &license_id.to_string()),
                ("machine_id", "m2"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (status, _) =
        license_api(&app, "activate", json!({ "key": key, "machine_id": "m4" })).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = license_api(
        &app,
        "deactivate",
        json!({ "key": key, "machine_id": "m4" }),
    )
    .await;
    assert_eq!(
        (status, body["deactivated"].clone()),
        (StatusCode::OK, json!(true))
    );
    // Someone else cannot free this user's machines.
    let other = new_client();
    app.call_with(
        &other,
        "signup",
        &[("email", &unique_email("other")), ("password", PASSWORD)],
    )
    .await;
    let res = app
        .call_with(
            &other,
            "licenses/deactivate",
            &[
                ("license_id", &license_id.to_string()),
                ("machine_id", "m1"),
            ],
        )
        .await;
    assert_status(res, StatusCode::NOT_FOUND).await;
    let actions: Vec<String> = audit_of(&app, &key)
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    assert_eq!(
        actions,
        [
            "issued",
            "activated",
            "activated",
            "activated",
            "deactivated",
            "activated",
            "deactivated"
        ]
    );

    // A typo, a made-up key and an unknown valid-looking key answer alike.
    let mut typo: Vec<char> = key.chars().collect();
    typo[0] = if typo[0] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    let unknown = saas_billing::licenses::key::LicenseKey::generate()
        .unwrap()
        .to_string();
    let mut answers = Vec::new();
    for k in [typo.as_str(), "not a key", unknown.as_str()] {
        answers.push(license_api(&app, "verify", json!({ "key": k })).await);
        let (status, body) =
            license_api(&app, "activate", json!({ "key": k, "machine_id": "x" })).await;
        assert_eq!(
            (status, body["error"].clone()),
            (StatusCode::NOT_FOUND, json!("invalid_key")),
            "{k}"
        );
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(answers[0].1["status"], "invalid");

    // Malformed requests: a clear 400 in JSON.
    for body in [
        json!({ "nope": 1 }),
        json!({ "key": key, "machine_id": "" }),
        json!({ "key": key, "machine_id": "x".repeat(129) }),
    ] {
        let (status, answer) = license_api(&app, "activate", body.clone()).await;
        assert_eq!(
            (status, answer["error"].clone()),
            (StatusCode::BAD_REQUEST, json!("bad_request")),
            "{body}"
        );
    }
    let res = new_client()
        .post(app.at("/api/v1/licenses/verify"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_license_api_is_limited_per_key_and_per_network() {
    let app = spawn_app_with(|c| {
        c.license_api_per_key = 5;
        c.license_api_per_network = 12;
    })
    .await;
    let key = saas_billing::licenses::key::LicenseKey::generate()
        .unwrap()
        .to_string();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            license_api(&app, "verify", json!({ "key": key }))
                .await
                .0
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    // Other keys from the same network, up to the network's limit.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let other = saas_billing::licenses::key::LicenseKey::generate()
            .unwrap()
            .to_string();
        statuses.push(
            license_api(&app, "verify", json!({ "key": other }))
                .await
                .0
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 429]);
    let res = new_client()
        .post(app.at("/api/v1/licenses/verify"))
        .json(&json!({ "key": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(res.headers()[header::RETRY_AFTER], "60");
}

#[tokio::test]
async fn only_admins_see_the_admin_page_and_a_refund_waits_for_stripes_word() {
    let app = spawn_app_with(|c| c.admin_emails = vec![ADMIN.to_owned()]).await;
    let buyer = new_client();
    let p = buy(&app, &buyer, "4242424242424242").await;
    eventually_license(&app, &p, "active").await;

    // The buyer, and a stranger, find no such page; its functions refuse them.
    for client in [&buyer, &new_client()] {
        let res = client.get(app.at("/admin")).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let res = app.call_with(client, "admin", &[]).await;
        assert_status(res, StatusCode::FORBIDDEN).await;
    }
    let order: Uuid = sqlx::query_scalar("select id from orders where checkout_session_id = $1")
        .bind(&p.session)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let res = app
        .call_with(
            &buyer,
            "admin/refund",
            &[("order_id", &order.to_string()), ("reason", "duplicate")],
        )
        .await;
    assert_status(res, StatusCode::FORBIDDEN).await;

    let admin = new_client();
    app.call_with(
        &admin,
        "signup",
        &[("email", ADMIN), ("password", PASSWORD)],
    )
    .await;
    let page = admin
        .get(app.at(&format!("/admin?q={}", p.user.email)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&p.user.email) && page.contains("Desktop app"),
        "{page}"
    );
    assert!(
        page.contains(&format!("Amount to refund to {}", p.user.email)),
        "{page}"
    );

    // Bad input is refused with a reason; nothing reaches Stripe.
    for (amount, reason) in [
        ("abc", "duplicate"),
        ("99999", "duplicate"),
        ("10", "because"),
    ] {
        let res = app
            .call_with(
                &admin,
                "admin/refund",
                &[
                    ("order_id", &order.to_string()),
                    ("amount", amount),
                    ("reason", reason),
                ],
            )
            .await;
        assert_status(res, StatusCode::UNPROCESSABLE_ENTITY).await;
    }

    // A partial refund while the webhook is held back: asked for, nothing changed yet.
    app.webhooks_settled().await;
    app_endpoint(&app, false).await;
    let form = [
        ("order_id", order.to_string()),
        ("amount", "10.00".to_owned()),
        ("reason", "requested_by_customer".to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for _ in 0..2 {
        // A double click is one refund at Stripe.
        let res = app.call_with(&admin, "admin/refund", &form).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let refunds = ok(
        &app,
        Method::GET,
        &format!("/refunds?payment_intent={}", p.payment_intent),
        &[],
    )
    .await;
    assert_eq!(refunds["data"].as_array().unwrap().len(), 1);
    assert_eq!(order_state(&app, &p).await, ("paid".into(), 0));
    let page = admin
        .get(app.at("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("requested; waiting for Stripe"), "{page}");

    // Stripe's word arrives.
    app_endpoint(&app, true).await;
    for kind in ["refund.created", "charge.refunded"] {
        for id in events_about(&app, kind, &p.payment_intent).await {
            deliver_again(&app, &id).await;
        }
    }
    assert_eq!(
        order_state(&app, &p).await,
        ("partially_refunded".into(), 1000)
    );
    // The rest (empty amount: all that is left), with the webhook flowing.
    let res = app
        .call_with(
            &admin,
            "admin/refund",
            &[
                ("order_id", &order.to_string()),
                ("reason", "requested_by_customer"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    eventually_license(&app, &p, "revoked").await;
    assert_eq!(
        order_state(&app, &p).await,
        ("refunded".into(), order_total(&app, &p).await)
    );
    let page = admin
        .get(app.at("/admin"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Revoked: refunded") && page.contains("Nothing left"),
        "{page}"
    );
}

/// Everything that settles a subscription's license (webhooks, a customer being linked, the
/// grace sweep) first takes the subscription's row lock: settled from many transactions at
/// once, a new subscription gets one license, issued once, and none of them fails.
#[tokio::test]
async fn concurrent_settlements_of_a_subscription_issue_one_license_and_none_fails() {
    use saas_billing::licenses::sync::{settle_subscription, Actor};
    let app = spawn_app().await;
    let user = signed_up_user(&app, "settle").await;
    let product: String = sqlx::query_scalar(
        "select product_id from prices where kind = 'recurring' and active order by unit_amount limit 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    sqlx::query("insert into customers (user_id, stripe_customer_id) values ($1, 'cus_settle')")
        .bind(user.id)
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "insert into subscriptions (id, stripe_customer_id, status, product_id, current_period_end, stripe_as_of)
         values ('sub_settle', 'cus_settle', 'active', $1, now() + interval '30 days', 1)",
    )
    .bind(&product)
    .execute(&app.db)
    .await
    .unwrap();

    let settle = || async {
        let mut tx = app.db.begin().await?;
        settle_subscription(&mut tx, &app.url, "sub_settle", 3, now(), Actor::System).await?;
        tx.commit().await
    };
    let results = futures::future::join_all((0..8).map(|_| settle())).await;
    for result in &results {
        assert!(result.is_ok(), "{result:?}");
    }
    let (licenses, issued): (i64, i64) = sqlx::query_as(
        "select (select count(*) from licenses where subscription_id = 'sub_settle'),
                (select count(*) from license_events e join licenses l on l.id = e.license_id
                 where l.subscription_id = 'sub_settle' and e.action = 'issued')",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((licenses, issued), (1, 1));
}
