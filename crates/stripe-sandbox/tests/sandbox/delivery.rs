use crate::helpers::*;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::Sha256;
use std::time::Duration;
use stripe_core::customer::CreateCustomer;
use stripe_product::product::CreateProduct;

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
    let app = spawn_sandbox().await;
    let key = test_key();
    let (url, hits) = spawn_receiver(0).await;
    let secret = app.register_endpoint(&key, &url).await;
    let client = app.stripe(&key);
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
    let (_, endpoints) = app
        .api(Method::GET, "/webhook_endpoints", Some(&key), &[])
        .await;
    assert!(endpoints["data"][0].get("secret").is_none());
}

#[tokio::test]
async fn failed_deliveries_are_retried_and_recorded() {
    let app = spawn_sandbox_with(|s| s.retry_schedule = vec![Duration::from_millis(200); 3]).await;
    let key = test_key();
    let (url, hits) = spawn_receiver(2).await;
    app.register_endpoint(&key, &url).await;
    let product = CreateProduct::new("Retry")
        .send(&app.stripe(&key))
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
    let (_, delivered) = app
        .api(
            Method::GET,
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
    let app = spawn_sandbox_with(|s| s.retry_schedule = vec![Duration::from_millis(100)]).await;
    let key = test_key();
    let (url, hits) = spawn_receiver(usize::MAX).await;
    app.register_endpoint(&key, &url).await;
    CreateCustomer::new().send(&app.stripe(&key)).await.unwrap();
    wait_for_hits(&hits, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        hits.lock().unwrap().len(),
        2,
        "one try plus one retry, then it gives up"
    );
    let (_, missed) = app
        .api(
            Method::GET,
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
    let app = spawn_sandbox_with(|s| s.chaos_duplicate = 1.0).await;
    let key = test_key();
    let (url, hits) = spawn_receiver(0).await;
    app.register_endpoint(&key, &url).await;
    CreateProduct::new("Twice")
        .send(&app.stripe(&key))
        .await
        .unwrap();
    let got = wait_for_hits(&hits, 2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, got[1].1, "the same event, delivered twice");
}

#[tokio::test]
async fn fault_injection_fails_requests_like_a_bad_day_at_stripe() {
    let base = spawn_sandbox_with(|s| s.fault_rate = 1.0).await.url;
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

#[tokio::test]
async fn the_dashboard_lists_events_with_deliveries_and_resends_them() {
    let app = spawn_sandbox().await;
    let key = test_key();
    let (url, hits) = spawn_receiver(0).await;
    app.register_endpoint(&key, &url).await;
    CreateProduct::new("On the dashboard")
        .send(&app.stripe(&key))
        .await
        .unwrap();
    let first = wait_for_hits(&hits, 1).await;
    let event_id = event_ids(&first)[0].clone();
    let page = app.page("/sandbox").await;
    assert!(
        page.contains("product.created")
            && page.contains(&event_id)
            && page.contains(&url)
            && page.contains("succeeded · 1 attempt(s) · last 200"),
        "{page}"
    );

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
    let back = app.page(location(&res)).await;
    assert!(
        back.contains(&format!("Resending {event_id} to 1 endpoint(s)")),
        "{back}"
    );
    let again = wait_for_hits(&hits, 2).await;
    assert_eq!(
        event_ids(&again),
        vec![event_id.clone(), event_id],
        "the same event, again"
    );
}
