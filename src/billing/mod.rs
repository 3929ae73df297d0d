//! Billing settings: the plan as the webhooks recorded it. The payment method, invoices and
//! the Customer Portal arrive with the portal work.

#[cfg(feature = "ssr")]
pub mod customer;

use crate::{
    error::ApiError,
    subscriptions::{PlanCard, PlanSummary},
    ui::ErrorNotice,
};
use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingView {
    pub email: String,
    pub plan: Option<PlanSummary>,
}

#[server(prefix = "/api", endpoint = "billing")]
pub async fn billing_overview() -> Result<BillingView, ApiError> {
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    let plan = crate::subscriptions::plan_for(&state.db, user.id, state.config.grace_days).await?;
    Ok(BillingView {
        email: user.email,
        plan,
    })
}

#[component]
pub fn BillingSettingsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| billing_overview());
    view! {
        <Title text="Billing"/>
        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">"Loading billing…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(b) => view! {
                    <section>
                        <header class="page-header">
                            <h1>"Billing"</h1>
                            <p class="muted">{format!("Billing for {}", b.email)}</p>
                        </header>
                        <PlanCard plan=b.plan/>
                    </section>
                }.into_any(),
                Err(e) => view! { <ErrorNotice error=e back_to="/settings/billing"/> }.into_any(),
            })}
        </Suspense>
    }
}
