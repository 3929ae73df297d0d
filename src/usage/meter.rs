//! The metered action ("Run a report"), from the page or the API: counted in Postgres in
//! the action's own transaction, so the limit never asks Stripe and costs one statement;
//! the 80% warning goes out once per period; the reporter sends the usage to Stripe later.

use super::repo::{self, Metered};
use crate::{
    config::Config,
    email,
    error::AppError,
    subscriptions::entitlement::{entitlement, SubscriptionState},
};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// Where an action came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Web,
    Api,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Api => "api",
        }
    }
}

/// A counted action: the period's usage after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub used: i64,
    pub included: Option<i64>,
    pub limit: Option<i64>,
    /// The plan meters usage at all.
    pub metered: bool,
}

/// Why an action was not run.
#[derive(Debug)]
pub enum Refused {
    /// No subscription that gives access.
    NoAccess,
    /// The period's hard limit is reached; it resets at `resets_at`.
    LimitReached {
        resets_at: OffsetDateTime,
    },
    Failed(AppError),
}

impl From<sqlx::Error> for Refused {
    fn from(e: sqlx::Error) -> Self {
        Self::Failed(e.into())
    }
}

impl From<AppError> for Refused {
    fn from(e: AppError) -> Self {
        Self::Failed(e)
    }
}

/// Whether `sub` gives access at `now`.
pub fn has_access(sub: &Metered, grace_days: u32, now: OffsetDateTime) -> bool {
    let state = SubscriptionState {
        status: sub.status.clone(),
        current_period_end: sub.period_end.map(OffsetDateTime::unix_timestamp),
        cancel_at_period_end: sub.cancel_at_period_end,
        past_due_since: sub.past_due_since.map(OffsetDateTime::unix_timestamp),
    };
    entitlement(&state, now.unix_timestamp(), i64::from(grace_days) * 86_400).has_access()
}

/// Runs one metered action for `user`: checks access, counts it (refusing past a hard
/// limit) and records the usage event, in one statement; then, the first time the period
/// passes 80% of its limit, queues the warning. The warning has its own transaction: were
/// it lost to a crash, the next action past 80% finds it unsent and sends it. `now` is the
/// customer's (`stripe::clock`).
pub async fn record(
    db: &PgPool,
    config: &Config,
    user: Uuid,
    source: Source,
    now: OffsetDateTime,
) -> Result<Ran, Refused> {
    let Some(counted) = repo::count_action(db, user, source.as_str(), now).await? else {
        // No metered subscription with access: one without metering still runs the action.
        return unmetered(db, config, user, now).await;
    };
    let Some(used) = counted.used else {
        return Err(Refused::LimitReached {
            resets_at: counted.period_end.unwrap_or(counted.period_start),
        });
    };
    if let Some(limit) = counted.usage_limit {
        // 80%, in whole units: 160 of 200.
        if used * 5 >= limit * 4 && counted.warned == Some(false) {
            warn(db, config, user, &counted, used, limit).await?;
        }
    }
    let included = Metered::included_in(counted.tiers.as_ref().map(|t| t.0.as_slice()));
    Ok(Ran {
        used,
        included,
        limit: counted.usage_limit,
        metered: true,
    })
}

async fn unmetered(
    db: &PgPool,
    config: &Config,
    user: Uuid,
    now: OffsetDateTime,
) -> Result<Ran, Refused> {
    let sub = repo::metered_subscription(db, user)
        .await?
        .filter(|s| has_access(s, config.grace_days, now))
        .ok_or(Refused::NoAccess)?;
    if sub.metered_price_id.is_some() {
        // Metered, with access by the rule, but not by `access_until` (not worked out yet
        // for a row written before it existed): refuse rather than run uncounted.
        return Err(Refused::NoAccess);
    }
    Ok(Ran {
        used: 0,
        included: None,
        limit: None,
        metered: false,
    })
}

async fn warn(
    db: &PgPool,
    config: &Config,
    user: Uuid,
    counted: &repo::Counted,
    used: i64,
    limit: i64,
) -> Result<(), Refused> {
    let mut tx = db.begin().await?;
    if repo::claim_warning(&mut tx, &counted.subscription_id, counted.period_start).await? {
        let Some(user) = crate::accounts::user_by_id(&mut *tx, user).await? else {
            return Ok(());
        };
        let occasion = format!(
            "usage-80-{}-{}",
            counted.subscription_id,
            counted.period_start.unix_timestamp()
        );
        email::usage::nearing_limit(
            used,
            limit,
            counted.usage_overage,
            &config.url("/dashboard"),
        )
        .queue(&mut tx, &occasion, user.id, &user.email)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
