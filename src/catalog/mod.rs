//! Products and prices. The tables mirror Stripe's catalog; nothing here hard-codes a price.

#[cfg(feature = "ssr")]
pub mod cache;
#[cfg(feature = "ssr")]
mod demo;
pub mod money;
mod pages;
#[cfg(feature = "ssr")]
mod repo;
#[cfg(feature = "ssr")]
pub mod sync;

#[cfg(feature = "ssr")]
pub use demo::seed_sandbox_catalog;
pub use pages::PricingPage;

use crate::error::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Interval {
    Month,
    Year,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Year => "year",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriceView {
    pub id: String,
    pub interval: Interval,
    pub unit_amount: i64,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanView {
    pub product_id: String,
    pub name: String,
    pub description: Option<String>,
    pub features: Vec<String>,
    pub highlighted: bool,
    pub prices: Vec<PriceView>,
}

impl PlanView {
    pub fn price_for(&self, interval: Interval) -> Option<&PriceView> {
        self.prices.iter().find(|p| p.interval == interval)
    }
}

/// A product sold once, with a license key (`license` product metadata).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicensedProductView {
    pub product_id: String,
    pub name: String,
    pub description: Option<String>,
    pub features: Vec<String>,
    pub price_id: String,
    pub unit_amount: i64,
    pub currency: String,
    pub max_activations: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    pub plans: Vec<PlanView>,
    /// The "Buy once" section: one-time prices of licensed products.
    pub one_time: Vec<LicensedProductView>,
    /// The free trial a new subscription starts with (0 once the user has had theirs).
    pub trial_days: u32,
    /// The price of the logged-in user's subscription, if it still gives access.
    pub current_price_id: Option<String>,
    /// Whether someone is logged in (the buttons start Checkout, else sign-up).
    pub logged_in: bool,
}

#[server(prefix = "/api", endpoint = "pricing")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn load_pricing() -> Result<Pricing, ApiError> {
    let state = crate::state::AppState::get()?;
    // Side by side on two pooled connections: one round trip of waiting instead of two.
    let (plans, one_time) = futures::try_join!(
        repo::subscription_plans(&state.db),
        repo::licensed_products(&state.db)
    )
    .map_err(crate::error::AppError::from)?;
    let user = crate::accounts::current_user(&state.db).await?;
    let (current_price_id, trial_left) = match &user {
        Some(user) => (
            crate::subscriptions::current_price(&state, user.id).await?,
            crate::subscriptions::trial_left(&state.db, &state.config, user.id).await?,
        ),
        None => (None, true),
    };
    Ok(Pricing {
        plans,
        one_time,
        trial_days: if trial_left {
            state.config.trial_days
        } else {
            0
        },
        current_price_id,
        logged_in: user.is_some(),
    })
}
