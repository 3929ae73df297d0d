//! The sandbox alone, on a free port, against a brand-new Postgres database; clients that
//! drive it as SDKs and browsers do; and a webhook receiver.

use reqwest::{Client, Method, Response, StatusCode};
use serde_json::Value;
use sqlx::PgPool;
use std::{sync::Arc, time::Duration};
pub use stripe_sandbox::testing::{event_ids, spawn_receiver, wait_for_hits, TestDatabase};
use stripe_sandbox::{PrivateWebhooks, Settings};

pub struct TestSandbox {
    /// The base URL: the API is at `{url}/v1`, the pages at `{url}/sandbox/...`.
    pub url: String,
    /// A browser-like client: keeps cookies, does not follow redirects.
    pub client: Client,
    pub db: PgPool,
    /// Held so the database outlives the sandbox using it.
    _database: Arc<TestDatabase>,
    /// The dashboard's token (the test client already holds its cookie).
    pub token: String,
}

pub async fn spawn_sandbox() -> TestSandbox {
    spawn_sandbox_with(|_| {}).await
}

pub async fn spawn_sandbox_with(tweak: impl FnOnce(&mut Settings)) -> TestSandbox {
    spawn_sandbox_on(&TestDatabase::create().await, tweak).await
}

/// A sandbox on an existing database: a second one is the first restarted, or a second
/// instance beside it.
pub async fn spawn_sandbox_on(
    database: &Arc<TestDatabase>,
    tweak: impl FnOnce(&mut Settings),
) -> TestSandbox {
    let db = PgPool::connect(&database.url)
        .await
        .expect("the test pool connects");
    // Like a developer's sandbox on their own machine: webhooks may go to the test's
    // receivers on loopback.
    let mut settings = Settings {
        private_webhooks: PrivateWebhooks::Allowed,
        ..Settings::default()
    };
    tweak(&mut settings);
    let token = settings.dashboard_token.clone();
    let url = stripe_sandbox::testing::serve(db.clone(), settings).await;
    let sandbox = TestSandbox {
        url,
        client: Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client builds"),
        db,
        _database: database.clone(),
        token,
    };
    // The browser of the developer who opened the printed link: it holds the cookie.
    let opened = sandbox
        .client
        .get(sandbox.at(&format!("/sandbox?token={}", sandbox.token)))
        .send()
        .await
        .expect("the dashboard answers");
    assert_eq!(opened.status(), StatusCode::SEE_OTHER, "the token is taken");
    sandbox
}

impl TestSandbox {
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The body of a GET of a page or absolute URL.
    pub async fn page(&self, path_or_url: &str) -> String {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            self.at(path_or_url)
        };
        let res = self.client.get(url).send().await.expect("GET succeeds");
        res.text().await.expect("a text body")
    }

    /// An API call as any HTTP client makes it: form-encoded, Bearer key, JSON back.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        form: &[(&str, &str)],
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.at(&format!("/v1{path}")));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let res = req.form(form).send().await.expect("request goes through");
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// async-stripe's typed client, built as an app builds it: only the base URL differs.
    pub fn stripe(&self, key: &str) -> stripe::Client {
        stripe::ClientBuilder::new(key)
            .url(format!("{}/", self.url))
            .build()
            .expect("client builds")
    }

    /// Pays on the hosted Checkout page as a browser would.
    pub async fn pay_checkout(&self, url: &str, email: Option<&str>, card: &str) -> Response {
        let mut form = vec![
            ("card_number", card),
            ("card_expiry", "12 / 40"),
            ("card_cvc", "123"),
            ("name", "Ann Buyer"),
            ("country", "US"),
            ("postal_code", "94107"),
        ];
        form.extend(email.map(|e| ("email", e)));
        self.client
            .post(url)
            .form(&form)
            .send()
            .await
            .expect("POST succeeds")
    }

    /// Registers a webhook endpoint for `key`'s account and returns its signing secret.
    pub async fn register_endpoint(&self, key: &str, url: &str) -> String {
        let (status, body) = self
            .api(
                Method::POST,
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
}

/// A fresh test-mode key: its own account.
pub fn test_key() -> String {
    format!("sk_test_{}", uuid::Uuid::new_v4().simple())
}

pub fn location(res: &Response) -> &str {
    res.headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// Polls `check` every 100 ms until it holds; false after 10 s.
pub async fn eventually<F: std::future::Future<Output = bool>>(
    mut check: impl FnMut() -> F,
) -> bool {
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
