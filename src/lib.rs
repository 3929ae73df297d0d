#![recursion_limit = "256"]
//! saas-billing: one crate, two builds. With `ssr` it is the server (axum + Postgres);
//! with `hydrate` it is the wasm bundle that makes the server-rendered pages interactive.

pub mod accounts;
pub mod admin;
pub mod app;
pub mod billing;
pub mod catalog;
pub mod checkout;
#[cfg(feature = "ssr")]
pub mod email;
pub mod error;
pub mod licenses;
pub mod stripe;
pub mod subscriptions;
pub mod ui;
pub mod usage;

#[cfg(feature = "ssr")]
pub mod assets;
#[cfg(feature = "ssr")]
pub mod cli;
#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod middleware;
#[cfg(feature = "ssr")]
pub mod rate_limit;
#[cfg(feature = "ssr")]
pub mod startup;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod webhooks;

/// Called by Leptos's island loader once the wasm is in, before it hydrates each island.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Panic messages in the console are for development; release builds keep the bytes.
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
    // The loader hydrates the islands right after this returns, within the same task; the
    // marker, one task later, says the page is interactive. End-to-end tests wait for it
    // instead of racing hydration.
    leptos::prelude::set_timeout(
        || {
            if let Some(body) = leptos::prelude::document().body() {
                let _ = body.set_attribute("data-hydrated", "true");
            }
        },
        std::time::Duration::ZERO,
    );
}
