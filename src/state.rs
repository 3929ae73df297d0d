//! The one piece of shared state: handlers take what they need through `FromRef`, server
//! functions through [`AppState::get`].

use crate::{config::Config, error::AppError, stripe::Stripe};
use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;
use secrecy::SecretString;
use sqlx::PgPool;
use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, RwLock,
};

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: PgPool,
    pub config: Arc<Config>,
    pub stripe: Stripe,
    /// Secrets that sign our webhooks: `STRIPE_WEBHOOK_SECRET` (several while rotating), plus
    /// in sandbox mode the secret of the endpoint the app registered for itself at start-up.
    pub webhook_secrets: Arc<RwLock<Vec<SecretString>>>,
    /// Set once the start-up sync with Stripe has completed (`/readyz`).
    pub ready: Arc<AtomicBool>,
    /// The pricing page as strangers see it, until the catalog changes.
    pub pricing_cache: crate::catalog::cache::PageCache,
    /// Webhooks that read the same object from Stripe take turns (`webhooks::turns`).
    pub webhook_turns: crate::webhooks::Turns,
}

impl AppState {
    /// The state inside a server function or during rendering (provided by `startup`).
    pub fn get() -> Result<Self, AppError> {
        leptos::prelude::use_context::<Self>()
            .ok_or_else(|| AppError::internal("AppState missing from context"))
    }

    pub fn webhook_secrets(&self) -> Vec<SecretString> {
        self.webhook_secrets
            .read()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    pub fn add_webhook_secret(&self, secret: SecretString) {
        if let Ok(mut secrets) = self.webhook_secrets.write() {
            secrets.push(secret);
        }
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}
