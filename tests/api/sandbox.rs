//! The Stripe sandbox over real HTTP: async-stripe's typed client (the same construction the
//! app uses), raw requests for the dialect's details, and a webhook receiver on a free port.

use crate::helpers::*;
use axum::{http::HeaderMap, routing::post, Router};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Sha256;
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use stripe::{Client, ClientBuilder};
use stripe_core::customer::{
    CreateCustomer, DeleteCustomer, ListCustomer, RetrieveCustomer, RetrieveCustomerReturned,
    UpdateCustomer,
};
use stripe_core::event::ListEvent;
use stripe_product::price::{
    CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, ListPrice, RetrievePrice,
};
use stripe_product::product::{CreateProduct, ListProduct, RetrieveProduct, UpdateProduct};
use stripe_types::Expandable;

pub(crate) fn test_key() -> String {
    format!("sk_test_{}", uuid::Uuid::new_v4().simple())
}

/// The client exactly as the app builds it: only the base URL points at the sandbox.
pub(crate) fn stripe_client(base: &str, key: &str) -> Client {
    ClientBuilder::new(key)
        .url(format!("{base}/"))
        .build()
        .expect("client builds")
}

pub(crate) fn sandbox_base(app: &TestApp) -> String {
    format!("{}/sandbox", app.url)
}

pub(crate) async fn raw(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method, app.at(&format!("/sandbox/v1{path}")));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let res = req.form(form).send().await.expect("request goes through");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn typed_client_round_trips_products_and_prices() {
    let app = spawn_app().await;
    let client = stripe_client(&sandbox_base(&app), &test_key());

    let product = CreateProduct::new("Gold")
        .description("The gold plan")
        .metadata([("tier".to_string(), "3".to_string())])
        .send(&client)
        .await
        .expect("product decodes");
    assert!(product.id.as_str().starts_with("prod_"));
    assert_eq!(product.metadata["tier"], "3");

    let renamed = UpdateProduct::new(product.id.clone())
        .name("Platinum")
        .send(&client)
        .await
        .unwrap();
    assert_eq!(renamed.name, "Platinum");
    assert_eq!(
        RetrieveProduct::new(product.id.clone())
            .send(&client)
            .await
            .unwrap()
            .name,
        "Platinum"
    );

    let price = CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(2900)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .lookup_key("gold_monthly")
        .send(&client)
        .await
        .expect("price decodes");
    assert_eq!(price.unit_amount, Some(2900));
    assert_eq!(price.recurring.as_ref().map(|r| r.interval_count), Some(1));

    let found = ListPrice::new()
        .lookup_keys(vec!["gold_monthly".to_string()])
        .send(&client)
        .await
        .unwrap();
    assert_eq!(found.data.len(), 1);
    assert_eq!(found.data[0].id, price.id);

    let expanded = RetrievePrice::new(price.id.clone())
        .expand(["product".to_string()])
        .send(&client)
        .await
        .unwrap();
    match expanded.product {
        Expandable::Object(p) => assert_eq!(p.name, "Platinum"),
        Expandable::Id(_) => panic!("expand[]=product should return the product"),
    }

    // A lookup key names one price; reusing it without transfer is a 400.
    let dup = CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(100)
        .lookup_key("gold_monthly")
        .send(&client)
        .await;
    assert!(dup.is_err(), "duplicate lookup key must be refused");
}

#[tokio::test]
async fn lists_paginate_through_the_typed_client() {
    let app = spawn_app().await;
    let client = stripe_client(&sandbox_base(&app), &test_key());
    for i in 0..12 {
        CreateProduct::new(format!("P{i}"))
            .send(&client)
            .await
            .unwrap();
    }
    let first = ListProduct::new().limit(5).send(&client).await.unwrap();
    assert_eq!(first.data.len(), 5);
    assert!(first.has_more);
    assert_eq!(first.data[0].name, "P11", "newest first");

    use futures::TryStreamExt;
    let all: Vec<_> = ListProduct::new()
        .limit(5)
        .paginate()
        .stream(&client)
        .try_collect()
        .await
        .unwrap();
    let mut names: Vec<_> = all.iter().map(|p| p.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 12, "every product exactly once across pages");
}

#[tokio::test]
async fn typed_client_manages_customers() {
    let app = spawn_app().await;
    let client = stripe_client(&sandbox_base(&app), &test_key());
    let customer = CreateCustomer::new()
        .email("ann@example.com")
        .name("Ann")
        .metadata([("user_id".to_string(), "u1".to_string())])
        .send(&client)
        .await
        .expect("customer decodes");
    assert!(customer.id.as_str().starts_with("cus_"));
    assert_eq!(customer.email.as_deref(), Some("ann@example.com"));

    let updated = UpdateCustomer::new(customer.id.clone())
        .name("Ann B")
        .send(&client)
        .await
        .unwrap();
    assert_eq!(updated.name.as_deref(), Some("Ann B"));
    let listed = ListCustomer::new()
        .email("ann@example.com")
        .send(&client)
        .await
        .unwrap();
    assert_eq!(listed.data.len(), 1);

    let deleted = DeleteCustomer::new(customer.id.clone())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(deleted.id, customer.id);
    // Stripe keeps a deleted customer retrievable as a stub, and out of lists and updates.
    let gone = RetrieveCustomer::new(customer.id.clone())
        .send(&client)
        .await
        .unwrap();
    assert!(
        matches!(gone, RetrieveCustomerReturned::DeletedCustomer(ref d) if d.id == customer.id)
    );
    assert!(ListCustomer::new()
        .send(&client)
        .await
        .unwrap()
        .data
        .is_empty());
    assert!(UpdateCustomer::new(customer.id.clone())
        .name("x")
        .send(&client)
        .await
        .is_err());
}

#[tokio::test]
async fn events_record_every_change_and_decode() {
    let app = spawn_app().await;
    let key = test_key();
    let client = stripe_client(&sandbox_base(&app), &key);
    let product = CreateProduct::new("Evented").send(&client).await.unwrap();
    UpdateProduct::new(product.id.clone())
        .name("Evented 2")
        .send(&client)
        .await
        .unwrap();
    CreateCustomer::new()
        .email("e@example.com")
        .send(&client)
        .await
        .unwrap();

    let events = ListEvent::new().send(&client).await.expect("events decode");
    let types: Vec<String> = events.data.iter().map(|e| e.type_.to_string()).collect();
    assert_eq!(
        types,
        vec!["customer.created", "product.updated", "product.created"],
        "newest first"
    );

    let products_only = ListEvent::new()
        .type_("product.*")
        .send(&client)
        .await
        .unwrap();
    assert_eq!(products_only.data.len(), 2);

    let (_, body) = raw(
        &app,
        reqwest::Method::GET,
        "/events?type=product.updated",
        Some(&key),
        &[],
    )
    .await;
    let update = &body["data"][0];
    assert_eq!(update["data"]["previous_attributes"]["name"], "Evented");
    assert_eq!(update["data"]["object"]["name"], "Evented 2");
    assert_eq!(update["api_version"], stripe_sandbox::API_VERSION);
}

#[tokio::test]
async fn errors_speak_stripes_dialect() {
    let app = spawn_app().await;
    let key = test_key();
    let (status, body) = raw(&app, reqwest::Method::GET, "/customers", None, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let (status, _) = raw(
        &app,
        reqwest::Method::GET,
        "/customers",
        Some("sk_live_nope"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, body) = raw(
        &app,
        reqwest::Method::POST,
        "/prices",
        Some(&key),
        &[("currency", "usd"), ("unit_amount", "abc")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["param"], "unit_amount");

    let (status, body) = raw(&app, reqwest::Method::POST, "/products", Some(&key), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["code"], "parameter_missing");
    assert_eq!(body["error"]["param"], "name");

    let (status, body) = raw(
        &app,
        reqwest::Method::GET,
        "/products/prod_nope",
        Some(&key),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "resource_missing");

    let (status, body) = raw(
        &app,
        reqwest::Method::GET,
        "/no_such_resource",
        Some(&key),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Unrecognized request URL"));

    let (status, _) = raw(
        &app,
        reqwest::Method::GET,
        "/products?limit=500",
        Some(&key),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bracket_params_reach_nested_fields() {
    let app = spawn_app().await;
    let key = test_key();
    let (status, body) = raw(
        &app,
        reqwest::Method::POST,
        "/customers",
        Some(&key),
        &[
            ("email", "n@example.com"),
            ("address[country]", "DE"),
            ("address[postal_code]", "10115"),
            ("metadata[plan]", "pro"),
            ("preferred_locales[]", "de"),
            ("preferred_locales[]", "en"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["address"]["country"], "DE");
    assert_eq!(body["address"]["line1"], Value::Null);
    assert_eq!(body["metadata"]["plan"], "pro");
    assert_eq!(body["preferred_locales"], serde_json::json!(["de", "en"]));

    // A price can bring its product inline.
    let (status, price) = raw(
        &app,
        reqwest::Method::POST,
        "/prices",
        Some(&key),
        &[
            ("currency", "eur"),
            ("unit_amount", "500"),
            ("product_data[name]", "Inline"),
            ("recurring[interval]", "year"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{price}");
    assert_eq!(price["recurring"]["interval"], "year");
    let product_path = format!("/products/{}", price["product"].as_str().unwrap());
    let (_, product) = raw(&app, reqwest::Method::GET, &product_path, Some(&key), &[]).await;
    assert_eq!(product["name"], "Inline");
    let (status, body) = raw(
        &app,
        reqwest::Method::POST,
        "/prices",
        Some(&key),
        &[
            ("currency", "eur"),
            ("unit_amount", "1"),
            ("product_data[active]", "true"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["param"], "product_data[name]");
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_response() {
    let app = spawn_app().await;
    let key = test_key();
    let post = |email: &'static str| {
        app.client
            .post(app.at("/sandbox/v1/customers"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "customer-for-user-42")
            .form(&[("email", email)])
            .send()
    };
    let first: Value = post("a@example.com").await.unwrap().json().await.unwrap();
    let again = post("a@example.com").await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);

    let (_, list) = raw(&app, reqwest::Method::GET, "/customers", Some(&key), &[]).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "the replay created nothing"
    );

    let clash = post("b@example.com").await.unwrap();
    assert_eq!(clash.status(), StatusCode::BAD_REQUEST);
    let body: Value = clash.json().await.unwrap();
    assert_eq!(body["error"]["type"], "idempotency_error");

    // After 24 hours the key is forgotten and may carry a new request.
    sqlx::query(
        "update stripe_sandbox.idempotency_keys set created_at = now() - interval '25 hours'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let fresh = post("b@example.com").await.unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);
    assert!(fresh.headers().get("idempotent-replayed").is_none());
    let fresh: Value = fresh.json().await.unwrap();
    assert_ne!(fresh["id"], first["id"]);
}

#[tokio::test]
async fn each_secret_key_is_its_own_account() {
    let app = spawn_app().await;
    let (a, b) = (test_key(), test_key());
    let product = CreateProduct::new("Mine")
        .send(&stripe_client(&sandbox_base(&app), &a))
        .await
        .unwrap();
    let other = stripe_client(&sandbox_base(&app), &b);
    assert!(ListProduct::new()
        .send(&other)
        .await
        .unwrap()
        .data
        .is_empty());
    assert!(RetrieveProduct::new(product.id).send(&other).await.is_err());
}

// ---- webhooks ----------------------------------------------------------------------------

pub(crate) type Hits = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A webhook receiver that answers 500 to its first `fail_first` requests, then 200.
pub(crate) async fn spawn_receiver(fail_first: usize) -> (String, Hits) {
    let hits: Hits = Arc::default();
    let recorded = hits.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: String| {
            let recorded = recorded.clone();
            async move {
                let mut all = recorded.lock().unwrap();
                all.push((headers, body));
                if all.len() <= fail_first {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

pub(crate) async fn wait_for_hits(hits: &Hits, n: usize) -> Vec<(HeaderMap, String)> {
    for _ in 0..150 {
        if hits.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hits.lock().unwrap().clone()
}

pub(crate) async fn register_endpoint(app: &TestApp, key: &str, url: &str) -> String {
    let (status, body) = raw(
        app,
        reqwest::Method::POST,
        "/webhook_endpoints",
        Some(key),
        &[("url", url), ("enabled_events[]", "*")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret = body["secret"]
        .as_str()
        .expect("create returns the secret")
        .to_owned();
    assert!(secret.starts_with("whsec_"));
    secret
}

/// Stripe's documented scheme, written out here independently of the sandbox's signer.
fn verify_stripe_signature(header: &str, body: &str, secret: &str) -> bool {
    let mut t = None;
    let mut v1s = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_owned()),
            Some(("v1", v)) => v1s.push(v.to_owned()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    v1s.iter().any(|v| v == &expected)
}

#[tokio::test]
async fn webhooks_are_delivered_signed_and_decode_as_typed_events() {
    let app = spawn_app().await;
    let key = test_key();
    let (url, hits) = spawn_receiver(0).await;
    let secret = register_endpoint(&app, &key, &url).await;
    let client = stripe_client(&sandbox_base(&app), &key);
    CreateProduct::new("Hooked").send(&client).await.unwrap();
    CreateCustomer::new()
        .email("h@example.com")
        .send(&client)
        .await
        .unwrap();

    let got = wait_for_hits(&hits, 2).await;
    assert_eq!(got.len(), 2, "one delivery per event");
    for (headers, body) in &got {
        let sig = headers["stripe-signature"].to_str().unwrap();
        assert!(
            verify_stripe_signature(sig, body, &secret),
            "signature verifies: {sig}"
        );
        assert!(
            !verify_stripe_signature(sig, &format!("{body} "), &secret),
            "a changed body fails"
        );
        assert!(
            !verify_stripe_signature(sig, body, "whsec_wrong"),
            "a wrong secret fails"
        );
        // async-stripe's own verifier and typed event decoding accept it too.
        let event =
            stripe_webhook::Webhook::construct_event(body, sig, &secret).expect("typed event");
        assert!(event.id.as_str().starts_with("evt_"));
    }
    let first = stripe_webhook::Webhook::construct_event(
        &got[0].1,
        got[0].0["stripe-signature"].to_str().unwrap(),
        &secret,
    )
    .unwrap();
    assert!(
        matches!(first.data.object, stripe_webhook::EventObject::ProductCreated(ref p) if p.name == "Hooked")
    );
    // The endpoint's secret is never shown again.
    let (_, endpoints) = raw(
        &app,
        reqwest::Method::GET,
        "/webhook_endpoints",
        Some(&key),
        &[],
    )
    .await;
    assert!(endpoints["data"][0].get("secret").is_none());
}

#[tokio::test]
async fn failed_deliveries_are_retried_and_recorded() {
    let app =
        spawn_app_with(|c| c.sandbox.retry_schedule = vec![Duration::from_millis(200); 3]).await;
    let key = test_key();
    let (url, hits) = spawn_receiver(2).await;
    register_endpoint(&app, &key, &url).await;
    let product = CreateProduct::new("Retry")
        .send(&stripe_client(&sandbox_base(&app), &key))
        .await
        .unwrap();

    let got = wait_for_hits(&hits, 3).await;
    assert_eq!(got.len(), 3, "two failures, then success");
    let ids: Vec<String> = got
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        ids.iter().all(|i| i == &ids[0]),
        "every attempt carries the same event"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    // Only this receiver's attempts: the app's own endpoint gets every event too.
    let statuses: Vec<Option<i32>> = sqlx::query_scalar(
        "select a.response_status from stripe_sandbox.delivery_attempts a
         join stripe_sandbox.deliveries d on d.id = a.delivery_id
         join stripe_sandbox.objects e on e.account = d.account and e.id = d.endpoint_id
         where e.data ->> 'url' = $1 order by a.id",
    )
    .bind(&url)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(statuses, vec![Some(500), Some(500), Some(200)]);
    let (_, delivered) = raw(
        &app,
        reqwest::Method::GET,
        "/events?delivery_success=true",
        Some(&key),
        &[],
    )
    .await;
    assert_eq!(
        delivered["data"][0]["data"]["object"]["id"],
        product.id.as_str()
    );
    assert_eq!(delivered["data"][0]["pending_webhooks"], 0);
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_leaves_the_event_undelivered() {
    let app = spawn_app_with(|c| c.sandbox.retry_schedule = vec![Duration::from_millis(100)]).await;
    let key = test_key();
    let (url, hits) = spawn_receiver(usize::MAX).await;
    register_endpoint(&app, &key, &url).await;
    CreateCustomer::new()
        .send(&stripe_client(&sandbox_base(&app), &key))
        .await
        .unwrap();
    wait_for_hits(&hits, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        hits.lock().unwrap().len(),
        2,
        "one try plus one retry, then it gives up"
    );
    let (_, missed) = raw(
        &app,
        reqwest::Method::GET,
        "/events?delivery_success=false",
        Some(&key),
        &[],
    )
    .await;
    assert_eq!(
        missed["data"].as_array().unwrap().len(),
        1,
        "replay can find what was missed"
    );
    assert_eq!(missed["data"][0]["type"], "customer.created");
}

#[tokio::test]
async fn chaos_can_duplicate_deliveries() {
    let app = spawn_app_with(|c| c.sandbox.chaos_duplicate = 1.0).await;
    let key = test_key();
    let (url, hits) = spawn_receiver(0).await;
    register_endpoint(&app, &key, &url).await;
    CreateProduct::new("Twice")
        .send(&stripe_client(&sandbox_base(&app), &key))
        .await
        .unwrap();
    let got = wait_for_hits(&hits, 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, got[1].1, "the same event, delivered twice");
}

#[tokio::test]
async fn fault_injection_fails_requests_like_a_bad_day_at_stripe() {
    let base = spawn_sandbox(|c| c.sandbox.fault_rate = 1.0).await;
    let client = reqwest::Client::new();
    let key = test_key();
    let mut outcomes = Vec::new();
    for _ in 0..9 {
        let res = client
            .get(format!("{base}/v1/customers"))
            .bearer_auth(&key)
            .send()
            .await;
        // A dropped connection shows up as an error, or as a body that cannot be read.
        let outcome = match res {
            Ok(r) => {
                let status = r.status().as_u16();
                if r.bytes().await.is_ok() {
                    status
                } else {
                    0
                }
            }
            Err(_) => 0,
        };
        outcomes.push(outcome);
    }
    assert!(
        outcomes.iter().all(|s| matches!(s, 0 | 429 | 500)),
        "every request failed somehow: {outcomes:?}"
    );
}

/// The sandbox on its own (`saas-billing sandbox`), on a free port; returns its base URL.
async fn spawn_sandbox(tweak: impl FnOnce(&mut saas_billing::config::Config)) -> String {
    spawn_sandbox_on(&fresh_database_url().await, tweak).await
}

/// A standalone sandbox on an existing database: a second one is the first restarted.
async fn spawn_sandbox_on(
    db_url: &str,
    tweak: impl FnOnce(&mut saas_billing::config::Config),
) -> String {
    let db_url = db_url.to_owned();
    let mut config = saas_billing::config::Config::from_lookup(|n| match n {
        "DATABASE_URL" => Some(db_url.clone()),
        "PORT" => Some("0".into()),
        _ => None,
    })
    .unwrap();
    tweak(&mut config);
    let sandbox = saas_billing::startup::Application::build_sandbox(config)
        .await
        .unwrap();
    let base = sandbox.url().to_owned();
    tokio::spawn(sandbox.run_until_stopped());
    base
}

#[tokio::test]
async fn the_standalone_sandbox_serves_any_sdk_at_v1() {
    let base = spawn_sandbox(|_| {}).await;
    let client = stripe_client(&base, &test_key());
    let customer = CreateCustomer::new()
        .email("sdk@example.com")
        .send(&client)
        .await
        .unwrap();
    match RetrieveCustomer::new(customer.id)
        .send(&client)
        .await
        .unwrap()
    {
        RetrieveCustomerReturned::Customer(c) => {
            assert_eq!(c.email.as_deref(), Some("sdk@example.com"))
        }
        RetrieveCustomerReturned::DeletedCustomer(_) => panic!("the customer was not deleted"),
    }
}

#[tokio::test]
async fn the_dashboard_lists_events_with_deliveries_and_resends() {
    let app = spawn_app().await;
    app.webhooks_settled().await;
    let page = assert_status(app.get("/sandbox").await, StatusCode::OK).await;
    // The app's own seed catalog, delivered to its own endpoint.
    assert!(
        page.contains("product.created") && page.contains("/api/webhooks/stripe"),
        "{page}"
    );
    assert!(page.contains("succeeded"));

    let event_id: String = sqlx::query_scalar(
        "select id from stripe_sandbox.events where type = 'product.created' order by seq limit 1",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    let attempts = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from stripe_sandbox.delivery_attempts a join stripe_sandbox.deliveries d on d.id = a.delivery_id where d.event_id = $1",
        )
        .bind(&event_id)
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    let before = attempts().await;
    let account: String =
        sqlx::query_scalar("select account from stripe_sandbox.events where id = $1")
            .bind(&event_id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    let res = app
        .client
        .post(app.at(&format!(
            "/sandbox/events/{event_id}/resend?account={account}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = app
        .client
        .get(app.at(location(&res)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(back.contains("Resending"), "{back}");
    for _ in 0..100 {
        if attempts().await > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(attempts().await > before, "the event was delivered again");
    // The app took the resent copy as the duplicate it is.
    let processed: i64 = sqlx::query_scalar("select count(*) from stripe_events where id = $1")
        .bind(&event_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(processed, 1);
}

#[tokio::test]
async fn test_cards_attach_behave_and_become_the_default() {
    use stripe_core::customer::UpdateCustomerInvoiceSettings;
    use stripe_payment::payment_method::{AttachPaymentMethod, ListPaymentMethod};
    let app = spawn_app().await;
    let key = test_key();
    let client = stripe_client(&sandbox_base(&app), &key);
    let customer = CreateCustomer::new()
        .email("card@example.com")
        .send(&client)
        .await
        .unwrap();

    // A test id makes a fresh payment method from its card, attached to the customer.
    let visa = AttachPaymentMethod::new("pm_card_visa")
        .customer(customer.id.as_str())
        .send(&client)
        .await
        .expect("payment method decodes");
    assert!(visa.id.as_str().starts_with("pm_") && visa.id.as_str() != "pm_card_visa");
    let card = visa.card.as_ref().expect("a card");
    assert_eq!((card.brand.as_str(), card.last4.as_str()), ("visa", "4242"));
    assert_eq!(
        visa.customer.as_ref().map(|c| c.id().as_str().to_owned()),
        Some(customer.id.as_str().to_owned())
    );

    let updated = UpdateCustomer::new(customer.id.clone())
        .invoice_settings(UpdateCustomerInvoiceSettings {
            default_payment_method: Some(visa.id.as_str().to_owned()),
            ..UpdateCustomerInvoiceSettings::new()
        })
        .send(&client)
        .await
        .unwrap();
    let default = updated
        .invoice_settings
        .and_then(|s| s.default_payment_method)
        .map(|pm| pm.id().as_str().to_owned());
    assert_eq!(default.as_deref(), Some(visa.id.as_str()));

    // Declining cards are refused when saved, with Stripe's card error.
    let (status, body) = raw(
        &app,
        reqwest::Method::POST,
        "/payment_methods/pm_card_chargeDeclined/attach",
        Some(&key),
        &[("customer", customer.id.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["error"]["type"], "card_error");
    assert_eq!(body["error"]["decline_code"], "generic_decline");
    let (_, body) = raw(
        &app,
        reqwest::Method::POST,
        "/payment_methods/pm_card_chargeDeclinedInsufficientFunds/attach",
        Some(&key),
        &[("customer", customer.id.as_str())],
    )
    .await;
    assert_eq!(body["error"]["decline_code"], "insufficient_funds");

    // A raw test number: 0341 saves fine (its charges fail later).
    let (status, pm) = raw(
        &app,
        reqwest::Method::POST,
        "/payment_methods",
        Some(&key),
        &[
            ("type", "card"),
            ("card[number]", "4000 0000 0000 0341"),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2040"),
            ("card[cvc]", "123"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{pm}");
    assert!(
        pm.get("sandbox_card").is_none(),
        "no sandbox-only fields leak: {pm}"
    );
    let path = format!("/payment_methods/{}/attach", pm["id"].as_str().unwrap());
    let (status, _) = raw(
        &app,
        reqwest::Method::POST,
        &path,
        Some(&key),
        &[("customer", customer.id.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let listed = ListPaymentMethod::new()
        .customer(customer.id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(listed.data.len(), 2);

    // Bad numbers and dates are card errors.
    let (status, body) = raw(
        &app,
        reqwest::Method::POST,
        "/payment_methods",
        Some(&key),
        &[
            ("type", "card"),
            ("card[number]", "4242424242424241"),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2040"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("incorrect_number"))
    );
    let (status, body) = raw(
        &app,
        reqwest::Method::POST,
        "/payment_methods",
        Some(&key),
        &[
            ("type", "card"),
            ("card[number]", "4242424242424242"),
            ("card[exp_month]", "13"),
            ("card[exp_year]", "2040"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_expiry_month"))
    );

    // Another customer's card cannot be this customer's default.
    let other = CreateCustomer::new().send(&client).await.unwrap();
    let (status, _) = raw(
        &app,
        reqwest::Method::POST,
        &format!("/customers/{}", other.id.as_str()),
        Some(&key),
        &[("invoice_settings[default_payment_method]", visa.id.as_str())],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Detaching the default clears it.
    let (status, _) = raw(
        &app,
        reqwest::Method::POST,
        &format!("/payment_methods/{}/detach", visa.id.as_str()),
        Some(&key),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, c) = raw(
        &app,
        reqwest::Method::GET,
        &format!("/customers/{}", customer.id.as_str()),
        Some(&key),
        &[],
    )
    .await;
    assert_eq!(c["invoice_settings"]["default_payment_method"], Value::Null);
    let (_, events) = raw(
        &app,
        reqwest::Method::GET,
        "/events?type=payment_method.*",
        Some(&key),
        &[],
    )
    .await;
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "payment_method.detached",
            "payment_method.attached",
            "payment_method.attached"
        ]
    );
}

#[tokio::test]
async fn coupons_and_promotion_codes_round_trip_in_current_api_shapes() {
    use stripe_product::coupon::CreateCoupon;
    use stripe_product::promotion_code::{
        CreatePromotionCode, CreatePromotionCodePromotion, CreatePromotionCodePromotionType,
        ListPromotionCode,
    };
    let app = spawn_app().await;
    let key = test_key();
    let client = stripe_client(&sandbox_base(&app), &key);
    let coupon = CreateCoupon::new()
        .id("LAUNCH")
        .percent_off(20.0)
        .duration(stripe_product::CouponDuration::Repeating)
        .duration_in_months(3)
        .send(&client)
        .await
        .expect("coupon decodes");
    assert_eq!(
        (coupon.percent_off, coupon.duration_in_months, coupon.valid),
        (Some(20.0), Some(3), true)
    );

    let promotion = CreatePromotionCodePromotion {
        coupon: Some(coupon.id.as_str().to_owned()),
        type_: CreatePromotionCodePromotionType::Coupon,
    };
    let promo = CreatePromotionCode::new(promotion.clone())
        .code("LAUNCH20")
        .send(&client)
        .await
        .expect("promotion code decodes");
    assert_eq!(promo.code, "LAUNCH20");
    assert!(promo.active);
    let found = ListPromotionCode::new()
        .code("LAUNCH20")
        .send(&client)
        .await
        .unwrap();
    assert_eq!(found.data.len(), 1);

    // Active codes are unique, whatever the case.
    assert!(CreatePromotionCode::new(promotion)
        .code("launch20")
        .send(&client)
        .await
        .is_err());

    for (form, param) in [
        (
            vec![
                ("percent_off", "20"),
                ("amount_off", "500"),
                ("currency", "usd"),
            ],
            "percent_off",
        ),
        (vec![("duration", "once")], "percent_off"),
        (vec![("amount_off", "500")], "currency"),
        (vec![("percent_off", "120")], "percent_off"),
        (
            vec![("percent_off", "10"), ("duration", "repeating")],
            "duration_in_months",
        ),
    ] {
        let (status, body) = raw(&app, reqwest::Method::POST, "/coupons", Some(&key), &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(body["error"]["param"], param, "{form:?}: {body}");
    }
    let (status, body) = raw(
        &app,
        reqwest::Method::POST,
        "/promotion_codes",
        Some(&key),
        &[("promotion[type]", "coupon"), ("promotion[coupon]", "NOPE")],
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("resource_missing"))
    );
}

#[tokio::test]
async fn test_clocks_advance_asynchronously_and_take_their_customers_with_them() {
    use stripe_billing::test_helpers_test_clock::{
        AdvanceTestHelpersTestClock, CreateTestHelpersTestClock, RetrieveTestHelpersTestClock,
    };
    let app = spawn_app().await;
    let key = test_key();
    let client = stripe_client(&sandbox_base(&app), &key);
    let start = 1_800_000_000;
    let clock = CreateTestHelpersTestClock::new(start)
        .name("trial run")
        .send(&client)
        .await
        .expect("clock decodes");
    assert_eq!(clock.frozen_time, start);
    let customer = CreateCustomer::new()
        .email("clock@example.com")
        .test_clock(clock.id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(
        customer
            .test_clock
            .as_ref()
            .map(|c| c.id().as_str().to_owned()),
        Some(clock.id.as_str().to_owned())
    );

    let target = start + 15 * 86_400;
    let advancing = AdvanceTestHelpersTestClock::new(clock.id.clone(), target)
        .send(&client)
        .await
        .unwrap();
    assert_eq!(advancing.status.as_str(), "advancing");
    let mut ready = None;
    for _ in 0..50 {
        let c = RetrieveTestHelpersTestClock::new(clock.id.clone())
            .send(&client)
            .await
            .unwrap();
        if c.status.as_str() == "ready" {
            ready = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready.expect("the clock became ready").frozen_time, target);

    // Time only moves forward.
    let (status, _) = raw(
        &app,
        reqwest::Method::POST,
        &format!("/test_helpers/test_clocks/{}/advance", clock.id.as_str()),
        Some(&key),
        &[("frozen_time", "1800000000")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = raw(
        &app,
        reqwest::Method::POST,
        "/customers",
        Some(&key),
        &[("test_clock", "clock_nope")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, events) = raw(
        &app,
        reqwest::Method::GET,
        "/events?type=test_helpers.test_clock.*",
        Some(&key),
        &[],
    )
    .await;
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "test_helpers.test_clock.ready",
            "test_helpers.test_clock.advancing",
            "test_helpers.test_clock.created"
        ]
    );

    // Deleting the clock deletes the customers living on it.
    let (status, _) = raw(
        &app,
        reqwest::Method::DELETE,
        &format!("/test_helpers/test_clocks/{}", clock.id.as_str()),
        Some(&key),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let gone = RetrieveCustomer::new(customer.id.clone())
        .send(&client)
        .await
        .unwrap();
    assert!(matches!(gone, RetrieveCustomerReturned::DeletedCustomer(_)));
}

#[tokio::test]
async fn reordered_deliveries_still_leave_the_app_with_stripes_truth() {
    let app = spawn_app_with(|c| c.sandbox.chaos_reorder = Duration::from_millis(400)).await;
    let key = test_key();
    let (url, hits) = spawn_receiver(0).await;
    register_endpoint(&app, &key, &url).await;
    let client = stripe_client(&sandbox_base(&app), &key);
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
async fn subscriptions_trial_charge_change_and_cancel_with_stripes_events() {
    use stripe_billing::subscription::{
        CancelSubscription, CreateSubscription, CreateSubscriptionItems,
        CreateSubscriptionPaymentBehavior, ListSubscription, UpdateSubscription,
    };
    use stripe_payment::payment_method::AttachPaymentMethod;
    let app = spawn_app().await;
    let key = test_key();
    let client = stripe_client(&sandbox_base(&app), &key);
    let product = CreateProduct::new("Plan").send(&client).await.unwrap();
    let monthly = |amount: i64| {
        CreatePrice::new(stripe_types::Currency::USD)
            .product(product.id.as_str())
            .unit_amount(amount)
            .recurring(CreatePriceRecurring::new(
                CreatePriceRecurringInterval::Month,
            ))
    };
    let pro = monthly(2900).send(&client).await.unwrap();
    let team = monthly(9900).send(&client).await.unwrap();
    let customer = CreateCustomer::new()
        .email("sub@example.com")
        .send(&client)
        .await
        .unwrap();
    let item = |price: &str| CreateSubscriptionItems {
        price: Some(price.to_owned()),
        ..CreateSubscriptionItems::new()
    };

    // A trial needs no card; the period is the trial and lives on the item.
    let trial = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![item(pro.id.as_str())])
        .trial_period_days(14u32)
        .metadata([("user_id".to_owned(), "u1".to_owned())])
        .send(&client)
        .await
        .expect("subscription decodes");
    assert_eq!(trial.status.as_str(), "trialing");
    let period = &trial.items.data[0];
    assert_eq!(trial.trial_end, Some(period.current_period_end));
    assert_eq!(
        period.current_period_end - period.current_period_start,
        14 * 86_400
    );

    // Without a trial the default card is charged: no card is a 400, a failing card is incomplete.
    let no_card = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![item(pro.id.as_str())])
        .send(&client)
        .await;
    assert!(no_card.is_err());
    let failing = AttachPaymentMethod::new("pm_card_chargeCustomerFail")
        .customer(customer.id.as_str())
        .send(&client)
        .await
        .unwrap();
    let incomplete = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![item(pro.id.as_str())])
        .default_payment_method(failing.id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(incomplete.status.as_str(), "incomplete");
    let refused = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![item(pro.id.as_str())])
        .default_payment_method(failing.id.as_str())
        .payment_behavior(CreateSubscriptionPaymentBehavior::ErrorIfIncomplete)
        .send(&client)
        .await;
    assert!(refused.is_err());
    let visa = AttachPaymentMethod::new("pm_card_visa")
        .customer(customer.id.as_str())
        .send(&client)
        .await
        .unwrap();
    let active = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![item(pro.id.as_str())])
        .default_payment_method(visa.id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(active.status.as_str(), "active");
    let month = active.items.data[0].current_period_end - active.items.data[0].current_period_start;
    assert!(
        (28 * 86_400..=31 * 86_400).contains(&month),
        "a calendar month: {month}"
    );

    // Plan change, cancel at period end and back, then cancel now.
    let (status, changed) = raw(
        &app,
        reqwest::Method::POST,
        &format!("/subscriptions/{}", active.id.as_str()),
        Some(&key),
        &[
            ("items[0][id]", active.items.data[0].id.as_str()),
            ("items[0][price]", team.id.as_str()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["items"]["data"][0]["price"]["unit_amount"], 9900);
    assert_eq!(changed["items"]["data"][0]["plan"]["amount"], 9900);
    let ending = UpdateSubscription::new(active.id.clone())
        .cancel_at_period_end(true)
        .send(&client)
        .await
        .unwrap();
    assert!(ending.cancel_at_period_end);
    assert_eq!(
        ending.cancel_at,
        Some(ending.items.data[0].current_period_end)
    );
    let resumed = UpdateSubscription::new(active.id.clone())
        .cancel_at_period_end(false)
        .send(&client)
        .await
        .unwrap();
    assert!(!resumed.cancel_at_period_end && resumed.cancel_at.is_none());
    let canceled = CancelSubscription::new(active.id.clone())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(canceled.status.as_str(), "canceled");
    assert!(canceled.ended_at.is_some());

    // Lists leave out canceled ones unless asked.
    let open = ListSubscription::new()
        .customer(customer.id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(open.data.len(), 2, "the trial and the incomplete one");

    let (_, events) = raw(
        &app,
        reqwest::Method::GET,
        "/events?type=customer.subscription.*&limit=100",
        Some(&key),
        &[],
    )
    .await;
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "customer.subscription.created")
            .count(),
        3
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "customer.subscription.updated")
            .count(),
        3
    );
    assert_eq!(kinds[0], "customer.subscription.deleted");
    let resume = &events["data"][1];
    assert_eq!(
        resume["data"]["previous_attributes"]["cancel_at_period_end"],
        true
    );
}

#[tokio::test]
async fn subscriptions_of_a_clock_customer_start_in_the_clocks_time() {
    use stripe_billing::subscription::{CreateSubscription, CreateSubscriptionItems};
    use stripe_billing::test_helpers_test_clock::CreateTestHelpersTestClock;
    let app = spawn_app().await;
    let client = stripe_client(&sandbox_base(&app), &test_key());
    let frozen = 1_900_000_000;
    let clock = CreateTestHelpersTestClock::new(frozen)
        .send(&client)
        .await
        .unwrap();
    let customer = CreateCustomer::new()
        .test_clock(clock.id.as_str())
        .send(&client)
        .await
        .unwrap();
    let product = CreateProduct::new("Clocked").send(&client).await.unwrap();
    let price = CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(500)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .send(&client)
        .await
        .unwrap();
    let sub = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![CreateSubscriptionItems {
            price: Some(price.id.as_str().to_owned()),
            ..CreateSubscriptionItems::new()
        }])
        .trial_period_days(7u32)
        .send(&client)
        .await
        .unwrap();
    assert_eq!(sub.start_date, frozen);
    assert_eq!(sub.trial_end, Some(frozen + 7 * 86_400));
    assert_eq!(
        sub.test_clock.map(|c| c.id().as_str().to_owned()),
        Some(clock.id.as_str().to_owned())
    );
}

#[tokio::test]
async fn hosted_checkout_starts_a_trial_with_a_test_card_and_shows_declines() {
    use stripe_checkout::checkout_session::{
        CreateCheckoutSession, CreateCheckoutSessionLineItems,
        CreateCheckoutSessionSubscriptionData, RetrieveCheckoutSession,
    };
    let app = spawn_app().await;
    let key = test_key();
    let client = stripe_client(&sandbox_base(&app), &key);
    let product = CreateProduct::new("Pro").send(&client).await.unwrap();
    let price = CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(2900)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .send(&client)
        .await
        .unwrap();
    let session = CreateCheckoutSession::new()
        .mode(stripe_shared::CheckoutSessionMode::Subscription)
        .line_items(vec![CreateCheckoutSessionLineItems {
            price: Some(price.id.as_str().to_owned()),
            quantity: Some(1),
            ..CreateCheckoutSessionLineItems::new()
        }])
        .success_url("http://shop.example/done?session={CHECKOUT_SESSION_ID}")
        .cancel_url("http://shop.example/pricing")
        .subscription_data(CreateCheckoutSessionSubscriptionData {
            trial_period_days: Some(14),
            metadata: Some([("user_id".to_owned(), "u42".to_owned())].into()),
            ..CreateCheckoutSessionSubscriptionData::new()
        })
        .send(&client)
        .await
        .expect("checkout session decodes");
    let url = session.url.clone().expect("a hosted page");
    assert!(
        url.starts_with(&format!("{}/sandbox/checkout/cs_test_", app.url)),
        "{url}"
    );

    let page = app.page(&url).await;
    assert!(
        page.contains("14 days free") && page.contains("$29.00") && page.contains("Start trial"),
        "{page}"
    );

    let pay = |number: &'static str| {
        app.client
            .post(&url)
            .form(&[
                ("email", "buyer@example.com"),
                ("card_number", number),
                ("card_expiry", "12 / 40"),
                ("card_cvc", "123"),
                ("name", "Ann Buyer"),
                ("country", "US"),
                ("postal_code", "94107"),
            ])
            .send()
    };
    let declined = pay("4000 0000 0000 0002").await.unwrap();
    assert_eq!(declined.status(), StatusCode::OK);
    assert!(declined
        .text()
        .await
        .unwrap()
        .contains("Your card was declined."));
    let poor = pay("4000 0000 0000 9995")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(poor.contains("insufficient funds"));
    let typo = pay("4242 4242 4242 4241")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(typo.contains("card number is incorrect"));

    let paid = pay("4242 4242 4242 4242").await.unwrap();
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&paid),
        format!("http://shop.example/done?session={}", session.id.as_str())
    );

    let done = RetrieveCheckoutSession::new(session.id.clone())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(
        done.status.map(|s| s.as_str().to_owned()).as_deref(),
        Some("complete")
    );
    assert_eq!(done.payment_status.as_str(), "no_payment_required");
    let sub_id = done
        .subscription
        .map(|s| s.id().as_str().to_owned())
        .expect("a subscription");
    let (_, sub) = raw(
        &app,
        reqwest::Method::GET,
        &format!("/subscriptions/{sub_id}"),
        Some(&key),
        &[],
    )
    .await;
    assert_eq!(sub["status"], "trialing");
    assert_eq!(sub["metadata"]["user_id"], "u42");
    let customer = done.customer.map(|c| c.id().as_str().to_owned()).unwrap();
    let (_, c) = raw(
        &app,
        reqwest::Method::GET,
        &format!("/customers/{customer}"),
        Some(&key),
        &[],
    )
    .await;
    assert_eq!(c["email"], "buyer@example.com");
    assert_eq!(c["address"]["postal_code"], "94107");
    assert!(c["invoice_settings"]["default_payment_method"]
        .as_str()
        .unwrap()
        .starts_with("pm_"));

    let (_, events) = raw(
        &app,
        reqwest::Method::GET,
        "/events?limit=100",
        Some(&key),
        &[],
    )
    .await;
    let all = events.to_string();
    assert!(
        all.contains("checkout.session.completed") && all.contains("customer.subscription.created")
    );
    assert!(
        !all.contains("sandbox_card") && !all.contains("\"sandbox\""),
        "no sandbox notes in events"
    );

    // A completed session cannot be paid again.
    assert_eq!(
        app.client.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let (status, _) = raw(
        &app,
        reqwest::Method::POST,
        "/checkout/sessions",
        Some(&key),
        &[("mode", "payment"), ("success_url", "http://x.example")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn state_and_idempotency_keys_survive_a_restart() {
    let db_url = fresh_database_url().await;
    let first = spawn_sandbox_on(&db_url, |_| {}).await;
    let key = test_key();
    let http = reqwest::Client::new();
    let create = |base: String| {
        http.post(format!("{base}/v1/customers"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "signup-42")
            .form(&[("email", "restart@example.com")])
            .send()
    };
    let made: Value = create(first.clone()).await.unwrap().json().await.unwrap();
    let product = CreateProduct::new("Durable")
        .send(&stripe_client(&first, &key))
        .await
        .unwrap();

    // Another process on the same database: what Stripe knew, it still knows.
    let second = spawn_sandbox_on(&db_url, |_| {}).await;
    assert_ne!(first, second);
    let client = stripe_client(&second, &key);
    let again = RetrieveProduct::new(product.id.clone())
        .send(&client)
        .await
        .expect("the product is still there");
    assert_eq!(again.name, "Durable");
    let replay = create(second.clone()).await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replayed: Value = replay.json().await.unwrap();
    assert_eq!(
        replayed["id"], made["id"],
        "the same key answers as before the restart"
    );
    let events = ListEvent::new().send(&client).await.unwrap();
    assert_eq!(events.data.len(), 2, "customer.created and product.created");
}

#[tokio::test]
async fn checkout_sessions_expire_on_request_or_at_expires_at_and_then_show_a_clear_page() {
    use stripe_checkout::checkout_session::{
        CreateCheckoutSession, CreateCheckoutSessionLineItems, RetrieveCheckoutSession,
    };
    let app = spawn_app().await;
    let key = test_key();
    let client = stripe_client(&sandbox_base(&app), &key);
    let product = CreateProduct::new("Poster").send(&client).await.unwrap();
    let price = CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(1200)
        .send(&client)
        .await
        .unwrap();
    let soon = time::OffsetDateTime::now_utc().unix_timestamp() + 31 * 60;
    let session = || {
        CreateCheckoutSession::new()
            .mode(stripe_shared::CheckoutSessionMode::Payment)
            .line_items(vec![CreateCheckoutSessionLineItems {
                price: Some(price.id.as_str().to_owned()),
                quantity: Some(1),
                ..CreateCheckoutSessionLineItems::new()
            }])
            .success_url("http://shop.example/done")
            .expires_at(soon)
    };

    // Too soon or too late is refused like Stripe does.
    let (status, body) = raw(
        &app,
        reqwest::Method::POST,
        "/checkout/sessions",
        Some(&key),
        &[
            ("mode", "payment"),
            ("line_items[0][price]", price.id.as_str()),
            ("line_items[0][quantity]", "1"),
            ("success_url", "http://shop.example/done"),
            ("expires_at", &(soon - 30 * 60).to_string()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["param"], "expires_at");

    // Expired on request.
    let asked = session().send(&client).await.unwrap();
    let page = asked.url.clone().unwrap();
    let (status, expired) = raw(
        &app,
        reqwest::Method::POST,
        &format!("/checkout/sessions/{}/expire", asked.id.as_str()),
        Some(&key),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(expired["status"], "expired");
    assert!(expired["url"].is_null(), "no URL once expired");
    let (status, _) = raw(
        &app,
        reqwest::Method::POST,
        &format!("/checkout/sessions/{}/expire", asked.id.as_str()),
        Some(&key),
        &[],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "only an open session expires"
    );
    let res = app.client.get(&page).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("it was completed or it expired"));

    // Expired by time: the sandbox's worker does it, with the event, as Stripe does.
    let left = session().send(&client).await.unwrap();
    sqlx::query(
        "update stripe_sandbox.objects set data = jsonb_set(data, '{expires_at}', to_jsonb(extract(epoch from now())::bigint - 1)) where id = $1",
    )
    .bind(left.id.as_str())
    .execute(&app.db)
    .await
    .unwrap();
    let timed_out = eventually(|| async {
        RetrieveCheckoutSession::new(left.id.clone())
            .send(&client)
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.as_str() == "expired")
    })
    .await;
    assert!(timed_out, "the session expired by itself");
    let paid = app
        .pay_checkout(
            left.url.as_deref().unwrap(),
            Some("late@example.com"),
            "4242424242424242",
        )
        .await;
    assert_eq!(
        paid.status(),
        StatusCode::NOT_FOUND,
        "an expired session takes no payment"
    );
    let (_, events) = raw(
        &app,
        reqwest::Method::GET,
        "/events?type=checkout.session.expired",
        Some(&key),
        &[],
    )
    .await;
    let expired_ids: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["data"]["object"]["id"].as_str())
        .collect();
    assert_eq!(expired_ids.len(), 2, "{events}");
    assert!(expired_ids.contains(&left.id.as_str()) && expired_ids.contains(&asked.id.as_str()));
}

#[tokio::test]
async fn two_sandbox_instances_deliver_each_event_exactly_once() {
    let db_url = fresh_database_url().await;
    let first = spawn_sandbox_on(&db_url, |_| {}).await;
    let _second = spawn_sandbox_on(&db_url, |_| {}).await;
    let key = test_key();
    let (url, hits) = spawn_receiver(0).await;
    let endpoint: Value = reqwest::Client::new()
        .post(format!("{first}/v1/webhook_endpoints"))
        .bearer_auth(&key)
        .form(&[("url", url.as_str()), ("enabled_events[]", "*")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(endpoint["secret"].as_str().unwrap().starts_with("whsec_"));
    let client = stripe_client(&first, &key);
    for n in 0..30 {
        CreateProduct::new(format!("Item {n}"))
            .send(&client)
            .await
            .unwrap();
    }
    wait_for_hits(&hits, 30).await;
    // Both workers poll every 250 ms: a double delivery would land well within a second.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = hits.lock().unwrap().clone();
    let ids: std::collections::BTreeSet<String> = got
        .iter()
        .map(|(_, body)| {
            serde_json::from_str::<Value>(body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 30, "every event arrived");
    assert_eq!(got.len(), 30, "and none twice, with two workers competing");
}
