//! Usage-based billing on Stripe's Billing Meters: each report run is counted here, in its
//! own transaction (`meter`), and sent to Stripe's meter later, exactly once (`report`);
//! limits, the 80% warning, the dashboard's usage card with its chart and Stripe's estimate,
//! personal API tokens, and `POST /api/v1/reports` for scripts (`api`).

#[cfg(feature = "ssr")]
pub mod api;
#[cfg(feature = "ssr")]
pub mod meter;
mod pages;
#[cfg(feature = "ssr")]
pub mod reconcile;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod report;
#[cfg(feature = "ssr")]
pub mod tokens;

pub use pages::{ApiTokensPage, UsageCard};

use crate::error::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageView {
    pub used: i64,
    pub included: Option<i64>,
    pub limit: Option<i64>,
    /// Usage past the limit is billed rather than refused.
    pub overage: bool,
    /// "$0.10 per report beyond the included".
    pub beyond: Option<String>,
    pub period: String,
    pub resets: String,
    /// One bar per day of the period so far: (label, units).
    pub days: Vec<(String, i64)>,
    /// What Stripe's invoice preview says the period costs so far, with tax and discounts.
    pub estimate: Option<String>,
    pub warned: bool,
    pub at_limit: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub hint: String,
    pub created: String,
    pub last_used: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokensView {
    pub tokens: Vec<TokenView>,
    /// A token just made: shown this once, never again.
    pub fresh: Option<String>,
}

/// The logged-in user's usage this period, when their plan meters it.
#[server(prefix = "/api", endpoint = "usage")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn usage_overview() -> Result<Option<UsageView>, ApiError> {
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    Ok(views::usage(&state, user.id).await?)
}

#[server(prefix = "/api", endpoint = "tokens")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn list_tokens() -> Result<TokensView, ApiError> {
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    Ok(tokens::list(&state.db, user.id).await?)
}

/// Makes a token named `name`; it is shown once, on the page this redirects back to.
#[server(prefix = "/api", endpoint = "tokens/create")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn create_token(name: String) -> Result<(), ApiError> {
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    tokens::create(&state.db, user.id, &name).await?;
    leptos_axum::redirect("/settings/api");
    Ok(())
}

#[server(prefix = "/api", endpoint = "tokens/revoke")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn revoke_token(id: String) -> Result<(), ApiError> {
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    tokens::revoke(&state.db, user.id, &id).await?;
    leptos_axum::redirect("/settings/api");
    Ok(())
}

#[cfg(feature = "ssr")]
mod views {
    use super::*;
    use crate::{
        catalog::money::format_money, error::AppError, state::AppState, ui::format::long_date,
    };
    use stripe_billing::invoice::CreatePreviewInvoice;

    pub async fn usage(state: &AppState, user: uuid::Uuid) -> Result<Option<UsageView>, AppError> {
        let Some(sub) = repo::metered_subscription(&state.db, user).await? else {
            return Ok(None);
        };
        let (Some(_), Some(start)) = (&sub.metered_price_id, sub.period_start) else {
            return Ok(None);
        };
        let now = crate::stripe::clock::now_for_customer(
            &state.stripe,
            crate::stripe::clock::follows_clocks(&state.config),
            &sub.stripe_customer_id,
        )
        .await;
        if !meter::has_access(&sub, state.config.grace_days, now) {
            return Ok(None);
        }
        let end = sub.period_end.unwrap_or(start);
        let (used, warned) = repo::counter(&state.db, &sub.subscription_id, start).await?;
        let per_day = repo::per_day(&state.db, &sub.subscription_id, start).await?;
        let currency = sub.currency.clone().unwrap_or_else(|| "usd".into());
        let short = time::macros::format_description!("[month repr:short] [day padding:none]");
        Ok(Some(UsageView {
            used,
            included: sub.included(),
            limit: sub.usage_limit,
            overage: sub.usage_overage,
            beyond: sub.unit_beyond().map(|each| {
                format!(
                    "{} per report beyond the included",
                    format_money(each, &currency)
                )
            }),
            period: format!("{} – {}", long_date(start), long_date(end)),
            resets: long_date(end),
            days: per_day
                .into_iter()
                .map(|(day, n)| (day.format(&short).unwrap_or_default(), n))
                .collect(),
            estimate: estimate(state, &sub.subscription_id).await,
            warned,
            at_limit: sub
                .usage_limit
                .is_some_and(|l| used >= l && !sub.usage_overage),
        }))
    }

    /// Stripe's own figure for the subscription's next invoice (usage so far, tax and
    /// discounts included), as "$29.00 on December 6, 2026". Unavailable is not an error:
    /// the page says so.
    pub async fn estimate(state: &AppState, subscription: &str) -> Option<String> {
        let preview = CreatePreviewInvoice::new().subscription(subscription);
        match state
            .stripe
            .post(
                &preview,
                &format!("preview-{subscription}-{}", uuid::Uuid::new_v4()),
            )
            .await
        {
            Ok(invoice) => {
                let at = invoice
                    .next_payment_attempt
                    .or(Some(invoice.period_end))
                    .map(crate::ui::format::long_date_unix)
                    .unwrap_or_default();
                Some(format!(
                    "{} on {at}",
                    format_money(invoice.amount_due, &invoice.currency.to_string())
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, "no invoice preview");
                None
            }
        }
    }
}

#[cfg(feature = "ssr")]
pub use views::estimate;
