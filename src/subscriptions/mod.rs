//! The user's subscription and what it entitles them to: the dashboard, and a feature that
//! only entitled users can use (checked on the server).

pub mod entitlement;
mod pages;
#[cfg(feature = "ssr")]
mod plan;
#[cfg(feature = "ssr")]
mod repo;
#[cfg(feature = "ssr")]
pub mod sync;

pub use pages::{DashboardPage, PlanCard};

use crate::error::ApiError;
use entitlement::Entitlement;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSummary {
    pub product: String,
    pub price_id: Option<String>,
    pub status: String,
    /// "Trial ends December 6, 2026 (14 days left)", "Renews …", "Cancels on …", or
    /// how long access lasts while a failed payment is retried.
    pub timeline: Option<String>,
    pub cancel_at_period_end: bool,
    pub entitlement: Entitlement,
    /// The first payment is still outstanding (`incomplete`): access begins once it is made.
    pub awaiting_first_payment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardView {
    pub email: String,
    pub member_since: String,
    pub plan: Option<PlanSummary>,
    /// The answer to the report the user just ran from the page (shown once).
    pub report: Option<String>,
}

/// The price of the user's subscription when it gives access now.
#[cfg(feature = "ssr")]
pub async fn current_price(
    state: &crate::state::AppState,
    user: uuid::Uuid,
) -> Result<Option<String>, crate::error::AppError> {
    Ok(plan::plan_for(state, user)
        .await?
        .filter(|p| p.entitlement.has_access())
        .and_then(|p| p.price_id))
}

/// The user's plan as recorded from Stripe's webhooks, with its entitlement now.
#[cfg(feature = "ssr")]
pub async fn plan_for(
    state: &crate::state::AppState,
    user: uuid::Uuid,
) -> Result<Option<PlanSummary>, crate::error::AppError> {
    plan::plan_for(state, user).await
}

/// Whether a new subscription of the user's starts with a free trial: one per user, ever
/// (unless `TRIAL_ONCE_PER_USER=false`), so cancel-and-resubscribe is not free time.
#[cfg(feature = "ssr")]
pub async fn trial_left(
    db: &sqlx::PgPool,
    config: &crate::config::Config,
    user: uuid::Uuid,
) -> Result<bool, crate::error::AppError> {
    Ok(
        config.trial_days > 0
            && (!config.one_trial_per_user || !repo::trial_used(db, user).await?),
    )
}

/// Whether the user's subscription gives access now.
#[cfg(feature = "ssr")]
pub async fn has_access(
    state: &crate::state::AppState,
    user: uuid::Uuid,
) -> Result<bool, crate::error::AppError> {
    Ok(plan::plan_for(state, user)
        .await?
        .is_some_and(|p| p.entitlement.has_access()))
}

#[server(prefix = "/api", endpoint = "dashboard")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn dashboard() -> Result<DashboardView, ApiError> {
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    let member_since = crate::ui::format::long_date(
        repo::member_since(&state.db, user.id)
            .await
            .map_err(crate::error::AppError::from)?,
    );
    let plan = plan::plan_for(&state, user.id).await?;
    let report = crate::accounts::take_flash(REPORT_RESULT).await?;
    Ok(DashboardView {
        report,
        email: user.email,
        member_since,
        plan,
    })
}

/// The paid feature, and the metered action: each run is counted against the period (a
/// hard limit refuses it). Its lock is here, on the server: hiding the button is only
/// courtesy.
#[server(prefix = "/api", endpoint = "feature")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn run_paid_feature() -> Result<String, ApiError> {
    use crate::{
        error::AppError,
        usage::meter::{self, Refused, Source},
    };
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    let now = crate::stripe::clock::now_for_user(
        &state.stripe,
        crate::stripe::clock::follows_clocks(&state.config),
        &state.db,
        user.id,
    )
    .await;
    let ran = match meter::record(&state.db, &state.config, user.id, Source::Web, now).await {
        Ok(ran) => ran,
        Err(Refused::NoAccess) => return Err(AppError::Forbidden.into()),
        Err(Refused::LimitReached { .. }) => return Err(AppError::UsageLimitReached.into()),
        Err(Refused::Failed(e)) => return Err(e.into()),
    };
    let at = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[hour]:[minute]:[second] UTC"
        ))
        .map_err(AppError::internal)?;
    let usage = match (ran.metered, ran.limit) {
        (false, _) => String::new(),
        (true, Some(limit)) => format!(" {} of {limit} reports used this period.", ran.used),
        (true, None) => format!(" {} reports this period.", ran.used),
    };
    let message = format!("Report generated at {at}.{usage}");
    // The dashboard's button is a plain form: its answer waits in the session for the
    // dashboard the browser is sent back to. A script gets it as the response.
    if crate::accounts::is_form_post() {
        crate::accounts::flash(REPORT_RESULT, message.clone()).await?;
        leptos_axum::redirect("/dashboard");
    }
    Ok(message)
}

/// Where a report's answer waits for the dashboard (see [`run_paid_feature`]).
#[cfg(feature = "ssr")]
const REPORT_RESULT: &str = "report_result";
