//! SQL for the user's subscription: the one that matters most, as the webhooks recorded it.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
pub struct PlanRow {
    pub product: Option<String>,
    pub price_id: Option<String>,
    pub status: String,
    pub current_period_end: Option<OffsetDateTime>,
    pub trial_end: Option<OffsetDateTime>,
    pub cancel_at_period_end: bool,
    pub past_due_since: Option<OffsetDateTime>,
    pub stripe_customer_id: String,
}

/// The user's most relevant subscription: one that still grants access first, then the
/// latest to end.
pub async fn latest(db: &PgPool, user: Uuid) -> sqlx::Result<Option<PlanRow>> {
    sqlx::query_as(
        "select p.name as product, s.price_id, s.status, s.current_period_end, s.trial_end, s.cancel_at_period_end, s.past_due_since,
                s.stripe_customer_id
         from subscriptions s
         join customers c on c.stripe_customer_id = s.stripe_customer_id
         left join products p on p.id = s.product_id
         where c.user_id = $1
         order by (s.status in ('active', 'trialing', 'past_due')) desc, s.current_period_end desc nulls last
         limit 1",
    )
    .bind(user)
    .fetch_optional(db)
    .await
}

/// When the user signed up.
pub async fn member_since(db: &PgPool, user: Uuid) -> sqlx::Result<OffsetDateTime> {
    sqlx::query_scalar("select created_at from users where id = $1")
        .bind(user)
        .fetch_one(db)
        .await
}

/// Whether the user has had a free trial (Stripe reported one of theirs).
pub async fn trial_used(db: &PgPool, user: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("select trial_used_at is not null from users where id = $1")
        .bind(user)
        .fetch_one(db)
        .await
}
