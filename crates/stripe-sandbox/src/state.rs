//! The sandbox's one piece of shared state, handed to every handler.

use crate::settings::Settings;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone)]
pub struct Sandbox {
    pub db: PgPool,
    pub settings: Arc<Settings>,
    /// Where browsers reach the sandbox's pages (hosted invoices, Checkout, the portal): the
    /// configured public URL, never a request's `Host` header.
    pub public_url: Arc<str>,
}

impl Sandbox {
    pub fn new(db: PgPool, settings: Settings, public_url: &str) -> Self {
        Self {
            db,
            settings: Arc::new(settings),
            public_url: public_url.trim_end_matches('/').into(),
        }
    }

    /// `{public_url}{path}`, for links that leave the API (hosted pages).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.public_url)
    }

    /// The gate in front of the dashboard (and of anything else an embedding app wants to
    /// keep behind the same token, such as a dev mailbox).
    pub fn dashboard_gate(&self) -> crate::http::DashboardGate {
        crate::http::DashboardGate::new(
            &self.settings.dashboard_token,
            self.public_url.starts_with("https://"),
        )
    }
}
