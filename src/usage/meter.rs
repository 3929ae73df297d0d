//! The metered action ("Run a report"), from the page or the API: counted in Postgres in
//! the action's own transaction, so the limit never asks Stripe and costs one statement;
//! the 80% warning goes out once per period; the reporter sends the usage to Stripe later.

use super::repo::{self, Metered};
use crate::{
    accounts::User,
    config::Config,
    email,
    error::AppError,
    subscriptions::entitlement::{entitlement, SubscriptionState},
};
use sqlx::PgPool;
use time::OffsetDateTime;

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

/// Whether `sub` gives access now.
pub fn has_access(sub: &Metered, grace_days: u32) -> bool {
    let state = SubscriptionState {
        status: sub.status.clone(),
        current_period_end: sub.period_end.map(OffsetDateTime::unix_timestamp),
        cancel_at_period_end: sub.cancel_at_period_end,
        past_due_since: sub.past_due_since.map(OffsetDateTime::unix_timestamp),
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    entitlement(&state, now, i64::from(grace_days) * 86_400).has_access()
}

/// Runs one metered action for `user`: checks access, counts it (refusing past a hard
/// limit), records the usage event, and queues the 80% warning the first time the period
/// passes it; all in one transaction.
pub async fn record(
    db: &PgPool,
    config: &Config,
    user: &User,
    source: Source,
) -> Result<Ran, Refused> {
    let sub = repo::metered_subscription(db, user.id)
        .await?
        .filter(|s| has_access(s, config.grace_days))
        .ok_or(Refused::NoAccess)?;
    let (Some(_), Some(period_start)) = (&sub.metered_price_id, sub.period_start) else {
        // A plan without metering: the action runs, nothing is counted.
        return Ok(Ran {
            used: 0,
            included: None,
            limit: None,
            metered: false,
        });
    };
    let hard_limit = sub.usage_limit.filter(|_| !sub.usage_overage);
    let mut tx = db.begin().await?;
    let Some(used) =
        repo::count_one(&mut tx, &sub.subscription_id, period_start, hard_limit).await?
    else {
        return Err(Refused::LimitReached {
            resets_at: sub.period_end.unwrap_or(period_start),
        });
    };
    repo::record_event(
        &mut tx,
        user.id,
        &sub.subscription_id,
        period_start,
        source.as_str(),
    )
    .await?;
    if let Some(limit) = sub.usage_limit {
        // 80%, in whole units: 160 of 200.
        if used * 5 >= limit * 4
            && repo::claim_warning(&mut tx, &sub.subscription_id, period_start).await?
        {
            let occasion = format!(
                "usage-80-{}-{}",
                sub.subscription_id,
                period_start.unix_timestamp()
            );
            email::usage::nearing_limit(used, limit, sub.usage_overage, &config.url("/dashboard"))
                .queue(&mut tx, &occasion, user.id, &user.email)
                .await?;
        }
    }
    tx.commit().await?;
    Ok(Ran {
        used,
        included: sub.included(),
        limit: sub.usage_limit,
        metered: true,
    })
}
