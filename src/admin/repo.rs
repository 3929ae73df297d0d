//! SQL for the admin page: orders and subscriptions by customer email, refund requests,
//! and the license audit log.

use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, sqlx::FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub email: String,
    pub product: Option<String>,
    pub amount_total: i64,
    pub amount_refunded: i64,
    pub currency: String,
    pub status: String,
    pub created_at: OffsetDateTime,
    pub license_status: Option<String>,
    /// What refund requests ask for in all (whether or not Stripe has confirmed them).
    pub requested: i64,
}

/// Orders, newest first, of users whose email contains `q` (all when empty).
pub async fn orders(db: impl PgExecutor<'_>, q: &str) -> sqlx::Result<Vec<OrderRow>> {
    sqlx::query_as(
        "select o.id, u.email, p.name as product, o.amount_total, o.amount_refunded, o.currency, o.status,
                o.created_at, l.status as license_status,
                coalesce((select sum(r.amount) from refund_requests r where r.order_id = o.id), 0)::bigint as requested
         from orders o join users u on u.id = o.user_id
         left join products p on p.id = o.product_id
         left join licenses l on l.order_id = o.id
         where u.email like '%' || $1 || '%'
         order by o.created_at desc limit 100",
    )
    .bind(escape_like(q))
    .fetch_all(db)
    .await
}

#[derive(Debug, sqlx::FromRow)]
pub struct SubscriptionRow {
    pub id: String,
    pub email: String,
    pub product: Option<String>,
    pub status: String,
    pub current_period_end: Option<OffsetDateTime>,
}

pub async fn subscriptions(db: impl PgExecutor<'_>, q: &str) -> sqlx::Result<Vec<SubscriptionRow>> {
    sqlx::query_as(
        "select s.id, u.email, p.name as product, s.status, s.current_period_end
         from subscriptions s
         join customers c on c.stripe_customer_id = s.stripe_customer_id
         join users u on u.id = c.user_id
         left join products p on p.id = s.product_id
         where u.email like '%' || $1 || '%'
         order by s.updated_at desc limit 100",
    )
    .bind(escape_like(q))
    .fetch_all(db)
    .await
}

#[derive(Debug, sqlx::FromRow)]
pub struct AuditRow {
    pub created_at: OffsetDateTime,
    pub email: String,
    pub product: Option<String>,
    pub action: String,
    pub actor_kind: String,
    pub actor: String,
    pub reason: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
}

/// The latest changes to licenses of users whose email contains `q`.
pub async fn audit_log(db: impl PgExecutor<'_>, q: &str) -> sqlx::Result<Vec<AuditRow>> {
    sqlx::query_as(
        "select e.created_at, u.email, p.name as product, e.action, e.actor_kind, e.actor, e.reason, e.amount,
                o.currency
         from license_events e
         join licenses l on l.id = e.license_id
         join users u on u.id = l.user_id
         left join products p on p.id = l.product_id
         left join orders o on o.id = l.order_id
         where u.email like '%' || $1 || '%'
         order by e.id desc limit 100",
    )
    .bind(escape_like(q))
    .fetch_all(db)
    .await
}

/// What a refund needs to know of an order, locked.
#[derive(Debug, sqlx::FromRow)]
pub struct Refundable {
    pub payment_intent_id: Option<String>,
    pub amount_total: i64,
    pub amount_refunded: i64,
    pub currency: String,
}

pub async fn refundable(conn: &mut PgConnection, order: Uuid) -> sqlx::Result<Option<Refundable>> {
    sqlx::query_as(
        "select payment_intent_id, amount_total, amount_refunded, currency from orders where id = $1 for update",
    )
    .bind(order)
    .fetch_optional(conn)
    .await
}

pub async fn record_refund_request(
    conn: &mut PgConnection,
    order: Uuid,
    amount: i64,
    reason: &str,
    admin: Uuid,
    stripe_refund: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into refund_requests (order_id, amount, reason, requested_by, stripe_refund_id)
         values ($1, $2, $3, $4, $5) on conflict (stripe_refund_id) do nothing",
    )
    .bind(order)
    .bind(amount)
    .bind(reason)
    .bind(admin)
    .bind(stripe_refund)
    .execute(conn)
    .await?;
    Ok(())
}

/// `q` matched literally: `%` and `_` are not wildcards here.
fn escape_like(q: &str) -> String {
    q.trim()
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
