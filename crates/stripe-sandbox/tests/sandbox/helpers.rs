//! The sandbox alone, on a free port, against a brand-new Postgres database; clients that
//! drive it as SDKs and browsers do; and a webhook receiver.

use axum::{http::HeaderMap, routing::post, Router};
use reqwest::{Client, Method, Response, StatusCode};
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection, PgPool};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use stripe_sandbox::{Sandbox, Settings};

/// A database of this test's own, dropped (with whatever still holds it open) when the
/// last handle goes, even when the test fails.
pub struct TestDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TestDatabase {
    pub async fn create() -> Arc<Self> {
        let base = std::env::var("DATABASE_URL")
            .expect("DATABASE_URL must point at a Postgres server (scripts/test sets it)");
        let mut url = url::Url::parse(&base).expect("DATABASE_URL is a URL");
        url.set_path("/postgres");
        let admin_url = url.to_string();
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .expect("connects to Postgres");
        let name = format!("sandbox_test_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute(format!(r#"create database "{name}""#).as_str())
            .await
            .expect("creates the test database");
        url.set_path(&format!("/{name}"));
        Arc::new(Self {
            url: url.to_string(),
            admin_url,
            name,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside any runtime we could borrow: a thread with its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let _ = admin
                        .execute(
                            format!(r#"drop database if exists "{name}" with (force)"#).as_str(),
                        )
                        .await;
                }
            });
        })
        .join();
    }
}

pub struct TestSandbox {
    /// The base URL: the API is at `{url}/v1`, the pages at `{url}/sandbox/...`.
    pub url: String,
    /// A browser-like client: keeps cookies, does not follow redirects.
    pub client: Client,
    pub db: PgPool,
    /// Held so the database outlives the sandbox using it.
    _database: Arc<TestDatabase>,
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
    Sandbox::migrate(&db).await.expect("the sandbox migrates");
    let mut settings = Settings::default();
    tweak(&mut settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let sandbox = Sandbox::new(db.clone(), settings, &url);
    sandbox.start_workers();
    let router = sandbox.standalone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    TestSandbox {
        url,
        client: Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client builds"),
        db,
        _database: database.clone(),
    }
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

pub type Hits = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A webhook receiver that answers 500 to its first `fail_first` requests, then 200.
pub async fn spawn_receiver(fail_first: usize) -> (String, Hits) {
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
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, hits)
}

/// Waits until `n` requests have arrived (15 s at most) and returns what came.
pub async fn wait_for_hits(hits: &Hits, n: usize) -> Vec<(HeaderMap, String)> {
    for _ in 0..150 {
        if hits.lock().unwrap().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    hits.lock().unwrap().clone()
}

/// The ids of the events in webhook bodies.
pub fn event_ids(got: &[(HeaderMap, String)]) -> Vec<String> {
    got.iter()
        .map(|(_, body)| {
            serde_json::from_str::<Value>(body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}
