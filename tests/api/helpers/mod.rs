//! Helpers shared by every area of the integration tests, one file per concern, so that
//! area files never import from each other.

mod app;
mod billing;
mod clock;
mod gate;
mod mail;
mod sandbox;
mod stripe;

pub use app::*;
pub use billing::*;
pub use clock::*;
pub use gate::Gate;
pub use mail::*;
pub use sandbox::*;
pub use stripe::*;

use reqwest::{header, Response, StatusCode};

pub const PASSWORD: &str = "correct horse battery";

/// Unix seconds now.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub fn unique_email(prefix: &str) -> String {
    format!("{prefix}-{}@example.com", uuid::Uuid::new_v4().simple())
}

pub fn location(res: &Response) -> &str {
    res.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

pub fn session_cookie(res: &Response) -> Option<String> {
    res.cookies()
        .find(|c| c.name() == "sb_session")
        .map(|c| c.value().to_owned())
}

pub async fn assert_status(res: Response, status: StatusCode) -> String {
    let got = res.status();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(got, status, "unexpected status; body: {body}");
    body
}

/// Polls `check` every 100 ms until it holds; false after 10 s.
pub async fn eventually<F: std::future::Future<Output = bool>>(
    mut check: impl FnMut() -> F,
) -> bool {
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}
