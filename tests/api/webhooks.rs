//! The app's webhook route, fed by the sandbox's real deliveries and by events we sign here.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use stripe_core::customer::CreateCustomer;
use stripe_product::product::{CreateProduct, UpdateProduct};

async fn product_name(app: &TestApp, id: &str) -> Option<String> {
    sqlx::query_scalar("select name from products where id = $1")
        .bind(id)
        .fetch_optional(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_catalog_follows_stripe_through_signed_webhooks() {
    let app = spawn_app().await;
    let stripe = app.stripe().await;
    let product = stripe
        .post(
            &CreateProduct::new("Enterprise")
                .id("prod_enterprise")
                .metadata([("pricing_page".to_owned(), "true".to_owned())]),
            "t-ent",
        )
        .await
        .unwrap();
    let create = stripe_product::price::CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(199_900)
        .recurring(stripe_product::price::CreatePriceRecurring::new(
            stripe_product::price::CreatePriceRecurringInterval::Month,
        ));
    stripe.post(&create, "t-ent-price").await.unwrap();

    // Nothing but the sandbox's signed webhook tells the app: the pricing page shows it.
    assert!(app.page_eventually_contains("/pricing", "$1,999").await);

    stripe
        .post(
            &UpdateProduct::new(product.id.clone()).name("Enterprise Plus"),
            "t-ent-rename",
        )
        .await
        .unwrap();
    assert!(
        eventually(|| async {
            product_name(&app, "prod_enterprise").await.as_deref() == Some("Enterprise Plus")
        })
        .await
    );
    let ledger: i64 = sqlx::query_scalar("select count(*) from stripe_events where processed_at is not null and type like 'product.%'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(
        ledger >= 5,
        "seeded and new product events are in the ledger ({ledger})"
    );
}

#[tokio::test]
async fn a_price_that_arrives_before_its_product_brings_the_product_along() {
    let app = spawn_app().await;
    let stripe = app.stripe().await;
    let product = stripe
        .post(&CreateProduct::new("Lamp").id("prod_lamp"), "t-lamp")
        .await
        .unwrap();
    let create = stripe_product::price::CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(4_500);
    let price = stripe.post(&create, "t-lamp-price").await.unwrap();
    app.webhooks_settled().await;
    // As if product.created had never arrived: the app knows neither.
    sqlx::query("delete from prices where id = $1")
        .bind(price.id.as_str())
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("delete from products where id = 'prod_lamp'")
        .execute(&app.db)
        .await
        .unwrap();
    let events = ok(&app, Method::GET, "/events?type=price.created&limit=1", &[]).await;
    let event: String = serde_json::from_value(events["data"][0]["id"].clone()).unwrap();
    sqlx::query("delete from stripe_events where id = $1")
        .bind(&event)
        .execute(&app.db)
        .await
        .unwrap();
    deliver_again(&app, &event).await;
    let (product_name, unit_amount): (String, i64) = sqlx::query_as(
        "select p.name, pr.unit_amount from prices pr join products p on p.id = pr.product_id where pr.id = $1",
    )
    .bind(price.id.as_str())
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((product_name.as_str(), unit_amount), ("Lamp", 4_500));
}

#[tokio::test]
async fn unsigned_or_forged_webhooks_change_nothing() {
    let app = spawn_app().await;
    let body = event(
        "evt_forged",
        "product.updated",
        json!({ "id": "prod_pro", "name": "Hacked" }),
    );
    let res = app
        .client
        .post(app.at("/api/webhooks/stripe"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        deliver(&app, &body, "whsec_not_ours").await.status(),
        StatusCode::BAD_REQUEST
    );
    let stale = stripe_sandbox::signature_header(
        &app.setting("sandbox_webhook_secret").await,
        now() - 3600,
        body.as_bytes(),
    );
    let res = app
        .client
        .post(app.at("/api/webhooks/stripe"))
        .header("stripe-signature", stale)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let recorded: i64 =
        sqlx::query_scalar("select count(*) from stripe_events where id = 'evt_forged'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(recorded, 0);
    assert_eq!(product_name(&app, "prod_pro").await.as_deref(), Some("Pro"));
}

#[tokio::test]
async fn the_same_event_five_times_at_once_is_processed_once() {
    let app = spawn_app().await;
    let secret = app.setting("sandbox_webhook_secret").await;
    let body = event(
        "evt_dupe_test",
        "balance.available",
        json!({ "id": "bal_x", "object": "balance" }),
    );
    let sends = (0..5).map(|_| deliver(&app, &body, &secret));
    let responses = futures::future::join_all(sends).await;
    let mut fresh = 0;
    for res in responses {
        assert_eq!(res.status(), StatusCode::OK);
        let json: Value = res.json().await.unwrap();
        if json["duplicate"] == false {
            fresh += 1;
        }
    }
    assert_eq!(fresh, 1, "exactly one delivery did the work");
    let (rows, attempts): (i64, i64) =
        sqlx::query_as("select count(*), sum(attempts) from stripe_events where id = 'evt_dupe_test' and processed_at is not null")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((rows, attempts), (1, 1));
}

#[tokio::test]
async fn connections_postgres_cut_while_idle_are_replaced_before_a_webhook_uses_them() {
    use sqlx::Connection;
    let app = spawn_app().await;
    let secret = app.setting("sandbox_webhook_secret").await;
    // Every connection to the app's database but this one goes (a restart, a failover):
    // the app's pool still holds its connections from start-up.
    let mut own = sqlx::PgConnection::connect(&app.db_url).await.unwrap();
    let cut: i64 = sqlx::query_scalar(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity
         where datname = current_database() and pid <> pg_backend_pid()",
    )
    .fetch_one(&mut own)
    .await
    .unwrap();
    assert!(cut > 0, "the app had connections open");
    // Idle for longer than the pool hands a connection out unchecked.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let now = now();
    let body = event(
        "evt_after_the_cut",
        "product.updated",
        json!({ "id": "prod_after_the_cut", "object": "product", "active": true, "created": now,
                "images": [], "livemode": false, "marketing_features": [], "metadata": {},
                "name": "After the cut", "type": "service", "updated": now }),
    );
    let res = deliver(&app, &body, &secret).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the first delivery is applied"
    );
    assert_eq!(
        product_name(&app, "prod_after_the_cut").await.as_deref(),
        Some("After the cut")
    );
}

/// A user subscribed to Pro monthly, with every event the sandbox sent about it delivered:
/// the subscription's id, Stripe's copy of it and the webhook secret, for a test's own events.
async fn settled_subscription(app: &TestApp, prefix: &str) -> (String, Value, String) {
    let user = signed_up_user(app, prefix).await;
    let stripe = app.stripe().await;
    let key = format!("t-{prefix}");
    let sub = subscribe_user(app, &stripe, &user, "pro_monthly", &key).await;
    let sub_id = sub.id.as_str().to_owned();
    assert!(eventually(|| async { subscription_as_of(app, &sub_id).await.is_some() }).await);
    app.webhooks_settled().await;
    let object = ok(app, Method::GET, &format!("/subscriptions/{sub_id}"), &[]).await;
    let secret = app.setting("sandbox_webhook_secret").await;
    (sub_id, object, secret)
}

/// The Stripe time the subscription's row reflects (`None`: no row yet).
async fn subscription_as_of(app: &TestApp, id: &str) -> Option<i64> {
    sqlx::query_scalar("select stripe_as_of from subscriptions where id = $1")
        .bind(id)
        .fetch_optional(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_subscription_event_five_times_at_once_is_claimed_and_written_once() {
    // A subscription's event carries its ledger claim in its upsert: five concurrent copies
    // must still leave one processed delivery, one attempt, and the row as the event says.
    let app = spawn_app().await;
    // The sandbox's own events for it land first: only the five copies race here.
    let (sub_id, object, secret) = settled_subscription(&app, "dupes").await;
    let stored_as_of = || async { subscription_as_of(&app, &sub_id).await.unwrap() };
    // Newer than anything stored (written from the event alone), then as old as the first
    // snapshot (not newer: each copy that gets the claim asks Stripe for the current copy).
    let newer = stored_as_of().await + 100;
    for (id, created) in [("evt_sub_dupes_newer", newer), ("evt_sub_dupes_stale", 1)] {
        let body = event_at(id, "customer.subscription.updated", object.clone(), created);
        let sends = (0..5).map(|_| deliver(&app, &body, &secret));
        let mut fresh = 0;
        for res in futures::future::join_all(sends).await {
            assert_eq!(res.status(), StatusCode::OK, "{id}");
            let json: Value = res.json().await.unwrap();
            if json["duplicate"] == false {
                fresh += 1;
            }
        }
        assert_eq!(fresh, 1, "{id}: exactly one delivery did the work");
        let (rows, attempts): (i64, i64) = sqlx::query_as(
            "select count(*), sum(attempts)::bigint from stripe_events where id = $1 and processed_at is not null",
        )
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!((rows, attempts), (1, 1), "{id}");
        // The newer snapshot was stored as of its own time; the stale one changed nothing
        // it was older than.
        assert_eq!(stored_as_of().await, newer, "{id}");
    }
}

/// Stripe sends the events about one object together, in one second: each ties with the
/// row, so each reads Stripe's current copy and writes it only while the row stays as it
/// was. Side by side, every write would make the other reads stale and the last ones would
/// run out of attempts (500, and Stripe's retry comes later). They take turns instead:
/// every one applies on its first delivery.
#[tokio::test]
async fn a_burst_of_events_about_one_subscription_each_apply_on_first_delivery() {
    let app = spawn_app().await;
    let (sub_id, object, secret) = settled_subscription(&app, "burst").await;
    let tie = subscription_as_of(&app, &sub_id).await.unwrap();
    let row = || async {
        sqlx::query_as::<_, (String, i64)>(
            "select status, xmin::text::bigint from subscriptions where id = $1",
        )
        .bind(&sub_id)
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    let (_, before) = row().await;
    let bodies: Vec<String> = (0..8)
        .map(|i| {
            let id = format!("evt_burst_{i}");
            event_at(&id, "customer.subscription.updated", object.clone(), tie)
        })
        .collect();
    let sends = bodies.iter().map(|body| deliver(&app, body, &secret));
    for res in futures::future::join_all(sends).await {
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap()
        );
    }
    let (processed, attempts): (i64, i64) = sqlx::query_as(
        "select count(*), coalesce(sum(attempts), 0)::bigint from stripe_events
         where id like 'evt_burst_%' and processed_at is not null",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (processed, attempts),
        (8, 8),
        "each processed on its one delivery"
    );
    // Stripe's copy as read was written over the row.
    let (status, version) = row().await;
    assert_eq!(status, object["status"].as_str().unwrap());
    assert_ne!(version, before, "the reads were written");
}

#[tokio::test]
async fn events_in_reverse_order_end_in_stripes_current_state() {
    let app = spawn_app().await;
    let stripe = app.stripe().await;
    let product = stripe
        .post(&CreateProduct::new("First").id("prod_order"), "t-order")
        .await
        .unwrap();
    stripe
        .post(
            &UpdateProduct::new(product.id.clone()).name("Second"),
            "t-order-2",
        )
        .await
        .unwrap();
    stripe
        .post(
            &UpdateProduct::new(product.id.clone()).name("Third"),
            "t-order-3",
        )
        .await
        .unwrap();
    // Let the sandbox's own deliveries land, then replay all three events newest-last reversed.
    assert!(
        eventually(|| async { product_name(&app, "prod_order").await.as_deref() == Some("Third") })
            .await
    );
    let events = ok(&app, Method::GET, "/events?type=product.*&limit=3", &[]).await;
    let secret = app.setting("sandbox_webhook_secret").await;
    sqlx::query("delete from stripe_events")
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query("update products set name = 'stale', stripe_as_of = 0 where id = 'prod_order'")
        .execute(&app.db)
        .await
        .unwrap();
    // Oldest last: product.created arrives after both updates.
    for e in events["data"].as_array().unwrap() {
        assert_eq!(
            deliver(&app, &e.to_string(), &secret).await.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        product_name(&app, "prod_order").await.as_deref(),
        Some("Third")
    );
}

#[tokio::test]
async fn a_failed_event_answers_500_and_its_retry_is_processed() {
    let app = spawn_app().await;
    // The fake deletion below contradicts the sandbox: a late seed event would refetch it.
    app.webhooks_settled().await;
    let secret = app.setting("sandbox_webhook_secret").await;
    // A price that cannot be decoded (no currency): our failure, so Stripe must retry.
    let broken = event(
        "evt_retry_me",
        "price.updated",
        json!({ "id": "price_x", "object": "price" }),
    );
    assert_eq!(
        deliver(&app, &broken, &secret).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let (processed, attempts, error): (Option<time::OffsetDateTime>, i32, Option<String>) =
        sqlx::query_as("select processed_at, attempts, last_error from stripe_events where id = 'evt_retry_me'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(processed.is_none());
    assert_eq!(attempts, 1);
    assert!(error.unwrap().contains("decode"));

    // Stripe's retry carries the same id; once processing works it is applied, not skipped.
    let fixed = event(
        "evt_retry_me",
        "product.deleted",
        json!({ "id": "prod_starter", "object": "product", "deleted": true }),
    );
    assert_eq!(
        deliver(&app, &fixed, &secret).await.status(),
        StatusCode::OK
    );
    let (processed, attempts): (Option<time::OffsetDateTime>, i32) = sqlx::query_as(
        "select processed_at, attempts from stripe_events where id = 'evt_retry_me'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(processed.is_some());
    assert_eq!(attempts, 2);
    let active: bool = sqlx::query_scalar("select active from products where id = 'prod_starter'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!active);
}

#[tokio::test]
async fn a_stale_snapshot_delivered_after_a_deletion_does_not_bring_the_product_back() {
    let app = spawn_app().await;
    let secret = app.setting("sandbox_webhook_secret").await;
    let t0 = now() - 100;
    let ghost = |active: bool| {
        json!({ "id": "prod_ghost", "object": "product", "active": active, "name": "Ghost",
                "created": t0, "updated": t0, "livemode": false, "metadata": {}, "images": [],
                "marketing_features": [], "package_dimensions": null, "shippable": null,
                "type": "service", "url": null, "description": null, "default_price": null,
                "statement_descriptor": null, "tax_code": null, "unit_label": null })
    };
    // Stripe created it, then deleted it (it is gone from Stripe now)...
    let created = event_at("evt_ghost_1", "product.created", ghost(true), t0);
    assert_eq!(
        deliver(&app, &created, &secret).await.status(),
        StatusCode::OK
    );
    let deleted = event_at(
        "evt_ghost_3",
        "product.deleted",
        json!({ "id": "prod_ghost", "object": "product", "deleted": true }),
        t0 + 20,
    );
    assert_eq!(
        deliver(&app, &deleted, &secret).await.status(),
        StatusCode::OK
    );
    // ...and an update from between the two arrives last.
    let late = event_at("evt_ghost_2", "product.updated", ghost(true), t0 + 10);
    assert_eq!(deliver(&app, &late, &secret).await.status(), StatusCode::OK);
    let active: bool = sqlx::query_scalar("select active from products where id = 'prod_ghost'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(!active, "the deletion is newer than the late snapshot");
}

#[tokio::test]
async fn unknown_types_are_acknowledged_and_recorded() {
    let app = spawn_app().await;
    let secret = app.setting("sandbox_webhook_secret").await;
    let body = event(
        "evt_unknown",
        "radar.early_fraud_warning.created",
        json!({ "id": "issfr_1" }),
    );
    assert_eq!(deliver(&app, &body, &secret).await.status(), StatusCode::OK);
    let processed: Option<time::OffsetDateTime> =
        sqlx::query_scalar("select processed_at from stripe_events where id = 'evt_unknown'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(processed.is_some());
}

#[tokio::test]
async fn oversized_wrong_mode_and_garbage_bodies_are_refused() {
    let app = spawn_app().await;
    let secret = app.setting("sandbox_webhook_secret").await;
    let huge = "x".repeat(1024 * 1024 + 1);
    assert_eq!(
        deliver(&app, &huge, &secret).await.status(),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        deliver(&app, "not json", &secret).await.status(),
        StatusCode::BAD_REQUEST
    );
    let live = json!({ "id": "evt_live", "type": "product.created", "created": now(), "livemode": true, "data": { "object": {} } }).to_string();
    assert_eq!(
        deliver(&app, &live, &secret).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn replay_applies_the_events_the_app_missed() {
    let app = spawn_app_with(|c| c.sandbox.retry_schedule = vec![Duration::from_millis(100)]).await;
    let key = app.setting("sandbox_secret_key").await;
    let endpoint = app.setting("sandbox_webhook_endpoint").await;
    // The app's endpoint goes dark: deliveries fail and the sandbox gives up.
    let res = app
        .client
        .post(app.at(&format!("/sandbox/v1/webhook_endpoints/{endpoint}")))
        .bearer_auth(&key)
        .form(&[("url", "http://127.0.0.1:9/unreachable")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let stripe = app.stripe().await;
    let since = now() - 60;
    stripe
        .post(&CreateProduct::new("Missed").id("prod_missed"), "t-missed")
        .await
        .unwrap();
    let undelivered = || async {
        let list = ok(&app, Method::GET, "/events?delivery_success=false", &[]).await;
        !list["data"].as_array().unwrap().is_empty()
    };
    assert!(
        eventually(undelivered).await,
        "the sandbox records the failed delivery"
    );
    assert_eq!(
        product_name(&app, "prod_missed").await,
        None,
        "the app never heard of it"
    );

    // Everything whose delivery failed comes back, including seed-catalog events still in
    // flight when the endpoint went dark.
    let report = saas_billing::webhooks::replay::replay_events(
        &app.db,
        &stripe,
        deployment(&app),
        since,
        true,
    )
    .await
    .unwrap();
    assert!(report.applied >= 1 && report.failed == 0, "{report:?}");
    assert_eq!(
        product_name(&app, "prod_missed").await.as_deref(),
        Some("Missed")
    );

    // Replaying everything again, by command as an operator would, is harmless: the ledger
    // knows what was done.
    let (fine, said) = app
        .run_command(&["replay-events", "--since", &since.to_string()])
        .await;
    assert!(fine, "{said}");
    let counts = said
        .lines()
        .find(|l| l.contains(" events: "))
        .unwrap_or_else(|| panic!("a summary line: {said}"));
    assert!(
        counts.contains(" 0 applied")
            && counts.ends_with(" 0 failed")
            && !counts.contains(" 0 already processed"),
        "{counts}"
    );
    let (fine, said) = app
        .run_command(&["replay-events", "--since", "yesterday-ish"])
        .await;
    assert!(
        !fine && said.contains("--since: use unix seconds"),
        "{said}"
    );
}

#[tokio::test]
async fn the_sync_catalog_command_restores_the_catalog() {
    let app = spawn_app().await;
    sqlx::query("update products set name = 'tampered', stripe_as_of = 0")
        .execute(&app.db)
        .await
        .unwrap();
    let (fine, said) = app.run_command(&["sync-catalog"]).await;
    assert!(
        fine && said.contains("synced 4 products and 13 prices"),
        "{said}"
    );
    assert_eq!(product_name(&app, "prod_pro").await.as_deref(), Some("Pro"));
}

async fn price_id(app: &TestApp, lookup_key: &str) -> String {
    sqlx::query_scalar("select id from prices where lookup_key = $1")
        .bind(lookup_key)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

fn subscribe(
    customer: &str,
    price: &str,
    user: &saas_billing::accounts::User,
) -> stripe_billing::subscription::CreateSubscription {
    use stripe_billing::subscription::{CreateSubscription, CreateSubscriptionItems};
    CreateSubscription::new()
        .customer(customer)
        .items(vec![CreateSubscriptionItems {
            price: Some(price.to_owned()),
            ..CreateSubscriptionItems::new()
        }])
        .trial_period_days(14u32)
        .metadata([("user_id".to_owned(), user.id.to_string())])
}

/// The app's own customer for `user`, subscribed to the price with `lookup_key` on a trial,
/// through the sandbox's API (the app then learns it from webhooks only).
async fn subscribe_user(
    app: &TestApp,
    stripe: &saas_billing::stripe::Stripe,
    user: &saas_billing::accounts::User,
    lookup_key: &str,
    idempotency_key: &str,
) -> stripe_shared::Subscription {
    let customer = saas_billing::billing::customer::ensure_customer(&app.db, stripe, user, false)
        .await
        .unwrap();
    stripe
        .post(
            &subscribe(&customer, &price_id(app, lookup_key).await, user),
            idempotency_key,
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn a_subscription_reaches_the_dashboard_only_through_webhooks_and_gates_the_feature() {
    use stripe_billing::subscription::{CancelSubscription, UpdateSubscription};
    let app = spawn_app().await;
    let user = signed_up_user(&app, "subscriber").await;
    assert_status(app.call("feature", &[]).await, StatusCode::FORBIDDEN).await;
    let page = app.page("/dashboard").await;
    assert!(page.contains("not subscribed"));

    let stripe = app.stripe().await;
    let sub = subscribe_user(&app, &stripe, &user, "pro_monthly", "t-sub").await;

    assert!(
        app.page_eventually_contains("/dashboard", "Free trial")
            .await
    );
    let page = app.page("/dashboard").await;
    assert!(
        page.contains("Pro") && page.contains("14 days left"),
        "{page}"
    );
    let report = assert_status(app.call("feature", &[]).await, StatusCode::OK).await;
    assert!(report.contains("Report generated"));
    let pricing = app.page("/pricing").await;
    assert!(
        pricing.contains("Your current plan") && pricing.contains("Manage billing"),
        "the pricing page marks the plan"
    );
    let billing = app.page("/settings/billing").await;
    assert!(
        billing.contains("Pro") && billing.contains("Free trial"),
        "billing settings show the plan"
    );

    stripe
        .post(
            &UpdateSubscription::new(sub.id.clone()).cancel_at_period_end(true),
            "t-sub-end",
        )
        .await
        .unwrap();
    assert!(
        app.page_eventually_contains("/dashboard", "set to end")
            .await
    );
    assert_eq!(
        app.call("feature", &[]).await.status(),
        StatusCode::OK,
        "access lasts until the period ends"
    );

    stripe
        .post(&CancelSubscription::new(sub.id.clone()), "t-sub-cancel")
        .await
        .unwrap();
    assert!(
        app.page_eventually_contains("/dashboard", "no longer gives access")
            .await
    );
    assert_status(app.call("feature", &[]).await, StatusCode::FORBIDDEN).await;
    assert!(!app
        .get("/pricing")
        .await
        .text()
        .await
        .unwrap()
        .contains("Your current plan"));

    // Another user sees none of it.
    let other = new_client();
    app.call_with(
        &other,
        "signup",
        &[("email", &unique_email("other")), ("password", PASSWORD)],
    )
    .await;
    let theirs = other
        .get(app.at("/dashboard"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(theirs.contains("not subscribed"));
}

#[tokio::test]
async fn a_subscription_for_a_not_yet_linked_customer_is_kept_and_linked_through_metadata() {
    let app = spawn_app().await;
    let user = signed_up_user(&app, "early").await;
    let stripe = app.stripe().await;
    // A customer the app has no row for (as when the webhook beats checkout's completion).
    let customer = stripe
        .post(
            &CreateCustomer::new().email(user.email.as_str()),
            "t-early-customer",
        )
        .await
        .unwrap();
    stripe
        .post(
            &subscribe(
                customer.id.as_str(),
                &price_id(&app, "team_yearly").await,
                &user,
            ),
            "t-early-sub",
        )
        .await
        .unwrap();
    assert!(app.page_eventually_contains("/dashboard", "Team").await);
    let linked: String =
        sqlx::query_scalar("select stripe_customer_id from customers where user_id = $1")
            .bind(user.id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(linked, customer.id.as_str());
}

#[tokio::test]
async fn subscribing_through_checkout_end_to_end_over_http() {
    let app = spawn_app().await;
    let user = signed_up_user(&app, "buyer").await;
    let pro = price_id(&app, "pro_monthly").await;

    assert_status(
        app.call("checkout", &[("price_id", "price_nope")]).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let res = app.call("checkout", &[("price_id", &pro)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let checkout_url = location(&res).to_owned();
    assert!(
        checkout_url.starts_with(&format!("{}/sandbox/checkout/cs_test_", app.url)),
        "{checkout_url}"
    );
    let page = app.page(&checkout_url).await;
    assert!(
        page.contains("14 days free") && page.contains("Pro"),
        "{page}"
    );

    let paid = app
        .pay_checkout(&checkout_url, None, "4242424242424242")
        .await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let success = location(&paid).to_owned();
    assert!(
        success.starts_with(&format!("{}/checkout/success?session_id=cs_test_", app.url)),
        "{success}"
    );
    let session_id = success.split("session_id=").nth(1).unwrap().to_owned();

    // The success page grants nothing; it reports what the webhook stored.
    assert!(
        eventually(|| async {
            app.call("checkout/poll", &[("session_id", &session_id)])
                .await
                .text()
                .await
                .unwrap()
                .contains("Done")
        })
        .await
    );
    let page = app
        .get(&format!("/checkout/success?session_id={session_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Your free trial has started"), "{page}");
    let dashboard = app.page("/dashboard").await;
    assert!(dashboard.contains("Pro") && dashboard.contains("Free trial"));
    let linked: i64 = sqlx::query_scalar("select count(*) from customers where user_id = $1")
        .bind(user.id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(linked, 1);

    // Already subscribed: a second checkout goes to billing settings instead.
    let again = app.call("checkout", &[("price_id", &pro)]).await;
    assert_eq!(location(&again), "/settings/billing");

    // Someone else's session id tells another user nothing.
    let other = new_client();
    app.call_with(
        &other,
        "signup",
        &[("email", &unique_email("snoop")), ("password", PASSWORD)],
    )
    .await;
    let theirs = app
        .call_with(&other, "checkout/poll", &[("session_id", &session_id)])
        .await
        .text()
        .await
        .unwrap();
    assert!(theirs.contains("NotFound"), "{theirs}");
}

#[tokio::test]
async fn a_deleted_customer_is_unlinked_and_the_next_one_is_new() {
    let app = spawn_app().await;
    let user = signed_up_user(&app, "deleted").await;
    let stripe = app.stripe().await;
    let customer = saas_billing::billing::customer::ensure_customer(&app.db, &stripe, &user, false)
        .await
        .unwrap();
    // Deleted at Stripe (dashboard, API): the customer.deleted webhook unlinks it.
    let key = app.setting("sandbox_secret_key").await;
    let res = app
        .client
        .delete(app.at(&format!("/sandbox/v1/customers/{customer}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let unlinked = eventually(|| async {
        sqlx::query_scalar::<_, i64>("select count(*) from customers where user_id = $1")
            .bind(user.id)
            .fetch_one(&app.db)
            .await
            .unwrap()
            == 0
    })
    .await;
    assert!(unlinked, "the webhook unlinked the customer");

    // Within Stripe's 24-hour idempotency window, subscribing again gets a new customer,
    // not a replay of the deleted one.
    let again = saas_billing::billing::customer::ensure_customer(&app.db, &stripe, &user, false)
        .await
        .unwrap();
    assert_ne!(again, customer);
    let fresh = ok(&app, Method::GET, &format!("/customers/{again}"), &[]).await;
    assert!(fresh.get("deleted").is_none(), "{fresh}");
    assert_eq!(fresh["metadata"]["user_id"], user.id.to_string());
    let pro = price_id(&app, "pro_monthly").await;
    let res = app.call("checkout", &[("price_id", &pro)]).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "checkout works with the new customer"
    );
    assert!(location(&res).contains("/sandbox/checkout/cs_test_"));
}

#[tokio::test]
async fn invoice_events_refresh_their_subscription_from_stripe() {
    let app = spawn_app().await;
    let user = signed_up_user(&app, "invoice").await;
    let stripe = app.stripe().await;
    let sub = subscribe_user(&app, &stripe, &user, "starter_monthly", "t-inv-sub").await;
    assert!(app.page_eventually_contains("/dashboard", "Starter").await);
    // The sandbox's own invoice events for this subscription are delivered first: racing
    // them, the event below could need more reads of Stripe than one delivery makes (and
    // answer 500 for Stripe to retry, which is right, but not what this test is about).
    app.webhooks_settled().await;
    // Pretend our copy is stale, then an invoice event (2026 shape) arrives naming the subscription.
    sqlx::query("update subscriptions set status = 'past_due', stripe_as_of = 0")
        .execute(&app.db)
        .await
        .unwrap();
    let secret = app.setting("sandbox_webhook_secret").await;
    // The subscription's first invoice, whole, as Stripe's events carry it.
    let listed = ok(
        &app,
        Method::GET,
        &format!("/invoices?subscription={}", sub.id.as_str()),
        &[],
    )
    .await;
    let mut invoice = listed["data"][0].clone();
    assert_eq!(
        invoice["parent"]["subscription_details"]["subscription"],
        sub.id.as_str()
    );
    assert_eq!(
        deliver(
            &app,
            &event("evt_inv_paid", "invoice.paid", invoice.clone()),
            &secret
        )
        .await
        .status(),
        StatusCode::OK
    );
    let status: String = sqlx::query_scalar("select status from subscriptions where id = $1")
        .bind(sub.id.as_str())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        status, "trialing",
        "Stripe's current status, not our stale one"
    );
    // An invoice outside any subscription is acknowledged and changes nothing.
    invoice["id"] = json!("in_one_off");
    invoice["parent"] = Value::Null;
    assert_eq!(
        deliver(
            &app,
            &event("evt_inv_other", "invoice.payment_failed", invoice),
            &secret
        )
        .await
        .status(),
        StatusCode::OK
    );
}

/// The newest event of `kind` on a test-mode app's own Stripe, as Stripe would deliver it.
async fn latest_event(t: &TestModeApp, kind: &str) -> String {
    let listed: Value = t
        .app
        .client
        .get(format!("{}/v1/events?type={kind}", t.stripe_base))
        .bearer_auth(&t.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    listed["data"][0].to_string()
}

async fn stored_status(app: &TestApp, subscription: &str) -> String {
    sqlx::query_scalar("select status from subscriptions where id = $1")
        .bind(subscription)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// A customer on a trial of Pro, made on a test-mode app's own Stripe, whose creation event
/// the app has been given (Stripe's events reach it only when a test delivers them): the
/// client, the subscription's id and that event.
async fn trial_delivered(t: &TestModeApp, secret: &str) -> (stripe::Client, String, String) {
    use stripe_billing::subscription::{CreateSubscription, CreateSubscriptionItems};
    let stripe = stripe_client(&t.stripe_base, &t.key);
    let customer = CreateCustomer::new().send(&stripe).await.unwrap();
    let sub = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![CreateSubscriptionItems {
            price: Some(t.app.price_id("pro").await),
            ..CreateSubscriptionItems::new()
        }])
        .trial_period_days(14u32)
        .send(&stripe)
        .await
        .unwrap();
    let created = latest_event(t, "customer.subscription.created").await;
    assert_eq!(
        deliver(&t.app, &created, secret).await.status(),
        StatusCode::OK
    );
    assert_eq!(stored_status(&t.app, sub.id.as_str()).await, "trialing");
    (stripe, sub.id.as_str().to_owned(), created)
}

/// An invoice's outcome makes the app read its subscription from Stripe. When another event
/// writes the subscription while that read is on its way, what was read is older than what
/// is stored, though stored as of an earlier Stripe time than the read's: it must not be
/// written over it.
#[tokio::test]
async fn an_invoice_outcome_never_undoes_a_change_stored_while_its_subscription_was_read() {
    use stripe_billing::subscription::CancelSubscription;
    let gate = Gate::start().await;
    let secret = "whsec_gate";
    let t = spawn_test_mode_app(secret, |c| {
        gate.forward_to(c.stripe_api_base.as_ref().unwrap().as_str());
        c.stripe_api_base = Some(gate.url.parse().unwrap());
    })
    .await;
    let app = &t.app;
    let (stripe, id, _) = trial_delivered(&t, secret).await;
    let id = id.as_str();
    // The cancellation below comes a second after the stored snapshot, so it is written from
    // its own snapshot while the read is held. (A tie would need a read of its own, and reads
    // of one subscription take turns: it would wait behind the held one.)
    let stored: i64 = sqlx::query_scalar("select stripe_as_of from subscriptions where id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(eventually(|| async { now() > stored }).await);

    // The trial's invoice is paid; the app reads the subscription, and the answer is held…
    let invoice = latest_event(&t, "invoice.paid").await;
    gate.hold_next(&format!("/v1/subscriptions/{id}"));
    let meanwhile = async {
        gate.holding().await;
        // …while the customer cancels and that event is stored.
        CancelSubscription::new(id).send(&stripe).await.unwrap();
        let deleted = latest_event(&t, "customer.subscription.deleted").await;
        assert_eq!(
            deliver(app, &deleted, secret).await.status(),
            StatusCode::OK
        );
        assert_eq!(stored_status(app, id).await, "canceled");
        gate.release();
    };
    let (paid, ()) = tokio::join!(deliver(app, &invoice, secret), meanwhile);
    assert_eq!(paid.status(), StatusCode::OK);
    assert_eq!(
        stored_status(app, id).await,
        "canceled",
        "the held read (trialing) did not overwrite the cancellation"
    );
}

/// What an event made the app read from Stripe is as new as the read, not as the event: a
/// snapshot Stripe sent before the read but delivered after it (here a trial's, from just
/// before the customer cancelled) does not undo it.
#[tokio::test]
async fn a_snapshot_older_than_what_the_app_read_from_stripe_does_not_undo_it() {
    use stripe_billing::subscription::CancelSubscription;
    let secret = "whsec_read";
    let t = spawn_test_mode_app(secret, |_| {}).await;
    let app = &t.app;
    let (stripe, id, created) = trial_delivered(&t, secret).await;
    let id = id.as_str();
    // A second later (in Stripe's time) the customer cancels.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    CancelSubscription::new(id).send(&stripe).await.unwrap();
    let deleted: Value =
        serde_json::from_str(&latest_event(&t, "customer.subscription.deleted").await).unwrap();
    // The trial invoice's outcome (an event from before) makes the app read the subscription:
    // cancelled by now.
    let paid = latest_event(&t, "invoice.paid").await;
    assert_eq!(deliver(app, &paid, secret).await.status(), StatusCode::OK);
    assert_eq!(stored_status(app, id).await, "canceled");
    // A trial snapshot Stripe made in the second of the cancellation, just before it,
    // delivered only now.
    let mut late: Value = serde_json::from_str(&created).unwrap();
    late["id"] = json!("evt_late_trial_snapshot");
    late["type"] = json!("customer.subscription.trial_will_end");
    late["created"] = deleted["created"].clone();
    assert_eq!(
        deliver(app, &late.to_string(), secret).await.status(),
        StatusCode::OK
    );
    assert_eq!(stored_status(app, id).await, "canceled");
}

#[tokio::test]
async fn reordered_deliveries_still_leave_the_app_with_stripes_truth() {
    let app = spawn_app_with(|c| c.sandbox.chaos_reorder = Duration::from_millis(400)).await;
    app.webhooks_settled().await;
    // A second receiver on the app's own account: the only one that may reach loopback.
    let key = app.setting("sandbox_secret_key").await;
    let (url, hits) = spawn_receiver(0).await;
    register_endpoint(&app, &key, &url).await;
    let client = stripe_client(&format!("{}/sandbox", app.url), &key);
    for i in 0..4 {
        CreateProduct::new(format!("P{i}"))
            .send(&client)
            .await
            .unwrap();
    }
    let got = wait_for_hits(&hits, 4).await;
    let names: Vec<String> = got
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["data"]["object"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        names,
        vec!["P3", "P2", "P1", "P0"],
        "delivered newest first"
    );

    // The app's own catalog, changed three times in quick succession and told backwards.
    let stripe = app.stripe().await;
    for (i, name) in ["A", "B", "C"].iter().enumerate() {
        stripe
            .post(
                &UpdateProduct::new("prod_pro").name(*name),
                &format!("reorder-{i}"),
            )
            .await
            .unwrap();
    }
    let mut name = String::new();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pending: i64 = sqlx::query_scalar(
            "select count(*) from stripe_sandbox.deliveries where status = 'pending'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap();
        name = sqlx::query_scalar("select name from products where id = 'prod_pro'")
            .fetch_one(&app.db)
            .await
            .unwrap();
        if pending == 0 {
            break;
        }
    }
    assert_eq!(
        name, "C",
        "the last change wins even when its event arrives first"
    );
    // And they really did arrive backwards: the ledger saw the newest update first.
    let created_order: Vec<String> = sqlx::query_scalar(
        "select id from stripe_sandbox.events where type = 'product.updated' and data -> 'data' -> 'object' ->> 'id' = 'prod_pro' order by seq",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let received_order: Vec<String> = sqlx::query_scalar(
        "select id from stripe_events where id = any($1) order by received_at, id",
    )
    .bind(&created_order)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let mut reversed = created_order.clone();
    reversed.reverse();
    assert_eq!(received_order, reversed);
}

#[tokio::test]
async fn register_webhook_makes_one_endpoint_keeps_it_right_and_rotates_its_secret() {
    use saas_billing::webhooks::register::{api_version, HANDLED_EVENTS};
    let app = spawn_app().await;
    // A URL of its own, so the app's own sandbox endpoint stays out of the way; nothing
    // listens there (deliveries to it fail and are retried, which is not under test).
    let url = "http://127.0.0.1:9/api/webhooks/stripe";
    let endpoints = || async {
        let list = ok(&app, Method::GET, "/webhook_endpoints?limit=100", &[]).await;
        let mut mine: Vec<Value> = list["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["url"] == url)
            .cloned()
            .collect();
        mine.reverse(); // oldest first
        mine
    };
    let secret_in = |said: &str| {
        said.lines()
            .find(|l| l.starts_with("whsec_"))
            .map(str::to_owned)
    };

    let (fine, said) = app.run_command(&["register-webhook", "--url", url]).await;
    assert!(fine && said.contains("created webhook endpoint"), "{said}");
    let secret = secret_in(&said).expect("the secret is printed on creation");
    let created = endpoints().await;
    assert_eq!(created.len(), 1, "{created:?}");
    let endpoint = &created[0];
    let mut events: Vec<&str> = endpoint["enabled_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    events.sort_unstable();
    let mut handled = HANDLED_EVENTS.to_vec();
    handled.sort_unstable();
    assert_eq!(events, handled, "exactly the events the route handles");
    assert_eq!(endpoint["api_version"], api_version().as_str());
    assert_eq!(endpoint["status"], "enabled");
    let id = endpoint["id"].as_str().unwrap().to_owned();

    // Again: no second endpoint, no secret shown.
    let (fine, said) = app.run_command(&["register-webhook", "--url", url]).await;
    assert!(
        fine && said.contains("already registered and up to date"),
        "{said}"
    );
    assert_eq!(secret_in(&said), None, "{said}");
    assert_eq!(endpoints().await.len(), 1);

    // Someone narrowed and disabled it in the Dashboard: the command puts it right.
    ok(
        &app,
        Method::POST,
        &format!("/webhook_endpoints/{id}"),
        &[("enabled_events[0]", "invoice.paid"), ("disabled", "true")],
    )
    .await;
    let (fine, said) = app.run_command(&["register-webhook", "--url", url]).await;
    assert!(
        fine && said.contains("updated: enabled events, enabled again"),
        "{said}"
    );
    let fixed = &endpoints().await[0];
    assert_eq!(fixed["id"], id.as_str());
    assert_eq!(fixed["status"], "enabled");
    assert_eq!(
        fixed["enabled_events"].as_array().unwrap().len(),
        HANDLED_EVENTS.len()
    );

    // Rotation: a second endpoint with a new secret while the first keeps delivering, then
    // only the new one.
    let (fine, said) = app
        .run_command(&["register-webhook", "--url", url, "--rotate"])
        .await;
    assert!(fine && said.contains("--finish-rotation"), "{said}");
    let rotated = secret_in(&said).expect("the new secret is printed");
    assert_ne!(rotated, secret);
    let both = endpoints().await;
    assert_eq!(both.len(), 2);
    assert_eq!(
        both[0]["id"],
        id.as_str(),
        "the old endpoint is still there"
    );
    let new_id = both[1]["id"].as_str().unwrap().to_owned();
    let (fine, said) = app
        .run_command(&["register-webhook", "--url", url, "--finish-rotation"])
        .await;
    assert!(fine && said.contains(&format!("deleted {id}")), "{said}");
    let left = endpoints().await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["id"], new_id.as_str());

    // Mistakes are refused before anything happens.
    for args in [
        vec!["register-webhook", "--url", "ftp://example.com/hook"],
        vec!["register-webhook", "--rotate", "--finish-rotation"],
        vec!["register-webhook", "--bogus"],
    ] {
        let (fine, said) = app.run_command(&args).await;
        assert!(!fine && said.contains("usage:"), "{args:?}: {said}");
    }
    assert_eq!(endpoints().await.len(), 1);
}

#[tokio::test]
async fn the_start_up_check_names_what_is_wrong_with_the_endpoint_and_the_command_fixes_it() {
    use saas_billing::webhooks::register::check;
    use stripe_misc::webhook_endpoint::{
        CreateWebhookEndpoint, CreateWebhookEndpointEnabledEvents, UpdateWebhookEndpoint,
    };
    // Test mode: a Stripe of its own on another port, as a deployment with an sk_test_ key.
    let t = spawn_test_mode_app("whsec_configured", |_| {}).await;
    let stripe =
        saas_billing::stripe::Stripe::new(&t.key, Some(&format!("{}/", t.stripe_base))).unwrap();
    let url = t.app.at("/api/webhooks/stripe");
    let problems = check(&stripe, &url).await.unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("no webhook endpoint") && problems[0].contains("register-webhook"),
        "{problems:?}"
    );

    // Made by hand in the Dashboard: every event, no pinned version; later disabled.
    let by_hand = stripe
        .post(
            &CreateWebhookEndpoint::new(
                vec![CreateWebhookEndpointEnabledEvents::All],
                url.as_str(),
            ),
            "by-hand",
        )
        .await
        .unwrap();
    stripe
        .post(
            &UpdateWebhookEndpoint::new(by_hand.id.clone()).disabled(true),
            "disable",
        )
        .await
        .unwrap();
    let problems = check(&stripe, &url).await.unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("is disabled")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("not pinned") && p.contains("--rotate")),
        "{problems:?}"
    );

    // The command, run as an operator would with the deployment's key, says what it can't do…
    let env = [
        ("STRIPE_SECRET_KEY", t.key.as_str()),
        ("STRIPE_API_BASE", t.stripe_base.as_str()),
    ];
    let (fine, said) = t.app.run_command_with(&["register-webhook"], &env).await;
    assert!(
        !fine && said.contains("register-webhook --rotate"),
        "{said}"
    );
    // …and the rotation does it.
    let (fine, said) = t
        .app
        .run_command_with(&["register-webhook", "--rotate"], &env)
        .await;
    assert!(fine && said.contains("whsec_"), "{said}");
    let (fine, said) = t
        .app
        .run_command_with(&["register-webhook", "--finish-rotation"], &env)
        .await;
    assert!(
        fine && said.contains(&format!("deleted {}", by_hand.id)),
        "{said}"
    );
    assert_eq!(check(&stripe, &url).await.unwrap(), Vec::<String>::new());
}
