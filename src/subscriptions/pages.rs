//! The dashboard: the plan, its status and timeline, and the paid feature.

use super::{dashboard, entitlement::Entitlement, PlanSummary, RunPaidFeature};
use crate::{
    ui::{use_form_error, ErrorNotice, SubmitButton},
    usage::UsageCard,
};
use leptos::{prelude::*, server_fn::ServerFn};
use leptos_meta::Title;

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| dashboard());
    // A report the server refused comes back in the address.
    let refused = use_form_error::<RunPaidFeature>();
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
                        <FeatureArea
                            entitled=d.plan.as_ref().is_some_and(|p| p.entitlement.has_access())
                            result=d.report.clone().or_else(|| refused.get_untracked().map(|e| e.to_string()))
                        />
                        <UsageCard/>
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
                Entitlement::None if p.awaiting_first_payment => Some("Your subscription starts once its first payment is complete."),
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
fn FeatureArea(entitled: bool, result: Option<String>) -> impl IntoView {
    view! {
        <div class="card" data-testid="feature-area">
            <h2>"Reports"</h2>
            {if entitled {
                view! {
                    <form method="post" action=RunPaidFeature::url()>
                        <SubmitButton label="Run a report" pending_label="Running the report…" class="button"/>
                    </form>
                    <p role="status" data-testid="feature-result">{result}</p>
                    <p class="muted small">"Run reports from a script with an "<a href="/settings/api">"API token"</a>"."</p>
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
