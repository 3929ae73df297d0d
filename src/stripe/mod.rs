//! Everything about talking to Stripe. Only the mode is shared with the browser for now;
//! the client construction arrives with the checkout work.

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
