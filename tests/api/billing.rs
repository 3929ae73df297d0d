//! Billing over time, through the app's own sandbox: test clocks renew, fail, retry and end
//! subscriptions; the webhooks keep Postgres current; dunning email goes out exactly once;
//! the Customer Portal and billing settings show each user only their own billing.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn a_failed_renewal_goes_past_due_emails_once_and_recovers_with_a_new_card() {
    let app = spawn_app().await;
    let b = subscribed(&app, "pm_card_chargeCustomerFail", Some("14")).await;
    assert!(eventually_status(&app, &b.customer, "trialing").await);

    // Three days before the trial ends: the reminder, once.
    advance(&app, &b, 12).await;
    assert!(eventually(|| async { emails(&app, b.user.id, "trial_will_end").await == 1 }).await);

    // The trial ends; the card on file fails.
    advance(&app, &b, 15).await;
    assert!(eventually_status(&app, &b.customer, "past_due").await);
    assert!(eventually(|| async { emails(&app, b.user.id, "payment_failed").await == 1 }).await);
    let (attempts, next): (i32, Option<time::OffsetDateTime>) = sqlx::query_as(
        "select attempt_count, next_payment_attempt from invoices where stripe_customer_id = $1 and status = 'open'",
    )
    .bind(&b.customer)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(attempts, 1);
    assert_eq!(
        next.map(|t| t.unix_timestamp()),
        Some(b.start + 14 * DAY + 3 * DAY),
        "first retry three days later"
    );
    let body = email_body(&app, b.user.id, "payment_failed").await.unwrap();
    assert!(
        body.contains("Amount due: $") && body.contains("/sandbox/invoices/in_"),
        "{body}"
    );
    // The reason, in Stripe's words from the failed payment intent.
    assert!(body.contains("Reason: Your card was declined."), "{body}");

    // The billing page says so, with the link to pay.
    let page = app.page("/settings/billing").await;
    assert!(
        page.contains("past-due-banner") && page.contains("/sandbox/invoices/in_"),
        "banner with a pay link"
    );

    // Stripe delivers the failure again: still one email.
    let failed = api(
        &app,
        Method::GET,
        "/events?type=invoice.payment_failed",
        &[],
    )
    .await
    .1;
    let event_id = failed["data"][0]["id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        deliver_again(&app, &event_id).await;
    }
    assert_eq!(emails(&app, b.user.id, "payment_failed").await, 1);

    // A working card, then the retry: paid, active, and a recovery email.
    set_card(&app, &b.customer, "pm_card_visa").await;
    advance(&app, &b, 18).await;
    assert!(eventually_status(&app, &b.customer, "active").await);
    assert!(eventually(|| async { emails(&app, b.user.id, "payment_recovered").await == 1 }).await);
    let page = app.page("/settings/billing").await;
    assert!(!page.contains("past-due-banner"), "the banner is gone");
    assert!(page.contains("visa •••• 4242"), "the new card is shown");
}

#[tokio::test]
async fn every_dunning_email_goes_out_once_however_often_its_event_arrives() {
    let app = spawn_app().await;
    // One customer fails and recovers, one runs out of retries, one's bank asks for 3-D Secure.
    let recovers = subscribed(&app, "pm_card_chargeCustomerFail", Some("4")).await;
    let ends = subscribed(&app, "pm_card_chargeCustomerFail", Some("1")).await;
    let secure = subscribed(&app, "pm_card_authenticationRequired", Some("1")).await;
    for b in [&recovers, &ends, &secure] {
        assert!(eventually_status(&app, &b.customer, "trialing").await);
    }
    advance(&app, &recovers, 5).await;
    assert!(eventually_status(&app, &recovers.customer, "past_due").await);
    set_card(&app, &recovers.customer, "pm_card_visa").await;
    advance(&app, &recovers, 8).await;
    advance(&app, &ends, 9).await;
    advance(&app, &secure, 2).await;
    let expected = [
        (recovers.user.id, "trial_will_end"),
        (recovers.user.id, "payment_failed"),
        (recovers.user.id, "payment_recovered"),
        (ends.user.id, "subscription_ended"),
        (secure.user.id, "payment_action_required"),
    ];
    for (user, kind) in expected {
        assert!(
            eventually(|| async { emails(&app, user, kind).await == 1 }).await,
            "one {kind} email"
        );
    }

    // Stripe delivers every one of those events twice more: nothing new is queued.
    let queued: Vec<(String, uuid::Uuid, String)> =
        sqlx::query_as("select dedupe_key, user_id, kind from email_outbox where kind <> 'verify_email' order by id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    for (key, _, _) in &queued {
        let event_id = key.split(':').next().unwrap();
        for _ in 0..2 {
            deliver_again(&app, event_id).await;
        }
    }
    let after: i64 =
        sqlx::query_scalar("select count(*) from email_outbox where kind <> 'verify_email'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(after, queued.len() as i64, "no second email for any event");
    for (user, kind) in expected {
        assert_eq!(emails(&app, user, kind).await, 1, "{kind}");
    }
    let body = email_body(&app, secure.user.id, "payment_action_required")
        .await
        .unwrap();
    assert!(
        body.contains("3-D Secure") && body.contains("/sandbox/invoices/in_"),
        "{body}"
    );
}

#[tokio::test]
async fn access_lasts_exactly_the_grace_period_from_the_first_failure_in_the_clocks_time() {
    let app = spawn_app_with(|c| c.grace_days = 3).await;
    let grace = 3 * DAY;
    let b = subscribed(&app, "pm_card_chargeCustomerFail", Some("1")).await;
    assert!(eventually_status(&app, &b.customer, "trialing").await);
    advance(&app, &b, 2).await;
    assert!(eventually_status(&app, &b.customer, "past_due").await);
    // The renewal failed on day 1 of the clock (real time has barely moved): the grace
    // period counts from there, and the pages give its end in the clock's time, the date
    // the invoices carry.
    let failed = b.start + DAY;
    assert_eq!(failed_at(&app, &b.customer).await, failed);
    let until = saas_billing::ui::format::long_date(
        time::OffsetDateTime::from_unix_timestamp(failed + grace).unwrap(),
    );
    assert_eq!(app.call("feature", &[]).await.status(), StatusCode::OK);
    for page in ["/dashboard", "/settings/billing"] {
        let says = format!("Access continues until {until}");
        if !app.page_eventually_contains(page, &says).await {
            let html = app.page(page).await;
            let plan = html
                .find("plan-status")
                .map(|i| &html[i..(i + 600).min(html.len())]);
            panic!("{page} does not say {says:?}: {plan:?}");
        }
    }

    // A minute before the grace period ends on the clock, still in; a second after, out.
    advance_clock_to(&app, &b.clock, failed + grace - 60).await;
    assert_eq!(
        app.call("feature", &[]).await.status(),
        StatusCode::OK,
        "a minute before the grace period ends"
    );
    advance_clock_to(&app, &b.clock, failed + grace + 1).await;
    assert_eq!(
        app.call("feature", &[]).await.status(),
        StatusCode::FORBIDDEN,
        "a second after it ends"
    );
    for page in ["/dashboard", "/settings/billing"] {
        let html = app.page(page).await;
        assert!(
            html.contains("Access is paused until the open invoice is paid"),
            "{page}"
        );
    }

    // A later failed retry (day 4) does not restart the grace period.
    let first = failed_at(&app, &b.customer).await;
    advance(&app, &b, 5).await;
    let retried = eventually(|| async {
        sqlx::query_scalar::<_, i32>(
            "select attempt_count from invoices where stripe_customer_id = $1 and status = 'open'",
        )
        .bind(&b.customer)
        .fetch_optional(&app.db)
        .await
        .unwrap()
            == Some(2)
    })
    .await;
    assert!(retried, "the retry on day 4 was recorded");
    assert!(eventually_status(&app, &b.customer, "past_due").await);
    assert_eq!(
        failed_at(&app, &b.customer).await,
        first,
        "counted from the first failure"
    );
    assert_eq!(
        app.call("feature", &[]).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn after_the_last_retry_the_subscription_ends_and_access_with_it() {
    let app = spawn_app().await;
    let b = subscribed(&app, "pm_card_chargeCustomerFail", Some("3")).await;
    assert!(eventually_status(&app, &b.customer, "trialing").await);
    // Trial end (day 3) fails; retries on days 6, 8 and 10 fail; then it is canceled.
    advance(&app, &b, 11).await;
    assert!(eventually_status(&app, &b.customer, "canceled").await);
    let invoice = api(
        &app,
        Method::GET,
        &format!("/invoices?customer={}&status=open", b.customer),
        &[],
    )
    .await
    .1;
    assert_eq!(invoice["data"][0]["attempt_count"], 4, "{invoice}");
    assert!(
        eventually(|| async { emails(&app, b.user.id, "subscription_ended").await == 1 }).await
    );
    let res = app.call("feature", &[]).await;
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "no access after the subscription ended"
    );
}

#[tokio::test]
async fn renewals_charge_the_card_and_cancel_at_period_end_ends_at_the_period_end() {
    let app = spawn_app().await;
    let b = subscribed(&app, "pm_card_visa", None).await;
    assert!(eventually_status(&app, &b.customer, "active").await);
    advance(&app, &b, 32).await;
    let invoices = api(
        &app,
        Method::GET,
        &format!("/invoices?customer={}", b.customer),
        &[],
    )
    .await
    .1;
    let reasons: Vec<&str> = invoices["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["billing_reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, ["subscription_cycle", "subscription_create"]);
    assert!(invoices["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["status"] == "paid"));
    // Every invoice, payment intent and charge decodes in async-stripe's types.
    for inv in invoices["data"].as_array().unwrap() {
        let _: stripe_shared::Invoice =
            miniserde::json::from_str(&inv.to_string()).expect("invoice decodes");
    }
    let charges = api(
        &app,
        Method::GET,
        &format!("/charges?customer={}", b.customer),
        &[],
    )
    .await
    .1;
    assert_eq!(charges["data"].as_array().unwrap().len(), 2);
    let _: stripe_shared::Charge =
        miniserde::json::from_str(&charges["data"][0].to_string()).expect("charge decodes");
    assert!(
        eventually(|| async {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from invoices where stripe_customer_id = $1 and status = 'paid'",
            )
            .bind(&b.customer)
            .fetch_one(&app.db)
            .await
            .unwrap()
                == 2
        })
        .await,
        "the app stored both invoices"
    );

    let sub = api(
        &app,
        Method::GET,
        &format!("/subscriptions?customer={}", b.customer),
        &[],
    )
    .await
    .1["data"][0]
        .clone();
    ok(
        &app,
        Method::POST,
        &format!("/subscriptions/{}", sub["id"].as_str().unwrap()),
        &[("cancel_at_period_end", "true")],
    )
    .await;
    advance(&app, &b, 70).await;
    assert!(eventually_status(&app, &b.customer, "canceled").await);
    let ended = api(
        &app,
        Method::GET,
        &format!("/subscriptions/{}", sub["id"].as_str().unwrap()),
        &[],
    )
    .await
    .1;
    // It ended at the end of the period it was in when cancel_at_period_end was set.
    assert_eq!(
        ended["ended_at"],
        sub["items"]["data"][0]["current_period_end"]
    );
    assert_eq!(
        ended["cancellation_details"]["reason"],
        "cancellation_requested"
    );
}

#[tokio::test]
async fn the_portal_opens_only_for_the_users_own_customer() {
    let app = spawn_app().await;
    // No customer yet: a clear message, not an error page.
    let _lonely = signed_up_user(&app, "nocustomer").await;
    let res = app.call("billing/portal", &[]).await;
    let body = assert_status(res, StatusCode::BAD_REQUEST).await;
    // The message is named on the wire; the page words it ("…choose a plan on the pricing page").
    assert!(body.contains("NoBillingAccount"), "{body}");
    assert!(app
        .page("/settings/billing")
        .await
        .contains("no-billing-account"));

    let a = subscribed(&app, "pm_card_visa", None).await; // signs in as A
    assert!(eventually_status(&app, &a.customer, "active").await);
    let res = app.call("billing/portal", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let portal = location(&res).to_owned();
    assert!(portal.contains("/sandbox/portal/bps_"), "{portal}");
    let session_id = portal.rsplit('/').next().unwrap();
    let sessions = api(
        &app,
        Method::GET,
        "/events?type=billing_portal.session.created",
        &[],
    )
    .await
    .1;
    assert_eq!(sessions["data"][0]["data"]["object"]["id"], session_id);
    assert_eq!(
        sessions["data"][0]["data"]["object"]["customer"],
        a.customer.as_str(),
        "A's own customer"
    );
    let page = app.page(&portal).await;
    assert!(page.contains("Invoice history") && page.contains("/sandbox/invoices/in_"));
    assert!(
        eventually(|| async { app.page("/settings/billing").await.contains("invoice-row") }).await
    );

    // B signs in on the same client: B sees no invoices of A's, and gets no portal.
    let b = signed_up_user(&app, "other").await;
    let page = app.page("/settings/billing").await;
    assert!(
        page.contains(&b.email) && !page.contains("invoice-row"),
        "B sees only B's billing"
    );
    assert_status(
        app.call("billing/portal", &[]).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn invoice_history_pages_ten_at_a_time_newest_first() {
    let app = spawn_app().await;
    let b = subscribed(&app, "pm_card_visa", None).await;
    assert!(eventually_status(&app, &b.customer, "active").await);
    // A year of monthly renewals: the first invoice and eleven more.
    advance(&app, &b, 11 * 31).await;
    let all_recorded = eventually(|| async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from invoices where stripe_customer_id = $1 and status = 'paid'",
        )
        .bind(&b.customer)
        .fetch_one(&app.db)
        .await
        .unwrap()
            >= 12
    })
    .await;
    assert!(all_recorded, "the renewals' invoices reached the app");
    let total: i64 = sqlx::query_scalar(
        "select count(*) from invoices where stripe_customer_id = $1 and status <> 'draft'",
    )
    .bind(&b.customer)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let numbers: Vec<String> = sqlx::query_scalar(
        "select number from invoices where stripe_customer_id = $1 and status <> 'draft' order by created desc, id desc",
    )
    .bind(&b.customer)
    .fetch_all(&app.db)
    .await
    .unwrap();

    let first = app.page("/settings/billing").await;
    assert_eq!(first.matches("data-testid=\"invoice-row\"").count(), 10);
    assert!(first.contains("older-invoices") && !first.contains("← Newer"));
    assert!(
        first.contains(&numbers[0]) && !first.contains(&numbers[10]),
        "newest first"
    );
    let second = app.page("/settings/billing?page=2").await;
    assert_eq!(
        second.matches("data-testid=\"invoice-row\"").count() as i64,
        total - 10
    );
    assert!(second.contains(&numbers[10]) && second.contains("← Newer"));
    assert!(!second.contains("older-invoices"), "the last page");
    // A page number that is not one shows the first page, not an error.
    for odd in ["0", "-3", "abc"] {
        let page = app.page(&format!("/settings/billing?page={odd}")).await;
        assert_eq!(
            page.matches("data-testid=\"invoice-row\"").count(),
            10,
            "page={odd}"
        );
    }
}

#[tokio::test]
async fn configuring_the_portal_twice_changes_nothing() {
    let app = spawn_app().await;
    let stripe = app.stripe().await;
    let back = app.at("/settings/billing");
    let first = saas_billing::billing::portal::configure_portal(&stripe, &app.db, &back)
        .await
        .unwrap();
    let second = saas_billing::billing::portal::configure_portal(&stripe, &app.db, &back)
        .await
        .unwrap();
    assert_eq!(first, second);
    let list = api(&app, Method::GET, "/billing_portal/configurations", &[])
        .await
        .1;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "start-up and two runs: one configuration"
    );
    let config: stripe_billing::BillingPortalConfiguration =
        miniserde::json::from_str(&list["data"][0].to_string()).expect("decodes");
    assert!(config.features.subscription_update.enabled);
    assert!(config.features.subscription_cancel.enabled);
}

#[tokio::test]
async fn checkout_in_payment_mode_applies_codes_and_tax_then_refunds() {
    let app = spawn_app().await;
    let product = ok(
        &app,
        Method::POST,
        "/products",
        &[("name", "Lifetime licence")],
    )
    .await;
    let price = ok(
        &app,
        Method::POST,
        "/prices",
        &[
            ("product", product["id"].as_str().unwrap()),
            ("currency", "usd"),
            ("unit_amount", "1000"),
        ],
    )
    .await;
    let coupon = ok(
        &app,
        Method::POST,
        "/coupons",
        &[("percent_off", "10"), ("duration", "once")],
    )
    .await;
    ok(
        &app,
        Method::POST,
        "/promotion_codes",
        &[
            ("promotion[type]", "coupon"),
            ("promotion[coupon]", coupon["id"].as_str().unwrap()),
            ("code", "SAVE10"),
        ],
    )
    .await;
    // The app's own sandbox sends customers back to the app only.
    let done_url = app.at("/done?s={CHECKOUT_SESSION_ID}");
    let session = ok(
        &app,
        Method::POST,
        "/checkout/sessions",
        &[
            ("mode", "payment"),
            ("line_items[0][price]", price["id"].as_str().unwrap()),
            ("line_items[0][quantity]", "1"),
            ("automatic_tax[enabled]", "true"),
            ("allow_promotion_codes", "true"),
            ("invoice_creation[enabled]", "true"),
            ("success_url", &done_url),
            ("billing_address_collection", "required"),
        ],
    )
    .await;
    let id = session["id"].as_str().unwrap();
    let page = app.page(&format!("/sandbox/checkout/{id}")).await;
    assert!(page.contains("Promotion code") && page.contains("tax-line"));
    let card = |number: &'static str, extra: &[(&'static str, &'static str)]| {
        let mut f = vec![
            ("email", "buyer@example.com"),
            ("card_number", number),
            ("card_expiry", "12 / 40"),
            ("card_cvc", "123"),
            ("name", "Buyer"),
            ("country", "DE"),
            ("postal_code", "10115"),
            ("promotion_code", "SAVE10"),
        ];
        f.extend_from_slice(extra);
        f
    };
    // 3155 asks for 3-D Secure first; failing it keeps the session open.
    let res = app
        .client
        .post(app.at(&format!("/sandbox/checkout/{id}")))
        .form(&card("4000002500003155", &[]))
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("3ds-challenge"));
    let res = app
        .client
        .post(app.at(&format!("/sandbox/checkout/{id}")))
        .form(&card("4000002500003155", &[("three_d_secure", "fail")]))
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("unable to authenticate"));
    let res = app
        .client
        .post(app.at(&format!("/sandbox/checkout/{id}")))
        .form(&card("4000002500003155", &[("three_d_secure", "complete")]))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(location(&res), app.at(&format!("/done?s={id}")));

    let done = ok(&app, Method::GET, &format!("/checkout/sessions/{id}"), &[]).await;
    let typed: stripe_shared::CheckoutSession =
        miniserde::json::from_str(&done.to_string()).expect("session decodes");
    // $10.00 − 10 % = $9.00, plus 19 % German VAT = $1.71.
    assert_eq!(typed.amount_total, Some(1071));
    assert_eq!(
        done["total_details"],
        json!({ "amount_discount": 100, "amount_shipping": 0, "amount_tax": 171 })
    );
    assert_eq!(done["payment_status"], "paid");
    assert!(done["invoice"].as_str().unwrap().starts_with("in_"));
    // The receipt says what was charged: the product, the discount, the tax, the total.
    let invoice = ok(
        &app,
        Method::GET,
        &format!("/invoices/{}", done["invoice"].as_str().unwrap()),
        &[],
    )
    .await;
    let _: stripe_shared::Invoice =
        miniserde::json::from_str(&invoice.to_string()).expect("invoice decodes");
    assert_eq!(invoice["total"], 1071, "{invoice}");
    assert_eq!(invoice["amount_paid"], 1071);
    assert_eq!(invoice["total_discount_amounts"][0]["amount"], 100);
    assert_eq!(invoice["total_taxes"][0]["amount"], 171);
    let product_name = ok(
        &app,
        Method::GET,
        &format!("/products/{}", price["product"].as_str().unwrap()),
        &[],
    )
    .await["name"]
        .clone();
    assert_eq!(invoice["lines"]["data"][0]["description"], product_name);
    let pi = done["payment_intent"].as_str().unwrap();
    let intent = ok(&app, Method::GET, &format!("/payment_intents/{pi}"), &[]).await;
    let _: stripe_shared::PaymentIntent =
        miniserde::json::from_str(&intent.to_string()).expect("payment intent decodes");
    assert_eq!(intent["status"], "succeeded");

    let (status, err) = api(
        &app,
        Method::POST,
        "/refunds",
        &[("payment_intent", pi), ("amount", "5000")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let refund = ok(&app, Method::POST, "/refunds", &[("payment_intent", pi)]).await;
    let _: stripe_shared::Refund =
        miniserde::json::from_str(&refund.to_string()).expect("refund decodes");
    assert_eq!(refund["amount"], 1071);
    let charge = ok(
        &app,
        Method::GET,
        &format!("/charges/{}", refund["charge"].as_str().unwrap()),
        &[],
    )
    .await;
    assert_eq!(charge["refunded"], true);
    let (status, err) = api(&app, Method::POST, "/refunds", &[("payment_intent", pi)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(err["error"]["code"], "charge_already_refunded");
    let refunded = api(&app, Method::GET, "/events?type=charge.refunded", &[])
        .await
        .1;
    assert_eq!(refunded["data"].as_array().unwrap().len(), 1);
}

/// What the dashboard and billing settings say for a subscription in `status`, and whether
/// the paid feature runs.
async fn shows(app: &TestApp, status_words: &str, timeline: &str, access: bool) {
    let dashboard = app.page("/dashboard").await;
    assert!(
        dashboard.contains(status_words),
        "{status_words}: {dashboard}"
    );
    assert!(dashboard.contains(timeline), "{timeline}");
    assert_eq!(
        dashboard.contains("feature-locked"),
        !access,
        "{status_words}"
    );
    let billing = app.page("/settings/billing").await;
    assert!(billing.contains(status_words), "billing: {status_words}");
    let expected = if access {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    };
    assert_eq!(
        app.call("feature", &[]).await.status(),
        expected,
        "{status_words}"
    );
}

#[tokio::test]
async fn an_abandoned_first_payment_waits_then_expires_without_access() {
    let app = spawn_app().await;
    // The bank asks for 3-D Secure on the first payment and nobody completes it.
    let b = subscribed_with(&app, Some("pm_card_authenticationRequired"), &[]).await;
    assert!(eventually_status(&app, &b.customer, "incomplete").await);
    shows(
        &app,
        "Waiting for payment",
        "Your first payment still needs you",
        false,
    )
    .await;
    let dashboard = app.page("/dashboard").await;
    assert!(dashboard.contains("starts once its first payment is complete"));
    // Billing settings link to the open invoice, where the payment can be finished.
    let billing = app.page("/settings/billing").await;
    assert!(
        billing.contains("pay-now") && billing.contains("/sandbox/invoices/in_"),
        "a link to pay"
    );

    // 23 hours on the customer's clock: expired, and the invoice is void.
    advance(&app, &b, 1).await;
    assert!(eventually_status(&app, &b.customer, "incomplete_expired").await);
    shows(&app, "Expired", "never started", false).await;
    assert!(
        eventually(|| async {
            sqlx::query_scalar::<_, String>(
                "select status from invoices where stripe_customer_id = $1",
            )
            .bind(&b.customer)
            .fetch_one(&app.db)
            .await
            .unwrap()
                == "void"
        })
        .await
    );
    assert!(!app.page("/settings/billing").await.contains("pay-now"));
}

#[tokio::test]
async fn after_the_last_retry_an_unpaid_subscription_keeps_its_invoice_open_without_access() {
    let database = TestDatabase::create().await;
    let app = spawn_app_env(
        &database,
        &[("SANDBOX_AFTER_FAILED_RETRIES", "unpaid")],
        |c| c.grace_days = 3,
    )
    .await;
    let b = subscribed(&app, "pm_card_chargeCustomerFail", Some("1")).await;
    assert!(eventually_status(&app, &b.customer, "trialing").await);
    // The trial ends on day 1 and fails; retries on days 4, 6 and 8 fail too.
    advance(&app, &b, 9).await;
    assert!(eventually_status(&app, &b.customer, "unpaid").await);
    shows(
        &app,
        "Unpaid",
        "Access is paused until the open invoice is paid",
        false,
    )
    .await;
    let pay_link =
        eventually(|| async { app.page("/settings/billing").await.contains("pay-now") }).await;
    let invoices: Vec<(String, i32, i64)> = sqlx::query_as(
        "select status, attempt_count, amount_remaining from invoices where stripe_customer_id = $1",
    )
    .bind(&b.customer)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(pay_link, "a link to pay the open invoice: {invoices:?}");

    // Paid by hand with a working card: active again.
    set_card(&app, &b.customer, "pm_card_visa").await;
    let invoice: String = sqlx::query_scalar(
        "select id from invoices where stripe_customer_id = $1 and status = 'open'",
    )
    .bind(&b.customer)
    .fetch_one(&app.db)
    .await
    .unwrap();
    ok(&app, Method::POST, &format!("/invoices/{invoice}/pay"), &[]).await;
    assert!(eventually_status(&app, &b.customer, "active").await);
    assert_eq!(app.call("feature", &[]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_trial_that_ends_without_a_card_pauses_when_the_subscription_says_so() {
    let app = spawn_app().await;
    let b = subscribed_with(
        &app,
        None,
        &[
            ("trial_period_days", "3"),
            (
                "trial_settings[end_behavior][missing_payment_method]",
                "pause",
            ),
        ],
    )
    .await;
    assert!(eventually_status(&app, &b.customer, "trialing").await);
    shows(&app, "Free trial", "Trial ends", true).await;
    advance(&app, &b, 4).await;
    assert!(eventually_status(&app, &b.customer, "paused").await);
    shows(
        &app,
        "Paused",
        "Your trial ended without a payment method",
        false,
    )
    .await;
}

/// The dashboard's "Run a report" is a plain form: the browser is sent back to the dashboard,
/// which shows the answer once (a refusal comes back in the address); a script's call gets
/// the answer itself and leaves nothing for the page.
#[tokio::test]
async fn the_report_button_is_a_plain_form_whose_answer_the_dashboard_shows_once() {
    let app = spawn_app().await;
    let form_post = || {
        app.client
            .post(app.at("/api/feature"))
            .header(reqwest::header::ACCEPT, "text/html,application/xhtml+xml")
            .header(reqwest::header::REFERER, app.at("/dashboard"))
            .send()
    };
    let _ = signed_up_user(&app, "nofeature").await;
    let res = form_post().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let back = location(&res).to_owned();
    assert!(back.contains("__err="), "{back}");
    let page = assert_status(app.client.get(&back).send().await.unwrap(), StatusCode::OK).await;
    assert!(
        page.contains("Reports are part of every paid plan."),
        "refused, the dashboard says why: {page}"
    );

    let b = subscribed(&app, "pm_card_visa", Some("14")).await;
    assert!(eventually_status(&app, &b.customer, "trialing").await);
    let script = assert_status(app.call("feature", &[]).await, StatusCode::OK).await;
    assert!(script.contains("Report generated"), "{script}");
    assert!(
        !app.page("/dashboard").await.contains("Report generated"),
        "a script's call leaves no message for the page"
    );
    let res = form_post().await.unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(location(&res), "/dashboard");
    let page = app.page("/dashboard").await;
    assert!(page.contains("Report generated"), "{page}");
    assert!(
        !app.page("/dashboard").await.contains("Report generated"),
        "the answer shows once"
    );
}
