//! SQL for metering: the user's metered subscription, the period's counter, usage events,
//! the reports that carry them to Stripe, and API tokens.

use sqlx::{types::Json, PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

/// The user's subscription that gives access now, with its metered price (if any) and the
/// plan's limits.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Metered {
    pub subscription_id: String,
    pub stripe_customer_id: String,
    pub status: String,
    pub cancel_at_period_end: bool,
    pub past_due_since: Option<OffsetDateTime>,
    pub period_start: Option<OffsetDateTime>,
    pub period_end: Option<OffsetDateTime>,
    pub metered_price_id: Option<String>,
    pub usage_limit: Option<i64>,
    pub usage_overage: bool,
    pub tiers: Option<Json<Vec<Tier>>>,
    pub currency: Option<String>,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Tier {
    pub up_to: Option<i64>,
    pub unit_amount: Option<i64>,
    pub flat_amount: Option<i64>,
}

impl Metered {
    /// Units the price includes at no charge: its first tier, when that costs nothing.
    pub fn included(&self) -> Option<i64> {
        let first = self.tiers.as_ref()?.0.first()?;
        (first.unit_amount.unwrap_or(0) == 0 && first.flat_amount.unwrap_or(0) == 0)
            .then_some(first.up_to)
            .flatten()
    }

    /// The price of one unit beyond what is included.
    pub fn unit_beyond(&self) -> Option<i64> {
        self.tiers.as_ref()?.0.get(1)?.unit_amount
    }
}

/// The user's most relevant subscription (one that gives access first) with its meter.
pub async fn metered_subscription(
    db: impl PgExecutor<'_>,
    user: Uuid,
) -> sqlx::Result<Option<Metered>> {
    sqlx::query_as(
        "select s.id as subscription_id, s.stripe_customer_id, s.status, s.cancel_at_period_end, s.past_due_since,
                s.current_period_start as period_start, s.current_period_end as period_end,
                s.metered_price_id, m.usage_limit, coalesce(m.usage_overage, false) as usage_overage,
                m.tiers, m.currency
         from subscriptions s
         join customers c on c.stripe_customer_id = s.stripe_customer_id
         left join prices m on m.id = s.metered_price_id
         where c.user_id = $1
         order by (s.status in ('active', 'trialing', 'past_due')) desc, s.current_period_end desc nulls last
         limit 1",
    )
    .bind(user)
    .fetch_optional(db)
    .await
}

/// Counts one unit against the period's counter, unless that would pass `limit` (a hard
/// one): the new count, or `None` when refused. One statement: the row lock makes
/// concurrent callers count one after the other.
pub async fn count_one(
    conn: &mut PgConnection,
    subscription: &str,
    period_start: OffsetDateTime,
    limit: Option<i64>,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "insert into usage_counters (subscription_id, period_start, used)
         select $1, $2, 1 where $3::bigint is null or $3 >= 1
         on conflict (subscription_id, period_start) do update set used = usage_counters.used + 1
             where $3::bigint is null or usage_counters.used < $3
         returning used",
    )
    .bind(subscription)
    .bind(period_start)
    .bind(limit)
    .fetch_optional(conn)
    .await
}

pub async fn record_event(
    conn: &mut PgConnection,
    user: Uuid,
    subscription: &str,
    period_start: OffsetDateTime,
    source: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into usage_events (user_id, subscription_id, period_start, quantity, source)
         values ($1, $2, $3, 1, $4)",
    )
    .bind(user)
    .bind(subscription)
    .bind(period_start)
    .bind(source)
    .execute(conn)
    .await?;
    Ok(())
}

/// Marks the period warned; whether this call did (the first past the threshold).
pub async fn claim_warning(
    conn: &mut PgConnection,
    subscription: &str,
    period_start: OffsetDateTime,
) -> sqlx::Result<bool> {
    let claimed = sqlx::query(
        "update usage_counters set warned_at = now()
         where subscription_id = $1 and period_start = $2 and warned_at is null",
    )
    .bind(subscription)
    .bind(period_start)
    .execute(conn)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// The period's count so far and whether its warning went out.
pub async fn counter(
    db: impl PgExecutor<'_>,
    subscription: &str,
    period_start: OffsetDateTime,
) -> sqlx::Result<(i64, bool)> {
    let row: Option<(i64, bool)> = sqlx::query_as(
        "select used, warned_at is not null from usage_counters where subscription_id = $1 and period_start = $2",
    )
    .bind(subscription)
    .bind(period_start)
    .fetch_optional(db)
    .await?;
    Ok(row.unwrap_or((0, false)))
}

/// Units per day of the period (UTC days), in order.
pub async fn per_day(
    db: impl PgExecutor<'_>,
    subscription: &str,
    period_start: OffsetDateTime,
) -> sqlx::Result<Vec<(time::Date, i64)>> {
    sqlx::query_as(
        "select (occurred_at at time zone 'UTC')::date as day, sum(quantity)::bigint
         from usage_events where subscription_id = $1 and period_start = $2
         group by 1 order by 1",
    )
    .bind(subscription)
    .bind(period_start)
    .fetch_all(db)
    .await
}

/// A user's API token, found by its hash (revoked ones are not found): its id, its user,
/// and when it was last used.
pub async fn token_owner(
    db: impl PgExecutor<'_>,
    hash: &[u8],
) -> sqlx::Result<Option<(Uuid, Uuid, Option<OffsetDateTime>)>> {
    sqlx::query_as(
        "select id, user_id, last_used_at from api_tokens where token_hash = $1 and revoked_at is null",
    )
    .bind(hash)
    .fetch_optional(db)
    .await
}

pub async fn touch_token(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("update api_tokens set last_used_at = now() where id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn insert_token(
    db: impl PgExecutor<'_>,
    user: Uuid,
    name: &str,
    hash: &[u8],
    hint: &str,
) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "insert into api_tokens (user_id, name, token_hash, hint) values ($1, $2, $3, $4) returning id",
    )
    .bind(user)
    .bind(name)
    .bind(hash)
    .bind(hint)
    .fetch_one(db)
    .await
}

/// Revokes `user`'s token `id`; whether there was one to revoke.
pub async fn revoke_token(db: impl PgExecutor<'_>, user: Uuid, id: Uuid) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update api_tokens set revoked_at = now() where id = $1 and user_id = $2 and revoked_at is null",
    )
    .bind(id)
    .bind(user)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[derive(Debug, sqlx::FromRow)]
pub struct TokenRow {
    pub id: Uuid,
    pub name: String,
    pub hint: String,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

pub async fn tokens(db: impl PgExecutor<'_>, user: Uuid) -> sqlx::Result<Vec<TokenRow>> {
    sqlx::query_as(
        "select id, name, hint, created_at, last_used_at from api_tokens
         where user_id = $1 and revoked_at is null order by created_at desc",
    )
    .bind(user)
    .fetch_all(db)
    .await
}
