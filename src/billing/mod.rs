//! Billing settings: plan, payment method, invoices, and the Customer Portal. For now: the
//! page frame behind the login wall.

#[cfg(feature = "ssr")]
pub mod customer;

use crate::{error::ApiError, ui::ErrorNotice};
use leptos::prelude::*;
use leptos_meta::Title;

#[server(prefix = "/api", endpoint = "billing")]
pub async fn billing_overview() -> Result<String, ApiError> {
    let state = crate::state::AppState::get()?;
    Ok(crate::accounts::require_user(&state.db).await?.email)
}

#[component]
pub fn BillingSettingsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| billing_overview());
    view! {
        <Title text="Billing"/>
        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">"Loading billing…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(email) => view! {
                    <section>
                        <header class="page-header">
                            <h1>"Billing"</h1>
                            <p class="muted">{format!("Billing for {email}")}</p>
                        </header>
                        <div class="card">
                            <h2>"No billing account yet"</h2>
                            <p>"Once you subscribe, your plan, payment method and invoices appear here."</p>
                            <a class="button" href="/pricing">"See plans"</a>
                        </div>
                    </section>
                }.into_any(),
                Err(e) => view! { <ErrorNotice error=e back_to="/settings/billing"/> }.into_any(),
            })}
        </Suspense>
    }
}
