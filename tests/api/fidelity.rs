//! Fidelity: the sandbox must be indistinguishable from Stripe for what the app does. One
//! walk through the app's own code paths (sign up, Checkout, a failed renewal, the portal's
//! card update, retry, plan switch, cancel and resume, catalog sync, replay) makes every
//! Stripe request the app makes, each decoded by async-stripe's generated types inside the
//! app; a second webhook endpoint on the app's account then receives every event those steps
//! caused, and each must verify and decode as a typed async-stripe event, never `Unknown`.
//! A value async-stripe does not know in one of its enums decodes to `Unknown(..)` with a
//! warning, not an error, so the walk also records those warnings and allows none.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
};
use stripe_webhook::{EventObject, Webhook};

const DAY: i64 = 86_400;

/// Collects async-stripe's "Unknown value '…' for enum '…'" warnings.
#[derive(Clone, Default)]
struct UnknownEnumValues(Arc<Mutex<BTreeSet<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for UnknownEnumValues {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        if message.0.starts_with("Unknown value") {
            self.0.lock().unwrap().insert(message.0);
        }
    }
}

/// The ids of every event on the app's account, paging through the list.
async fn event_ids(app: &TestApp) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut path = "/events?limit=100".to_owned();
    loop {
        let page = ok(app, Method::GET, &path, &[]).await;
        let data = page["data"].as_array().expect("a list");
        ids.extend(
            data.iter()
                .filter_map(|e| e["id"].as_str().map(str::to_owned)),
        );
        match data.last() {
            Some(last) if page["has_more"] == true => {
                path = format!(
                    "/events?limit=100&starting_after={}",
                    last["id"].as_str().unwrap()
                );
            }
            _ => return ids,
        }
    }
}

async fn portal_action(app: &TestApp, portal: &str, form: &[(&str, &str)]) {
    let res = app.client.post(portal).form(form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{form:?}");
    assert!(
        !location(&res).contains("error"),
        "{form:?}: {}",
        location(&res)
    );
}

/// Every event type the walk must have produced (so a silently shorter walk fails too).
const EXPECTED: &[&str] = &[
    "customer.created",
    "customer.updated",
    "payment_method.attached",
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.trial_will_end",
    "invoice.created",
    "invoice.finalized",
    "invoice.updated",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "payment_intent.created",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.succeeded",
    "charge.failed",
    "billing_portal.session.created",
    "test_helpers.test_clock.created",
    "test_helpers.test_clock.advancing",
    "test_helpers.test_clock.ready",
    "refund.created",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
];

/// The walk's admin: refunds go through the app's own code (CreateRefund).
const ADMIN: &str = "fidelity-admin@example.com";

#[tokio::test]
async fn every_app_request_and_every_event_it_causes_decode_in_async_stripe() {
    // The test's runtime runs on this thread, the app's handlers and decodes included.
    use tracing_subscriber::layer::SubscriberExt;
    let unknown = UnknownEnumValues::default();
    let _recording =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(unknown.clone()));
    let app = spawn_app_with(|c| c.admin_emails = vec![ADMIN.to_owned()]).await;
    let key = app.setting("sandbox_secret_key").await;
    let (hook, hits) = spawn_receiver(0).await;
    let secret = register_endpoint(&app, &key, &hook).await;
    // Start-up's events were never sent to the new endpoint; everything after must be.
    let before = event_ids(&app).await;

    // Catalog: the app's full sync (ListProduct, ListPrice) and its refetches.
    let stripe = app.stripe().await;
    let (products, prices) = saas_billing::catalog::sync::sync_catalog(&stripe, &app.db)
        .await
        .expect("the catalog decodes");
    assert!(
        products >= 3 && prices >= 6,
        "{products} products, {prices} prices"
    );
    stripe
        .get(&stripe_product::product::RetrieveProduct::new("prod_pro"))
        .await
        .expect("RetrieveProduct decodes");
    let team: String = app.price_id("team_monthly").await;
    stripe
        .get(&stripe_product::price::RetrievePrice::new(team.as_str()))
        .await
        .expect("RetrievePrice decodes");

    // Subscribe through the app: customer + test clock, Checkout Session, hosted page.
    let user = signed_up_user(&app, "fidelity").await;
    let pro: String = app.price_id("pro_monthly").await;
    let res = app.call("checkout", &[("price_id", &pro)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let checkout = location(&res).to_owned();
    let paid = app
        .pay_checkout(&checkout, Some(&user.email), "4000 0000 0000 0341")
        .await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let customer: String =
        sqlx::query_scalar("select stripe_customer_id from customers where user_id = $1")
            .bind(user.id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(eventually_status(&app, &customer, "trialing").await);
    // The success page's poll retrieves the session (RetrieveCheckoutSession).
    let session = paid
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.split("session_id=").nth(1))
        .expect("success URL carries the session")
        .to_owned();
    assert_status(
        app.call("checkout/poll", &[("session_id", &session)]).await,
        StatusCode::OK,
    )
    .await;

    // The trial ends and the card fails: invoices, intents, charges; the app refetches the
    // subscription and the invoice with its payments expanded (RetrieveSubscription,
    // RetrieveInvoice).
    let clock = ok(&app, Method::GET, &format!("/customers/{customer}"), &[]).await["test_clock"]
        .as_str()
        .expect("sandbox customers live on a test clock")
        .to_owned();
    let start = ok(
        &app,
        Method::GET,
        &format!("/test_helpers/test_clocks/{clock}"),
        &[],
    )
    .await["frozen_time"]
        .as_i64()
        .unwrap();
    advance_clock_to(&app, &clock, start + 15 * DAY).await;
    assert!(eventually_status(&app, &customer, "past_due").await);
    let failed_email_has_reason = eventually(|| async {
        email_body(&app, user.id, "payment_failed")
            .await
            .is_some_and(|b| b.contains("Reason: Your card was declined."))
    })
    .await;
    assert!(
        failed_email_has_reason,
        "the reason came from the expanded invoice"
    );

    // The portal, opened by the app (CreateBillingPortalSession): new card, then the retry.
    let res = app.call("billing/portal", &[]).await;
    let portal = location(&res).to_owned();
    assert!(
        portal.starts_with(&format!("{}/sandbox/portal/bps_", app.url)),
        "{portal}"
    );
    portal_action(
        &app,
        &portal,
        &[
            ("action", "card"),
            ("card_number", "4242 4242 4242 4242"),
            ("card_expiry", "12 / 40"),
            ("card_cvc", "123"),
        ],
    )
    .await;
    advance_clock_to(&app, &clock, start + 18 * DAY).await;
    assert!(eventually_status(&app, &customer, "active").await);

    // Switch, cancel at period end, resume.
    portal_action(&app, &portal, &[("action", "switch"), ("price", &team)]).await;
    portal_action(
        &app,
        &portal,
        &[("action", "cancel"), ("reason", "too_expensive")],
    )
    .await;
    portal_action(&app, &portal, &[("action", "resume")]).await;
    let switched = eventually(|| async {
        sqlx::query_scalar::<_, String>(
            "select price_id from subscriptions where stripe_customer_id = $1",
        )
        .bind(&customer)
        .fetch_one(&app.db)
        .await
        .unwrap()
            == team
    })
    .await;
    assert!(switched, "the app follows the switch");

    // A lifetime license: Checkout in payment mode with an invoice; the success page's poll;
    // a refund through the admin page (CreateRefund) whose webhook makes the app read the
    // charge (RetrieveCharge); and a disputed purchase, accepted (lost).
    let lifetime: String = app.price_id("desktop_lifetime").await;
    let mut orders = Vec::new();
    for card in ["4242 4242 4242 4242", "4000 0000 0000 0259"] {
        let res = app
            .call("checkout/purchase", &[("price_id", &lifetime)])
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let paid = app.pay_checkout(location(&res), None, card).await;
        assert_eq!(paid.status(), StatusCode::SEE_OTHER);
        let session = location(&paid)
            .split("session_id=")
            .nth(1)
            .unwrap()
            .to_owned();
        let done = eventually(|| async {
            app.call("checkout/poll", &[("session_id", &session)])
                .await
                .text()
                .await
                .unwrap()
                .contains("Purchased")
        })
        .await;
        assert!(done, "the purchase was recorded");
        let order: uuid::Uuid =
            sqlx::query_scalar("select id from orders where checkout_session_id = $1")
                .bind(&session)
                .fetch_one(&app.db)
                .await
                .unwrap();
        orders.push(order);
    }
    let admin = new_client();
    app.call_with(
        &admin,
        "signup",
        &[("email", ADMIN), ("password", PASSWORD)],
    )
    .await;
    let res = app
        .call_with(
            &admin,
            "admin/refund",
            &[
                ("order_id", &orders[0].to_string()),
                ("amount", "5.00"),
                ("reason", "requested_by_customer"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let refunded = eventually(|| async {
        sqlx::query_scalar::<_, i64>("select amount_refunded from orders where id = $1")
            .bind(orders[0])
            .fetch_one(&app.db)
            .await
            .unwrap()
            == 500
    })
    .await;
    assert!(refunded, "the app learned of the refund");
    let dispute: String = sqlx::query_scalar(
        "select o.id from stripe_sandbox.objects o where o.object = 'dispute' limit 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    ok(
        &app,
        Method::POST,
        &format!("/disputes/{dispute}/close"),
        &[],
    )
    .await;
    let revoked = eventually(|| async {
        sqlx::query_scalar::<_, String>("select status from licenses where order_id = $1")
            .bind(orders[1])
            .fetch_one(&app.db)
            .await
            .unwrap()
            == "revoked"
    })
    .await;
    assert!(revoked, "the lost dispute revoked the license");

    // Usage: reports counted, sent to the meter (CreateBillingMeterEvent), the dashboard's
    // estimate (CreatePreviewInvoice), and reconcile-usage's event summaries
    // (ListIdBillingMeterEventSummary).
    for _ in 0..3 {
        assert_status(app.call("feature", &[]).await, StatusCode::OK).await;
    }
    let round = saas_billing::usage::report::run_once(&app.db, &stripe)
        .await
        .expect("usage reports decode");
    assert_eq!((round.sent, round.failed), (1, 0), "{round:?}");
    let dashboard = app.page("/dashboard").await;
    assert!(
        dashboard.contains("Stripe estimates it so far: $"),
        "{dashboard}"
    );
    let lines = saas_billing::usage::reconcile::reconcile(
        &app.db,
        &stripe,
        saas_billing::usage::reconcile::Period::Current,
    )
    .await
    .expect("summaries decode");
    assert!(
        lines.iter().any(|l| l.stripe == 3 && !l.differs()),
        "{lines:?}"
    );

    // Replay lists events (ListEvent with created and delivery_success filters).
    let report = saas_billing::webhooks::replay::replay_events(
        &app.db,
        &stripe,
        deployment(&app),
        start - DAY,
        false,
    )
    .await
    .expect("events decode");
    assert!(report.seen > 0 && report.failed == 0, "{report:?}");

    // Every event the walk caused reached the second endpoint, signed, and decodes typed.
    let caused: BTreeSet<String> = event_ids(&app).await.difference(&before).cloned().collect();
    let got = wait_for_hits(&hits, caused.len()).await;
    let mut types = BTreeSet::new();
    let mut delivered = BTreeSet::new();
    for (headers, body) in &got {
        let sig = headers["stripe-signature"].to_str().unwrap();
        let event = Webhook::construct_event(body, sig, &secret).unwrap_or_else(|e| {
            let kind: Value = serde_json::from_str(body).unwrap_or_default();
            panic!("{e}: a {} event does not decode", kind["type"])
        });
        assert!(
            !matches!(event.data.object, EventObject::Unknown(_)),
            "{} is not a typed event",
            event.type_
        );
        types.insert(event.type_.to_string());
        delivered.insert(event.id.as_str().to_owned());
    }
    let missing: Vec<_> = caused.difference(&delivered).collect();
    assert!(
        missing.is_empty(),
        "{} of {} events not delivered: {missing:?}",
        missing.len(),
        caused.len()
    );
    let unknown = unknown.0.lock().unwrap().clone();
    assert!(
        unknown.is_empty(),
        "values async-stripe does not know: {unknown:?}"
    );
    for t in EXPECTED {
        assert!(
            types.contains(*t),
            "the walk produced no {t} event; got {types:?}"
        );
    }
}
