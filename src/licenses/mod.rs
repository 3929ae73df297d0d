//! License keys: one per one-time purchase of a licensed product, and one per subscription.
//! The webhooks issue, renew, suspend, restore, revoke and cancel them (`sync`); customers
//! see theirs on `/licenses` and free a machine there; desktop apps verify and activate keys
//! through a small JSON API (`api`). Every change is in the append-only audit log.

#[cfg(feature = "ssr")]
pub mod api;
#[cfg(feature = "ssr")]
pub mod key;
mod pages;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod sync;

pub use pages::LicensesPage;

use crate::error::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Machines a license may run on when its product does not say (`max_activations`).
pub const DEFAULT_MAX_ACTIVATIONS: i32 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LicenseView {
    pub id: String,
    pub product: String,
    pub key: String,
    pub masked_key: String,
    /// `active`, `expired`, `suspended`, `revoked` or `cancelled`.
    pub status: String,
    /// The status in a sentence.
    pub explanation: String,
    /// "Lifetime license" or "With your subscription".
    pub kind: String,
    pub issued: String,
    pub expires: Option<String>,
    pub max_activations: i32,
    pub activations: Vec<ActivationView>,
    pub receipt_url: Option<String>,
    pub history: Vec<HistoryView>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationView {
    pub machine_id: String,
    pub since: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryView {
    pub when: String,
    pub what: String,
}

/// What a license's status is now: `expired` once a subscription license's date has passed
/// (until a renewal moves it), else the stored status.
pub fn effective_status(status: &str, expires_at: Option<i64>, now: i64) -> &str {
    match (status, expires_at) {
        ("active", Some(end)) if end <= now => "expired",
        (status, _) => status,
    }
}

/// The status in a sentence, for the license page and email.
pub fn explain(status: &str, expires: Option<&str>) -> String {
    match (status, expires) {
        ("active", Some(until)) => {
            format!("This license is active until {until}, and renews with your subscription.")
        }
        ("active", None) => "This license is active, for good.".to_owned(),
        ("expired", Some(on)) => {
            format!("This license expired on {on}: renew your subscription to use it again.")
        }
        ("suspended", _) => {
            "This license is suspended until its payment is settled; it does not verify meanwhile."
                .to_owned()
        }
        ("revoked", _) => {
            "This license was revoked (refunded or charged back) and no longer works.".to_owned()
        }
        ("cancelled", _) => "This license was cancelled with its subscription.".to_owned(),
        (other, _) => format!("This license is {other}."),
    }
}

/// An audit row in words.
pub fn describe_action(action: &str, reason: Option<&str>, amount: Option<&str>) -> String {
    let base = match action {
        "issued" => "Issued",
        "renewed" => "Renewed",
        "suspended" => "Suspended",
        "restored" => "Restored",
        "revoked" => "Revoked",
        "cancelled" => "Cancelled",
        "activated" => "Activated",
        "deactivated" => "Deactivated",
        "partially_refunded" => "Partly refunded",
        other => other,
    };
    match (amount, reason) {
        (Some(amount), Some(reason)) => format!("{base}: {reason} ({amount})"),
        (Some(amount), None) => format!("{base} ({amount})"),
        (None, Some(reason)) => format!("{base}: {reason}"),
        (None, None) => base.to_owned(),
    }
}

/// The logged-in user's licenses, newest first, each with its machines and history.
#[server(prefix = "/api", endpoint = "licenses")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn my_licenses() -> Result<Vec<LicenseView>, ApiError> {
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    Ok(views::of_user(&state.db, user.id).await?)
}

/// Frees one of the user's activations, so the key can be used on another machine.
#[server(prefix = "/api", endpoint = "licenses/deactivate")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn deactivate_machine(license_id: String, machine_id: String) -> Result<(), ApiError> {
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    views::deactivate(&state.db, &user, &license_id, &machine_id).await?;
    leptos_axum::redirect("/licenses");
    Ok(())
}

#[cfg(feature = "ssr")]
mod views {
    use super::*;
    use crate::{catalog::money::format_money, error::AppError, ui::format::long_date};
    use sqlx::PgPool;
    use uuid::Uuid;

    /// Frees one of `user`'s machines. Someone else's license, or none, is the same 404.
    pub async fn deactivate(
        db: &PgPool,
        user: &crate::accounts::User,
        license: &str,
        machine: &str,
    ) -> Result<(), AppError> {
        let id = Uuid::parse_str(license).map_err(|_| AppError::NotFound)?;
        let mut tx = db.begin().await?;
        let license = repo::owned_license(&mut tx, id, user.id)
            .await?
            .ok_or(AppError::NotFound)?;
        if repo::deactivate(&mut tx, license.id, machine).await? {
            repo::audit_machine(&mut tx, &license, "deactivated", machine).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn of_user(db: &PgPool, user: Uuid) -> Result<Vec<LicenseView>, AppError> {
        let owned = repo::licenses_of(db, user).await?;
        let ids: Vec<Uuid> = owned.iter().map(|l| l.id).collect();
        let history = repo::history(db, &ids).await?;
        let now = time::OffsetDateTime::now_utc();
        let mut views = Vec::with_capacity(owned.len());
        for l in owned {
            let status = effective_status(
                &l.status,
                l.expires_at.map(|t| t.unix_timestamp()),
                now.unix_timestamp(),
            )
            .to_owned();
            let expires = l.expires_at.map(long_date);
            let activations = repo::activations(db, l.id)
                .await?
                .into_iter()
                .map(|(machine_id, since)| ActivationView {
                    machine_id,
                    since: long_date(since),
                })
                .collect();
            views.push(LicenseView {
                id: l.id.to_string(),
                product: l.product.unwrap_or_else(|| "Product".into()),
                masked_key: key::LicenseKey::masked(&l.key),
                key: l.key,
                explanation: explain(&status, expires.as_deref()),
                status,
                kind: if l.from_subscription {
                    "With your subscription".into()
                } else {
                    "Lifetime license".into()
                },
                issued: long_date(l.issued_at),
                expires,
                max_activations: l.max_activations,
                activations,
                receipt_url: l.receipt_url,
                history: history
                    .iter()
                    .filter(|h| h.license_id == l.id)
                    .map(|h| HistoryView {
                        when: long_date(h.created_at),
                        what: describe_action(
                            &h.action,
                            h.reason.as_deref(),
                            h.amount
                                .map(|a| format_money(a, h.currency.as_deref().unwrap_or("usd")))
                                .as_deref(),
                        ),
                    })
                    .collect(),
            });
        }
        Ok(views)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_license_past_its_date_reads_as_expired() {
        assert_eq!(effective_status("active", Some(100), 99), "active");
        assert_eq!(effective_status("active", Some(100), 100), "expired");
        assert_eq!(effective_status("active", None, 1_000), "active");
        assert_eq!(effective_status("revoked", Some(100), 1_000), "revoked");
    }

    #[test]
    fn audit_rows_read_as_sentences() {
        assert_eq!(
            describe_action("revoked", Some("refunded"), None),
            "Revoked: refunded"
        );
        assert_eq!(
            describe_action("partially_refunded", Some("partial refund"), Some("$10.00")),
            "Partly refunded: partial refund ($10.00)"
        );
    }
}
