//! Billing settings: the plan, next invoice, card, past-due banner and invoice history, all
//! as the webhooks recorded them in Postgres; and "Manage billing", which opens the Stripe
//! Customer Portal for the signed-in user's own customer.

#[cfg(feature = "ssr")]
pub mod customer;
mod pages;
#[cfg(feature = "ssr")]
pub mod portal;
#[cfg(feature = "ssr")]
pub mod reconcile;
#[cfg(feature = "ssr")]
mod repo;
#[cfg(feature = "ssr")]
pub mod sync;

pub use pages::BillingSettingsPage;

use crate::{error::ApiError, subscriptions::PlanSummary};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Invoices per page of history.
pub const PAGE_SIZE: i64 = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRow {
    pub date: String,
    pub number: String,
    pub amount: String,
    /// "130 × Starter (usage): $3.00", one per line of the invoice.
    pub lines: Vec<String>,
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
    /// "$29.00 on December 6, 2026", as Stripe's invoice preview has it.
    pub next_invoice: Option<String>,
    /// "visa •••• 4242, expires 12/2034".
    pub card: Option<String>,
    pub past_due: Option<PastDue>,
    pub invoices: Vec<InvoiceRow>,
    pub page: i64,
    pub has_more: bool,
}

#[server(prefix = "/api", endpoint = "billing")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn billing_overview(page: i64) -> Result<BillingView, ApiError> {
    use crate::{catalog::money::format_money, error::AppError, ui::format::long_date};
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    let page = page.clamp(1, 10_000);
    let plan = crate::subscriptions::plan_for(&state, user.id).await?;
    let Some(customer) = repo::customer(&state.db, user.id)
        .await
        .map_err(AppError::from)?
    else {
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
    // Stripe's own preview: usage so far, tax, discounts and proration included.
    let next_invoice = match repo::live_subscription(&state.db, &customer.id)
        .await
        .map_err(AppError::from)?
    {
        Some(subscription) => crate::usage::estimate(&state, &subscription).await,
        None => None,
    };
    let past_due = repo::past_due(&state.db, &customer.id)
        .await
        .map_err(AppError::from)?
        .map(|p| PastDue {
            amount: format_money(p.amount, &p.currency),
            pay_url: p.url,
        });
    let (rows, has_more) = repo::invoice_page(&state.db, &customer.id, page, PAGE_SIZE)
        .await
        .map_err(AppError::from)?;
    let invoices = rows
        .into_iter()
        .map(|i| InvoiceRow {
            lines: i
                .lines
                .as_ref()
                .map(|l| {
                    l.0.iter()
                        .map(|line| {
                            format!(
                                "{}: {}",
                                line.description.clone().unwrap_or_default(),
                                format_money(line.amount, &i.currency)
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
            date: long_date(i.created),
            number: i.number.unwrap_or_default(),
            amount: format_money(i.total, &i.currency),
            status: match i.status.as_str() {
                "open" => "Due".into(),
                "paid" => "Paid".into(),
                "void" => "Void".into(),
                "uncollectible" => "Uncollectible".into(),
                other => other.to_owned(),
            },
            url: i.hosted_invoice_url,
            pdf: i.invoice_pdf,
        })
        .collect();
    Ok(BillingView {
        email: user.email,
        plan,
        has_customer: true,
        next_invoice,
        card: customer.card(),
        past_due,
        invoices,
        page,
        has_more,
    })
}

/// "Manage billing": a Customer Portal session for the signed-in user's customer, and a
/// redirect to it. The customer comes from the session's user, never from the request.
#[server(prefix = "/api", endpoint = "billing/portal")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn open_billing_portal() -> Result<(), ApiError> {
    use crate::error::AppError;
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    let Some(customer) = repo::customer(&state.db, user.id)
        .await
        .map_err(AppError::from)?
    else {
        return Err(AppError::BadRequest(crate::error::Message::NoBillingAccount).into());
    };
    let back = state.config.url("/settings/billing");
    let url = portal::portal_url(&state.stripe, &state.db, &customer.id, &back).await?;
    leptos_axum::redirect(&url);
    Ok(())
}
