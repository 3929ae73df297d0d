#![recursion_limit = "256"]
//! An offline, stateful, Stripe-compatible server for development and tests: Stripe's REST
//! API (`/v1`), its hosted pages (Checkout, the Customer Portal, invoices), signed webhook
//! deliveries with retries, test clocks, and chaos knobs for reliability tests.
//!
//! It speaks Stripe's dialect closely enough that async-stripe's generated types (which
//! mirror Stripe's OpenAPI spec) decode every response and event, and any Stripe SDK can
//! drive it by base URL. State lives in Postgres, in the `stripe_sandbox` schema, with its
//! own migrations, so it survives restarts the way Stripe does.
//!
//! Layers, lowest first; each uses only those below it:
//! - `kind`, `ids`, `money`, `settings`: the vocabulary;
//! - `http` (errors, extractors, idempotency) and `store` (objects, events, lists);
//! - `delivery`: signed webhook delivery;
//! - `engine`: the billing behaviour, with no HTTP and no HTML;
//! - `api` (one module per Stripe resource) and `hosted` (the pages).

mod api;
mod delivery;
mod engine;
mod hosted;
mod http;
mod ids;
mod kind;
mod money;
mod settings;
mod state;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use delivery::signature_header;
pub use http::{require_dashboard_token, DashboardGate, MAX_BODY};
pub use settings::{AfterFailedRetries, PrivateWebhooks, Settings};
pub use state::Sandbox;

use axum::Router;
use sqlx::{Connection, PgConnection, PgPool};
use std::time::Duration;

/// The API version the sandbox speaks: the one async-stripe 1.0.0-rc.10 pins.
pub const API_VERSION: &str = "2026-09-30.endive";

/// How often open Checkout Sessions past their `expires_at` are expired.
const EXPIRY_SWEEP: Duration = Duration::from_secs(5);

impl Sandbox {
    /// Creates or updates the `stripe_sandbox` schema. Its migrations are the sandbox's own,
    /// recorded in `stripe_sandbox._sqlx_migrations`, so they live beside any migrations of
    /// the application that shares the database.
    pub async fn migrate(db: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
        if let Err(e) = sqlx::query("create schema if not exists stripe_sandbox")
            .execute(db)
            .await
        {
            // Two instances starting at once may race to create it; one wins.
            let exists: bool = sqlx::query_scalar(
                "select exists (select 1 from pg_namespace where nspname = 'stripe_sandbox')",
            )
            .fetch_one(db)
            .await?;
            if !exists {
                return Err(e.into());
            }
        }
        // A connection of its own whose search path puts the migrations' bookkeeping table in
        // the sandbox's schema.
        let options = (*db.connect_options())
            .clone()
            .options([("search_path", "stripe_sandbox")]);
        let mut conn = PgConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations").run(&mut conn).await?;
        conn.close().await?;
        Ok(())
    }

    /// Starts the background work (one set per process; instances share it through
    /// Postgres): webhook delivery and the expiry of overdue Checkout Sessions.
    pub fn start_workers(&self) {
        delivery::spawn_worker(self.db.clone(), self.settings.clone());
        let db = self.db.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EXPIRY_SWEEP);
            loop {
                tick.tick().await;
                if let Err(e) = engine::checkout::expire_overdue(&db).await {
                    tracing::warn!(error = %e.message, "could not expire overdue Checkout Sessions");
                }
            }
        });
    }

    /// Stripe's API, to be nested under `/v1` (standalone) or `/sandbox/v1` (in an app).
    pub fn api(&self) -> Router {
        api::router(self)
    }

    /// The hosted pages and the dashboard, served under `/sandbox`.
    pub fn pages(&self) -> Router {
        hosted::router(self).with_state(self.clone())
    }

    /// Everything a standalone sandbox serves: the API at `/v1` for any SDK, the pages
    /// under `/sandbox`, and a line at `/` saying where things are.
    pub fn standalone(&self) -> Router {
        Router::new()
            .route(
                "/",
                axum::routing::get(|| async {
                    "Stripe sandbox: the API is under /v1 (Bearer sk_test_...), the dashboard at /sandbox\n"
                }),
            )
            .nest_service("/v1", self.api())
            .merge(self.pages())
    }
}
