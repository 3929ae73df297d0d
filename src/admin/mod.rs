//! `/admin`, for the users listed in `ADMIN_EMAILS`: orders and subscriptions searchable by
//! email, a refund for any order, and the license audit log. A refund only asks Stripe; the
//! order and its license change when Stripe's webhook says the refund happened. To anyone
//! else the page does not exist (404), and its server functions answer 403.

mod pages;
#[cfg(feature = "ssr")]
mod repo;

pub use pages::AdminPage;

use crate::error::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminView {
    pub query: String,
    pub orders: Vec<AdminOrder>,
    pub subscriptions: Vec<AdminSubscription>,
    pub audit: Vec<AdminAuditEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminOrder {
    pub id: String,
    pub email: String,
    pub product: String,
    pub amount: String,
    pub refunded: String,
    pub status: String,
    pub created: String,
    pub license: Option<String>,
    /// "Refund of $10.00 requested; waiting for Stripe", until the webhook brings it.
    pub pending: Option<String>,
    /// What is left to refund, as a person would type it (`49.00`); `None` when nothing is.
    pub refundable: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminSubscription {
    pub id: String,
    pub email: String,
    pub product: String,
    pub status: String,
    pub period_end: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminAuditEntry {
    pub when: String,
    pub email: String,
    pub product: String,
    pub what: String,
    pub by: String,
}

/// The reasons Stripe's Refunds API takes, as the form offers them.
pub const REFUND_REASONS: [(&str, &str); 3] = [
    ("requested_by_customer", "Requested by the customer"),
    ("duplicate", "Duplicate payment"),
    ("fraudulent", "Fraudulent payment"),
];

#[server(prefix = "/api", endpoint = "admin")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn admin_overview(q: Option<String>) -> Result<AdminView, ApiError> {
    let state = crate::state::AppState::get()?;
    server::require_admin(&state).await?;
    Ok(server::overview(&state, q.unwrap_or_default()).await?)
}

/// Asks Stripe to refund `amount` (all that is left when empty) of an order, for `reason`.
#[server(prefix = "/api", endpoint = "admin/refund")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn refund_order(
    order_id: String,
    amount: Option<String>,
    reason: String,
    q: Option<String>,
) -> Result<(), ApiError> {
    let state = crate::state::AppState::get()?;
    let admin = server::require_admin(&state).await?;
    server::refund(&state, &admin, &order_id, amount.as_deref(), &reason).await?;
    let back = match q.filter(|q| !q.trim().is_empty()) {
        Some(q) => format!("/admin?q={}&refunded=1", crate::ui::url_escape(q.trim())),
        None => "/admin?refunded=1".to_owned(),
    };
    leptos_axum::redirect(&back);
    Ok(())
}

#[cfg(feature = "ssr")]
mod server {
    use super::*;
    use crate::{
        accounts::User,
        catalog::money::{format_money, parse_amount},
        error::{AppError, Message},
        licenses::describe_action,
        state::AppState,
        ui::format::long_date,
    };
    use stripe_core::refund::{CreateRefund, CreateRefundReason};

    /// The logged-in admin; anyone else (logged in or not) is refused alike.
    pub async fn require_admin(state: &AppState) -> Result<User, AppError> {
        match crate::accounts::current_user(&state.db).await? {
            Some(user) if state.config.is_admin(&user.email) => Ok(user),
            _ => Err(AppError::Forbidden),
        }
    }

    pub async fn overview(state: &AppState, q: String) -> Result<AdminView, AppError> {
        let q = q.trim().chars().take(200).collect::<String>();
        let orders = repo::orders(&state.db, &q).await?;
        let subscriptions = repo::subscriptions(&state.db, &q).await?;
        let audit = repo::audit_log(&state.db, &q).await?;
        Ok(AdminView {
            orders: orders
                .into_iter()
                .map(|o| {
                    let money = |a: i64| format_money(a, &o.currency);
                    let left = o.amount_total - o.amount_refunded;
                    let waiting = o.requested - o.amount_refunded;
                    AdminOrder {
                        id: o.id.to_string(),
                        email: o.email,
                        product: o.product.unwrap_or_else(|| "–".into()),
                        amount: money(o.amount_total),
                        refunded: money(o.amount_refunded),
                        status: order_status(&o.status).into(),
                        created: long_date(o.created_at),
                        license: o.license_status,
                        pending: (waiting > 0).then(|| {
                            format!("Refund of {} requested; waiting for Stripe", money(waiting))
                        }),
                        refundable: (left > 0).then(|| {
                            // The amount as typed: without the currency symbol or grouping.
                            money(left)
                                .chars()
                                .filter(|c| c.is_ascii_digit() || *c == '.')
                                .collect()
                        }),
                    }
                })
                .collect(),
            subscriptions: subscriptions
                .into_iter()
                .map(|s| AdminSubscription {
                    id: s.id,
                    email: s.email,
                    product: s.product.unwrap_or_else(|| "–".into()),
                    status: s.status,
                    period_end: s.current_period_end.map(long_date).unwrap_or_default(),
                })
                .collect(),
            audit: audit
                .into_iter()
                .map(|e| AdminAuditEntry {
                    when: long_date(e.created_at),
                    email: e.email,
                    product: e.product.unwrap_or_else(|| "–".into()),
                    what: describe_action(
                        &e.action,
                        e.reason.as_deref(),
                        e.amount
                            .map(|a| format_money(a, e.currency.as_deref().unwrap_or("usd")))
                            .as_deref(),
                    ),
                    by: format!("{} {}", e.actor_kind, e.actor),
                })
                .collect(),
            query: q,
        })
    }

    fn order_status(status: &str) -> &'static str {
        match status {
            "paid" => "Paid",
            "partially_refunded" => "Partly refunded",
            "refunded" => "Refunded",
            _ => "Unknown",
        }
    }

    pub async fn refund(
        state: &AppState,
        admin: &User,
        order_id: &str,
        amount: Option<&str>,
        reason: &str,
    ) -> Result<(), AppError> {
        let order = uuid::Uuid::parse_str(order_id).map_err(|_| AppError::NotFound)?;
        let reason_param = match reason {
            "requested_by_customer" => CreateRefundReason::RequestedByCustomer,
            "duplicate" => CreateRefundReason::Duplicate,
            "fraudulent" => CreateRefundReason::Fraudulent,
            _ => return Err(AppError::field("reason", Message::RefundReasonInvalid)),
        };
        // Locked: two admins refunding one order at once ask Stripe one after the other.
        let mut tx = state.db.begin().await?;
        let found = repo::refundable(&mut tx, order)
            .await?
            .ok_or(AppError::NotFound)?;
        let Some(payment_intent) = found.payment_intent_id else {
            return Err(AppError::BadRequest(Message::RefundRefused));
        };
        let left = found.amount_total - found.amount_refunded;
        let amount = match amount.map(str::trim).filter(|a| !a.is_empty()) {
            None => left,
            Some(typed) => parse_amount(typed, &found.currency)
                .ok_or(AppError::field("amount", Message::RefundAmountInvalid))?,
        };
        if amount < 1 || amount > left {
            return Err(AppError::field("amount", Message::RefundAmountInvalid));
        }
        let create = CreateRefund::new()
            .payment_intent(payment_intent)
            .amount(amount)
            .reason(reason_param)
            .metadata([
                ("order_id".to_owned(), order.to_string()),
                ("requested_by".to_owned(), admin.id.to_string()),
            ]);
        // The order's state and the amount: a double click is one refund at Stripe, a second
        // refund after the first landed is another.
        let key = format!("refund-{order}-{}-{amount}", found.amount_refunded);
        let refund = match state.stripe.post(&create, &key).await {
            Ok(refund) => refund,
            Err(stripe::StripeError::Stripe(_, status)) if (400..500).contains(&status) => {
                return Err(AppError::BadRequest(Message::RefundRefused))
            }
            Err(e) => return Err(e.into()),
        };
        repo::record_refund_request(&mut tx, order, amount, reason, admin.id, refund.id.as_str())
            .await?;
        tx.commit().await?;
        tracing::info!(order = %order, amount, refund = refund.id.as_str(), "refund requested");
        Ok(())
    }
}
