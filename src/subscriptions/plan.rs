//! The user's plan in words, and what it entitles them to now.

use super::{entitlement::*, repo, PlanSummary};
use crate::{error::AppError, state::AppState, ui::format::long_date as date};
use time::OffsetDateTime;
use uuid::Uuid;

/// The user's most relevant subscription and its entitlement now: in the customer's
/// test-clock time in sandbox mode (`stripe::clock`).
pub async fn plan_for(state: &AppState, user: Uuid) -> Result<Option<PlanSummary>, AppError> {
    let Some(row) = repo::latest(&state.db, user).await? else {
        return Ok(None);
    };
    let now = crate::stripe::clock::now_for_customer(
        &state.stripe,
        crate::stripe::clock::follows_clocks(&state.config),
        &row.stripe_customer_id,
    )
    .await;
    let grace_days = state.config.grace_days;
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
        ("unpaid", _, _) => Some("Access is paused until the open invoice is paid.".to_owned()),
        ("incomplete", _, _) => Some(
            "Your first payment still needs you: pay the open invoice from billing settings within 23 hours, or the subscription will not start.".to_owned(),
        ),
        ("incomplete_expired", _, _) => Some(
            "The first payment was not completed in time, so this subscription never started.".to_owned(),
        ),
        ("paused", _, _) => Some(
            "Your trial ended without a payment method, so the subscription is paused.".to_owned(),
        ),
        _ => None,
    };
    Ok(Some(PlanSummary {
        product: row.product.unwrap_or_else(|| "Your plan".into()),
        price_id: row.price_id,
        status: status_words(&row.status).into(),
        timeline,
        cancel_at_period_end: row.cancel_at_period_end,
        entitlement,
        awaiting_first_payment: row.status == "incomplete",
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
