//! The user's subscription and what it entitles them to: the dashboard, and a feature that
//! only entitled users can use (checked on the server).

pub mod entitlement;
#[cfg(feature = "ssr")]
pub mod sync;

use crate::{error::ApiError, ui::ErrorNotice};
use entitlement::Entitlement;
use leptos::prelude::*;
use leptos_meta::Title;
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardView {
    pub email: String,
    pub member_since: String,
    pub plan: Option<PlanSummary>,
}

#[cfg(feature = "ssr")]
mod current {
    use super::{entitlement::*, PlanSummary};
    use crate::error::AppError;
    use sqlx::PgPool;
    use time::OffsetDateTime;
    use uuid::Uuid;

    #[derive(sqlx::FromRow)]
    struct Row {
        product: Option<String>,
        price_id: Option<String>,
        status: String,
        current_period_end: Option<OffsetDateTime>,
        trial_end: Option<OffsetDateTime>,
        cancel_at_period_end: bool,
        past_due_since: Option<OffsetDateTime>,
    }

    fn date(t: OffsetDateTime) -> String {
        t.format(time::macros::format_description!(
            "[month repr:long] [day padding:none], [year]"
        ))
        .unwrap_or_default()
    }

    /// The user's most relevant subscription (one that still grants access first) and its
    /// entitlement now.
    pub async fn plan_for(
        db: &PgPool,
        user: Uuid,
        grace_days: u32,
    ) -> Result<Option<PlanSummary>, AppError> {
        let row: Option<Row> = sqlx::query_as(
            "select p.name as product, s.price_id, s.status, s.current_period_end, s.trial_end, s.cancel_at_period_end, s.past_due_since
             from subscriptions s
             join customers c on c.stripe_customer_id = s.stripe_customer_id
             left join products p on p.id = s.product_id
             where c.user_id = $1
             order by (s.status in ('active', 'trialing', 'past_due')) desc, s.current_period_end desc nulls last
             limit 1",
        )
        .bind(user)
        .fetch_optional(db)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let now = OffsetDateTime::now_utc();
        let state = SubscriptionState {
            status: row.status.clone(),
            current_period_end: row.current_period_end.map(|t| t.unix_timestamp()),
            cancel_at_period_end: row.cancel_at_period_end,
            past_due_since: row.past_due_since.map(|t| t.unix_timestamp()),
        };
        let entitlement = entitlement(&state, now.unix_timestamp(), i64::from(grace_days) * 86_400);
        let timeline = match (row.status.as_str(), row.trial_end, row.current_period_end) {
            ("trialing", Some(end), _) => {
                let days = ((end - now).whole_hours() as f64 / 24.0).ceil().max(0.0) as i64;
                Some(format!("Trial ends {} ({days} days left)", date(end)))
            }
            ("active" | "trialing", _, Some(end)) if row.cancel_at_period_end => {
                Some(format!("Cancels on {}", date(end)))
            }
            ("active", _, Some(end)) => Some(format!("Renews {}", date(end))),
            ("past_due", _, _) => Some(match entitlement {
                Entitlement::Grace { until } => format!(
                    "Access continues until {} while we retry your card.",
                    OffsetDateTime::from_unix_timestamp(until)
                        .map(date)
                        .unwrap_or_default()
                ),
                _ => "Access is paused until the open invoice is paid.".to_owned(),
            }),
            _ => None,
        };
        Ok(Some(PlanSummary {
            product: row.product.unwrap_or_else(|| "Your plan".into()),
            price_id: row.price_id,
            status: status_words(&row.status).into(),
            timeline,
            cancel_at_period_end: row.cancel_at_period_end,
            entitlement,
        }))
    }

    fn status_words(status: &str) -> &'static str {
        match status {
            "trialing" => "Free trial",
            "active" => "Active",
            "past_due" => "Payment failed",
            "canceled" => "Canceled",
            "unpaid" => "Unpaid",
            "incomplete" => "Waiting for payment",
            "incomplete_expired" => "Expired",
            "paused" => "Paused",
            _ => "Unknown",
        }
    }
}

/// The price of the user's subscription when it gives access now.
#[cfg(feature = "ssr")]
pub async fn current_price(
    db: &sqlx::PgPool,
    user: uuid::Uuid,
    grace_days: u32,
) -> Result<Option<String>, crate::error::AppError> {
    Ok(current::plan_for(db, user, grace_days)
        .await?
        .filter(|p| p.entitlement.has_access())
        .and_then(|p| p.price_id))
}

/// The user's plan as recorded from Stripe's webhooks, with its entitlement now.
#[cfg(feature = "ssr")]
pub async fn plan_for(
    db: &sqlx::PgPool,
    user: uuid::Uuid,
    grace_days: u32,
) -> Result<Option<PlanSummary>, crate::error::AppError> {
    current::plan_for(db, user, grace_days).await
}

/// Whether the user's subscription gives access now.
#[cfg(feature = "ssr")]
pub async fn has_access(
    db: &sqlx::PgPool,
    user: uuid::Uuid,
    grace_days: u32,
) -> Result<bool, crate::error::AppError> {
    Ok(current::plan_for(db, user, grace_days)
        .await?
        .is_some_and(|p| p.entitlement.has_access()))
}

#[server(prefix = "/api", endpoint = "dashboard")]
pub async fn dashboard() -> Result<DashboardView, ApiError> {
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    let created: time::OffsetDateTime =
        sqlx::query_scalar("select created_at from users where id = $1")
            .bind(user.id)
            .fetch_one(&state.db)
            .await
            .map_err(crate::error::AppError::from)?;
    let member_since = created
        .format(time::macros::format_description!(
            "[month repr:long] [day padding:none], [year]"
        ))
        .map_err(crate::error::AppError::internal)?;
    let plan = current::plan_for(&state.db, user.id, state.config.grace_days).await?;
    Ok(DashboardView {
        email: user.email,
        member_since,
        plan,
    })
}

/// The paid feature. Its lock is here, on the server: hiding the button is only courtesy.
#[server(prefix = "/api", endpoint = "feature")]
pub async fn run_paid_feature() -> Result<String, ApiError> {
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    if !has_access(&state.db, user.id, state.config.grace_days).await? {
        return Err(crate::error::AppError::Forbidden.into());
    }
    let at = time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[hour]:[minute]:[second] UTC"
        ))
        .map_err(crate::error::AppError::internal)?;
    Ok(format!("Report generated at {at}."))
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| dashboard());
    view! {
        <Title text="Dashboard"/>
        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">"Loading your dashboard…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(d) => view! {
                    <section>
                        <header class="page-header">
                            <h1>"Dashboard"</h1>
                            <p class="muted" data-testid="dashboard-email">{format!("Signed in as {}", d.email)}</p>
                        </header>
                        <PlanCard plan=d.plan.clone()/>
                        <FeatureArea entitled=d.plan.as_ref().is_some_and(|p| p.entitlement.has_access())/>
                        <p class="muted small">{format!("Member since {}", d.member_since)}</p>
                    </section>
                }.into_any(),
                Err(e) => view! { <ErrorNotice error=e back_to="/dashboard"/> }.into_any(),
            })}
        </Suspense>
    }
}

/// The plan, its status and timeline, with a banner when access is at risk or gone.
#[component]
pub fn PlanCard(plan: Option<PlanSummary>) -> impl IntoView {
    match plan {
        None => view! {
            <div class="card">
                <h2>"Your plan"</h2>
                <p data-testid="plan-status">"You are not subscribed to a plan yet."</p>
                <a class="button" href="/pricing">"Choose a plan"</a>
            </div>
        }
        .into_any(),
        Some(p) => {
            let banner = match p.entitlement {
                Entitlement::Grace { .. } => Some("Your last payment failed. Update your card in billing settings to keep access."),
                Entitlement::None => Some("Your subscription no longer gives access. Choose a plan to continue."),
                Entitlement::Full if p.cancel_at_period_end => Some("Your subscription is set to end; you keep access until then."),
                Entitlement::Full => None,
            };
            view! {
                <div class="card">
                    <h2>"Your plan"</h2>
                    {banner.map(|b| view! { <p class="notice" role="status" data-testid="plan-banner">{b}</p> })}
                    <p data-testid="plan-status"><strong>{p.product}</strong>" · "{p.status}</p>
                    {p.timeline.map(|t| view! { <p class="muted" data-testid="plan-timeline">{t}</p> })}
                </div>
            }.into_any()
        }
    }
}

#[component]
fn FeatureArea(entitled: bool) -> impl IntoView {
    let run = ServerAction::<RunPaidFeature>::new();
    let result = move || {
        run.value()
            .get()
            .map(|r| r.unwrap_or_else(|e| e.to_string()))
    };
    view! {
        <div class="card" data-testid="feature-area">
            <h2>"Reports"</h2>
            {if entitled {
                view! {
                    <ActionForm action=run>
                        <button class="button" type="submit" disabled=move || run.pending().get()>"Run a report"</button>
                    </ActionForm>
                    <p role="status" data-testid="feature-result">{result}</p>
                }.into_any()
            } else {
                view! {
                    <p data-testid="feature-locked">"Reports are part of every paid plan."</p>
                    <a class="button button-secondary" href="/pricing">"See plans"</a>
                }.into_any()
            }}
        </div>
    }
}
