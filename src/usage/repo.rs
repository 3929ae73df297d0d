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
        Self::included_in(self.tiers.as_ref().map(|t| t.0.as_slice()))
    }

    pub fn included_in(tiers: Option<&[Tier]>) -> Option<i64> {
        let first = tiers?.first()?;
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

/// What the one-statement metered action found and did.
#[derive(Debug, sqlx::FromRow)]
pub struct Counted {
    pub subscription_id: String,
    pub period_start: OffsetDateTime,
    pub period_end: Option<OffsetDateTime>,
    pub usage_limit: Option<i64>,
    pub usage_overage: bool,
    pub tiers: Option<Json<Vec<Tier>>>,
    /// The new count; `None` when the hard limit refused it.
    pub used: Option<i64>,
    /// Whether the period's 80% warning has gone out.
    pub warned: Option<bool>,
}

/// The statement of [`count_action`] (`$1` the user, `$2` the source, `$3` now); the
/// benchmark runs it through pgbench too.
pub const COUNT_ACTION: &str = "with sub as (
             select s.id, s.current_period_start as period_start, s.current_period_end as period_end,
                    m.usage_limit, m.usage_overage, m.tiers,
                    case when m.usage_overage then null else m.usage_limit end as hard_limit
             from customers c
             join subscriptions s on s.stripe_customer_id = c.stripe_customer_id
             join prices m on m.id = s.metered_price_id
             where c.user_id = $1 and s.access_until > $3 and s.current_period_start is not null
             order by s.current_period_end desc limit 1),
         counted as (
             insert into usage_counters (subscription_id, period_start, used)
             select id, period_start, 1 from sub where hard_limit is null or hard_limit >= 1
             on conflict (subscription_id, period_start) do update set used = usage_counters.used + 1
                 where usage_counters.used < coalesce((select hard_limit from sub), 9223372036854775807)
             returning subscription_id, period_start, used, warned_at is not null as warned),
         recorded as (
             insert into usage_events (user_id, subscription_id, period_start, quantity, source)
             select $1, subscription_id, period_start, 1, $2 from counted)
         select sub.id as subscription_id, sub.period_start, sub.period_end, sub.usage_limit, sub.usage_overage,
                sub.tiers, counted.used, counted.warned
         from sub left join counted on true";

/// The metered action in one statement (so in one round trip, and one transaction): finds
/// the user's metered subscription that gives access now (`access_until`), bumps the
/// period's counter unless a hard limit refuses it, and records the usage event when it
/// counted. No row: no metered subscription with access. `now` is real time, or the
/// customer's test clock in sandbox mode (`stripe::clock`).
pub async fn count_action(
    db: impl PgExecutor<'_>,
    user: Uuid,
    source: &str,
    now: OffsetDateTime,
) -> sqlx::Result<Option<Counted>> {
    sqlx::query_as(COUNT_ACTION)
        .bind(user)
        .bind(source)
        .bind(now)
        .fetch_optional(db)
        .await
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
