use crate::helpers::*;
use serde_json::Value;
use std::time::Duration;
use stripe_core::customer::{CreateCustomer, RetrieveCustomer, RetrieveCustomerReturned};
use stripe_core::event::ListEvent;
use stripe_product::product::{CreateProduct, RetrieveProduct};

#[tokio::test]
async fn the_standalone_sandbox_serves_any_sdk_at_v1() {
    let sandbox = spawn_sandbox().await;
    let client = sandbox.stripe(&test_key());
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
async fn state_and_idempotency_keys_survive_a_restart() {
    let database = TestDatabase::create().await;
    let first = spawn_sandbox_on(&database, |_| {}).await;
    let key = test_key();
    let http = reqwest::Client::new();
    let create = |base: String| {
        http.post(format!("{base}/v1/customers"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "signup-42")
            .form(&[("email", "restart@example.com")])
            .send()
    };
    let made: Value = create(first.url.clone())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let product = CreateProduct::new("Durable")
        .send(&first.stripe(&key))
        .await
        .unwrap();

    // Another process on the same database: what Stripe knew, it still knows.
    let second = spawn_sandbox_on(&database, |_| {}).await;
    assert_ne!(first.url, second.url);
    let client = second.stripe(&key);
    let again = RetrieveProduct::new(product.id.clone())
        .send(&client)
        .await
        .expect("the product is still there");
    assert_eq!(again.name, "Durable");
    let replay = create(second.url.clone()).await.unwrap();
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
async fn two_sandbox_instances_deliver_each_event_exactly_once() {
    let database = TestDatabase::create().await;
    let first = spawn_sandbox_on(&database, |_| {}).await;
    let _second = spawn_sandbox_on(&database, |_| {}).await;
    let key = test_key();
    let (url, hits) = spawn_receiver(0).await;
    let endpoint: Value = reqwest::Client::new()
        .post(first.at("/v1/webhook_endpoints"))
        .bearer_auth(&key)
        .form(&[("url", url.as_str()), ("enabled_events[]", "*")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(endpoint["secret"].as_str().unwrap().starts_with("whsec_"));
    let client = first.stripe(&key);
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
