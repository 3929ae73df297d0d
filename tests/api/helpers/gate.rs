//! A pass-through in front of Stripe (the sandbox on its own port) that can hold one answer:
//! the app has read Stripe and not yet written what it read, for as long as a test needs to
//! change things in between. Everything else goes straight through, over real HTTP.

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::StatusCode,
    response::Response,
};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::Notify;

#[derive(Default)]
struct Inner {
    /// Where requests go: set once the sandbox's address is known.
    target: OnceLock<String>,
    /// The path of the next GET whose answer is held (once).
    hold: Mutex<Option<String>>,
    held: Notify,
    release: Notify,
}

#[derive(Clone)]
pub struct Gate {
    inner: Arc<Inner>,
    /// The gate's own address: what the app is told Stripe's is.
    pub url: String,
}

impl Gate {
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = axum::Router::new()
            .fallback(forward)
            .with_state(inner.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { inner, url }
    }

    /// Sends everything on to `target` (`http://host:port`).
    pub fn forward_to(&self, target: &str) {
        self.inner
            .target
            .set(target.trim_end_matches('/').to_owned())
            .expect("the target is set once");
    }

    /// Holds the answer to the next GET of `path` (e.g. `/v1/subscriptions/sub_…`).
    pub fn hold_next(&self, path: &str) {
        *self.inner.hold.lock().unwrap() = Some(path.to_owned());
    }

    /// Returns once the held request has been answered by Stripe (and not yet passed on).
    pub async fn holding(&self) {
        self.inner.held.notified().await;
    }

    /// Passes the held answer on.
    pub fn release(&self) {
        self.inner.release.notify_one();
    }
}

async fn forward(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path().to_owned();
    let url = format!(
        "{}{}",
        inner.target.get().expect("a target"),
        parts.uri.path_and_query().map_or("", |p| p.as_str())
    );
    let mut outgoing = reqwest::Client::new().request(parts.method.clone(), url);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            outgoing = outgoing.header(name, value);
        }
    }
    let answer = outgoing.body(body).send().await.unwrap();
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let content_type = answer.headers().get("content-type").cloned();
    let bytes = answer.bytes().await.unwrap();
    let hold = parts.method == axum::http::Method::GET && {
        let mut hold = inner.hold.lock().unwrap();
        let matches = hold.as_deref() == Some(path.as_str());
        if matches {
            *hold = None;
        }
        matches
    };
    if hold {
        inner.held.notify_one();
        inner.release.notified().await;
    }
    let mut response = Response::builder().status(status);
    if let Some(content_type) = content_type {
        response = response.header("content-type", content_type);
    }
    response.body(Body::from(bytes)).unwrap()
}
