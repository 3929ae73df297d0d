//! Billing settings: the plan, next invoice, card, past-due banner and invoice history, all
//! as the webhooks recorded them in Postgres; and "Manage billing", which opens the Stripe
//! Customer Portal for the signed-in user's own customer.

#[cfg(feature = "ssr")]
pub mod customer;
#[cfg(feature = "ssr")]
pub mod portal;
#[cfg(feature = "ssr")]
pub mod sync;

use crate::{
    error::ApiError,
    subscriptions::{PlanCard, PlanSummary},
    ui::ErrorNotice,
};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

/// Invoices per page of history.
pub const PAGE_SIZE: i64 = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRow {
    pub date: String,
    pub number: String,
    pub amount: String,
    pub status: String,
    pub url: Option<String>,
    pub pdf: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PastDue {
    pub amount: String,
    pub pay_url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingView {
    pub email: String,
    pub plan: Option<PlanSummary>,
    pub has_customer: bool,
    /// "$29.00 on December 6, 2026".
    pub next_invoice: Option<String>,
    /// "visa •••• 4242, expires 12/2034".
    pub card: Option<String>,
    pub past_due: Option<PastDue>,
    pub invoices: Vec<InvoiceRow>,
    pub page: i64,
    pub has_more: bool,
}

#[server(prefix = "/api", endpoint = "billing")]
pub async fn billing_overview(page: i64) -> Result<BillingView, ApiError> {
    use crate::{catalog::money::format_money, error::AppError};
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    let page = page.clamp(1, 10_000);
    let plan = crate::subscriptions::plan_for(&state.db, user.id, state.config.grace_days).await?;
    let date = |t: time::OffsetDateTime| {
        t.format(time::macros::format_description!(
            "[month repr:long] [day padding:none], [year]"
        ))
        .unwrap_or_default()
    };
    // customer id, then the card: brand, last4, expiry month and year.
    type CustomerRow = (
        String,
        Option<String>,
        Option<String>,
        Option<i32>,
        Option<i32>,
    );
    let customer: Option<CustomerRow> = sqlx::query_as(
        "select stripe_customer_id, card_brand, card_last4, card_exp_month, card_exp_year from customers where user_id = $1",
    )
    .bind(user.id)
    .fetch_optional(&state.db)
    .await
    .map_err(AppError::from)?;
    let Some((customer_id, brand, last4, exp_month, exp_year)) = customer else {
        return Ok(BillingView {
            email: user.email,
            plan,
            has_customer: false,
            next_invoice: None,
            card: None,
            past_due: None,
            invoices: Vec::new(),
            page,
            has_more: false,
        });
    };
    let card = match (brand, last4, exp_month, exp_year) {
        (Some(b), Some(l), Some(m), Some(y)) => Some(format!("{b} •••• {l}, expires {m:02}/{y}")),
        _ => None,
    };
    let next: Option<(String, i64, time::OffsetDateTime)> = sqlx::query_as(
        "select p.currency, p.unit_amount * coalesce(s.quantity, 1), s.current_period_end
         from subscriptions s join prices p on p.id = s.price_id
         where s.stripe_customer_id = $1 and s.status in ('active', 'trialing', 'past_due')
           and not s.cancel_at_period_end and s.current_period_end is not null
         order by s.current_period_end desc limit 1",
    )
    .bind(&customer_id)
    .fetch_optional(&state.db)
    .await
    .map_err(AppError::from)?;
    let next_invoice =
        next.map(|(c, amount, at)| format!("{} on {}", format_money(amount, &c), date(at)));
    let past_due: Option<(String, i64, Option<String>)> = sqlx::query_as(
        "select i.currency, i.amount_remaining, i.hosted_invoice_url from invoices i
         where i.stripe_customer_id = $1 and i.status = 'open' and i.amount_remaining > 0 and i.attempt_count > 0
           and exists (select 1 from subscriptions s where s.id = i.subscription_id and s.status in ('past_due', 'unpaid', 'incomplete'))
         order by i.created desc limit 1",
    )
    .bind(&customer_id)
    .fetch_optional(&state.db)
    .await
    .map_err(AppError::from)?;
    let past_due = past_due.map(|(c, amount, url)| PastDue {
        amount: format_money(amount, &c),
        pay_url: url,
    });
    type InvoiceRecord = (
        time::OffsetDateTime,
        Option<String>,
        String,
        i64,
        String,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<InvoiceRecord> = sqlx::query_as(
        "select created, number, currency, total, status, hosted_invoice_url, invoice_pdf from invoices
         where stripe_customer_id = $1 and status <> 'draft'
         order by created desc, id desc limit $2 offset $3",
    )
    .bind(&customer_id)
    .bind(PAGE_SIZE + 1)
    .bind((page - 1) * PAGE_SIZE)
    .fetch_all(&state.db)
    .await
    .map_err(AppError::from)?;
    let has_more = rows.len() as i64 > PAGE_SIZE;
    let invoices = rows
        .into_iter()
        .take(PAGE_SIZE as usize)
        .map(
            |(created, number, currency, total, status, url, pdf)| InvoiceRow {
                date: date(created),
                number: number.unwrap_or_default(),
                amount: format_money(total, &currency),
                status: match status.as_str() {
                    "open" => "Due".into(),
                    "paid" => "Paid".into(),
                    "void" => "Void".into(),
                    "uncollectible" => "Uncollectible".into(),
                    other => other.to_owned(),
                },
                url,
                pdf,
            },
        )
        .collect();
    Ok(BillingView {
        email: user.email,
        plan,
        has_customer: true,
        next_invoice,
        card,
        past_due,
        invoices,
        page,
        has_more,
    })
}

/// "Manage billing": a Customer Portal session for the signed-in user's customer, and a
/// redirect to it. The customer comes from the session's user, never from the request.
#[server(prefix = "/api", endpoint = "billing/portal")]
pub async fn open_billing_portal() -> Result<(), ApiError> {
    use crate::error::AppError;
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    let customer: Option<String> =
        sqlx::query_scalar("select stripe_customer_id from customers where user_id = $1")
            .bind(user.id)
            .fetch_optional(&state.db)
            .await
            .map_err(AppError::from)?;
    let Some(customer) = customer else {
        return Err(AppError::BadRequest(
            "You have no billing account yet: choose a plan on the pricing page first.".into(),
        )
        .into());
    };
    let back = format!(
        "{}/settings/billing",
        state.config.app_url.as_str().trim_end_matches('/')
    );
    let url = portal::portal_url(&state.stripe, &state.db, &customer, &back).await?;
    leptos_axum::redirect(&url);
    Ok(())
}

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
    let pending = RwSignal::new(false);
    let manage = if b.has_customer {
        view! {
            <form method="post" action="/api/billing/portal" on:submit=move |_| pending.set(true)>
                <button class="button" type="submit" data-testid="manage-billing" disabled=move || pending.get()>
                    {move || if pending.get() { "Opening the billing portal…" } else { "Manage billing" }}
                </button>
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
                                        <td>{i.date}</td><td>{i.number}</td><td>{i.amount}</td><td>{i.status}</td>
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
