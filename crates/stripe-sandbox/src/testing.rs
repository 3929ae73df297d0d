//! Helpers for tests that use the sandbox (its own, and any application's): a database of
//! the test's own that is dropped afterwards, a sandbox on a free port, and a webhook
//! receiver that records what arrives. Behind the `testing` feature.

use crate::{Sandbox, Settings};
use axum::{http::HeaderMap, http::StatusCode, routing::post, Router};
use sqlx::{Connection, Executor, PgConnection, PgPool};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

/// A database of a test's own on the server `DATABASE_URL` points at, dropped (with whatever still holds it open) when the
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
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
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

/// A sandbox serving on a free port of 127.0.0.1 against `db`; returns its base URL.
pub async fn serve(db: PgPool, settings: Settings) -> String {
    Sandbox::migrate(&db).await.expect("the sandbox migrates");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    let sandbox = Sandbox::new(db, settings, &url);
    sandbox.start_workers();
    let router = sandbox.standalone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
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
            serde_json::from_str::<serde_json::Value>(body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}
