//! The user's subscription and what it entitles them to. For now: the dashboard frame; the
//! subscription state arrives with the webhook work.

use crate::{error::ApiError, ui::ErrorNotice};
use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardView {
    pub email: String,
    pub member_since: String,
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
    Ok(DashboardView {
        email: user.email,
        member_since,
    })
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
                        <div class="card">
                            <h2>"Your plan"</h2>
                            <p data-testid="plan-status">"You are not subscribed to a plan yet."</p>
                            <a class="button" href="/pricing">"Choose a plan"</a>
                        </div>
                        <p class="muted small">{format!("Member since {}", d.member_since)}</p>
                    </section>
                }.into_any(),
                Err(e) => view! { <ErrorNotice error=e back_to="/dashboard"/> }.into_any(),
            })}
        </Suspense>
    }
}
