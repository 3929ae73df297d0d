//! Stripe as the app sees it: its own sandbox account (typed and raw), any other sandbox
//! account, and signed deliveries to its webhook route.

use super::{now, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

impl TestApp {
    /// The app's own Stripe client (its sandbox key, its in-app sandbox), built as the app builds it.
    pub async fn stripe(&self) -> saas_billing::stripe::Stripe {
        let key = self.setting("sandbox_secret_key").await;
        saas_billing::stripe::Stripe::new(&key, Some(&format!("{}/sandbox/", self.url)))
            .expect("client builds")
    }
}

/// A call on the in-app sandbox's API with `key`: any account, the app's or another.
pub async fn sandbox_api(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let res = app
        .client
        .request(method, app.at(&format!("/sandbox/v1{path}")))
        .bearer_auth(key)
        .form(form)
        .send()
        .await
        .expect("request goes through");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// A call on the in-app sandbox with the app's key (so its webhooks reach the app).
pub async fn api(
    app: &TestApp,
    method: Method,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let key = app.setting("sandbox_secret_key").await;
    sandbox_api(app, method, path, &key, form).await
}

/// Like [`api`], for calls that must succeed.
pub async fn ok(app: &TestApp, method: Method, path: &str, form: &[(&str, &str)]) -> Value {
    let (status, body) = api(app, method, path, form).await;
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// POSTs `body` to the app's webhook route, signed with `secret` as Stripe signs.
pub async fn deliver(app: &TestApp, body: &str, secret: &str) -> reqwest::Response {
    let header = stripe_sandbox::signature_header(secret, now(), body.as_bytes());
    app.client
        .post(app.at("/api/webhooks/stripe"))
        .header("stripe-signature", header)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

/// An event envelope created now.
pub fn event(id: &str, kind: &str, object: Value) -> String {
    event_at(id, kind, object, now())
}

/// An event envelope created at `created`.
pub fn event_at(id: &str, kind: &str, object: Value, created: i64) -> String {
    json!({ "id": id, "object": "event", "type": kind, "created": created, "livemode": false,
            "api_version": "2026-09-30.endive", "pending_webhooks": 1, "data": { "object": object } })
    .to_string()
}

/// Sends one of the sandbox's events to the app's webhook once more, signed as Stripe signs.
pub async fn deliver_again(app: &TestApp, event_id: &str) {
    let event = ok(app, Method::GET, &format!("/events/{event_id}"), &[]).await;
    let secret = app.setting("sandbox_webhook_secret").await;
    let res = deliver(app, &event.to_string(), &secret).await;
    assert_eq!(res.status(), StatusCode::OK, "{event_id}");
}
