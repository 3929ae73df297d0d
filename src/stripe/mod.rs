//! Talking to Stripe: the mode (shared with the browser for the banner) and, on the server,
//! the one client construction.

use serde::{Deserialize, Serialize};

/// Which Stripe the app talks to. The UI shows a banner unless this is `Live`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StripeMode {
    /// No key configured: the built-in offline sandbox.
    Sandbox,
    /// An `sk_test_` / `rk_test_` key against real Stripe.
    Test,
    /// An `sk_live_` / `rk_live_` key: real money.
    Live,
}

#[cfg(feature = "ssr")]
pub mod bootstrap;
#[cfg(feature = "ssr")]
mod client;
#[cfg(feature = "ssr")]
pub mod clock;
#[cfg(feature = "ssr")]
pub mod freshness;
#[cfg(feature = "ssr")]
pub mod installation;
#[cfg(feature = "ssr")]
pub use client::Stripe;
