//! The billing settings page: plan, next invoice, card, past-due banner, invoice history,
//! and "Manage billing".

use super::{billing_overview, BillingView};
use crate::{
    subscriptions::PlanCard,
    ui::{ErrorNotice, SubmitButton},
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn BillingSettingsPage() -> impl IntoView {
    let query = use_query_map();
    let page = move || {
        query
            .with(|q| q.get_str("page").and_then(|p| p.parse::<i64>().ok()))
            .unwrap_or(1)
    };
    let data = Resource::new(page, billing_overview);
    view! {
        <Title text="Billing"/>
        <Suspense fallback=|| view! { <p class="loading" aria-busy="true">"Loading billing…"</p> }>
            {move || data.get().map(|r| match r {
                Ok(b) => view! { <Billing b/> }.into_any(),
                Err(e) => view! { <ErrorNotice error=e back_to="/settings/billing"/> }.into_any(),
            })}
        </Suspense>
    }
}

#[component]
fn Billing(b: BillingView) -> impl IntoView {
    let manage = if b.has_customer {
        view! {
            <form method="post" action="/api/billing/portal">
                <SubmitButton label="Manage billing" pending_label="Opening the billing portal…" class="button" testid="manage-billing"/>
            </form>
        }
        .into_any()
    } else {
        view! {
            <p data-testid="no-billing-account">"You have no billing account yet. "<a href="/pricing">"Choose a plan"</a>" to get started."</p>
        }
        .into_any()
    };
    let past_due = b.past_due.map(|p| {
        view! {
            <p class="notice notice-error" role="alert" data-testid="past-due-banner">
                {format!("Your payment of {} failed. ", p.amount)}
                {p.pay_url.map(|u| view! { <a href=u data-testid="pay-now">"Pay now"</a> })}
                " or update your card with Manage billing."
            </p>
        }
    });
    let (page, has_more) = (b.page, b.has_more);
    view! {
        <section>
            <header class="page-header">
                <h1>"Billing"</h1>
                <p class="muted">{format!("Billing for {}", b.email)}</p>
            </header>
            {past_due}
            <PlanCard plan=b.plan/>
            <div class="card">
                <h2>"Payment"</h2>
                {b.next_invoice.map(|n| view! { <p data-testid="next-invoice">"Next invoice: "{n}</p> })}
                <p data-testid="card-on-file">{b.card.unwrap_or_else(|| "No card on file.".into())}</p>
                {manage}
            </div>
            <div class="card">
                <h2>"Invoices"</h2>
                {if b.invoices.is_empty() {
                    view! { <p class="muted" data-testid="no-invoices">"No invoices yet."</p> }.into_any()
                } else {
                    view! {
                        <div class="table-scroll"><table class="invoices">
                            <thead><tr><th>"Date"</th><th>"Number"</th><th>"Amount"</th><th>"Status"</th><th></th></tr></thead>
                            <tbody>
                                {b.invoices.into_iter().map(|i| view! {
                                    <tr data-testid="invoice-row">
                                        <td>{i.date}</td>
                                        <td>{i.number}
                                            {(!i.lines.is_empty()).then(|| view! {
                                                <ul class="invoice-lines">{i.lines.into_iter().map(|l| view! { <li>{l}</li> }).collect_view()}</ul>
                                            })}
                                        </td>
                                        <td>{i.amount}</td><td>{i.status}</td>
                                        <td>{i.url.map(|u| view! { <a href=u>"View"</a> })}" "{i.pdf.map(|u| view! { <a href=u>"PDF"</a> })}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table></div>
                    }.into_any()
                }}
                <nav class="pager">
                    {(page > 1).then(|| view! { <a href=format!("/settings/billing?page={}", page - 1)>"← Newer"</a> })}
                    {has_more.then(|| view! { <a data-testid="older-invoices" href=format!("/settings/billing?page={}", page + 1)>"Older →"</a> })}
                </nav>
            </div>
        </section>
    }
}
