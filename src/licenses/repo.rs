//! SQL for orders, licenses, their activations and their audit log.

use sqlx::{PgConnection, PgExecutor};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LicenseRow {
    pub id: Uuid,
    pub key: String,
    pub user_id: Uuid,
    pub product_id: String,
    pub status: String,
    pub max_activations: i32,
    pub expires_at: Option<OffsetDateTime>,
}

const LICENSE_COLUMNS: &str = "id, key, user_id, product_id, status, max_activations, expires_at";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    pub id: Uuid,
    pub user_id: Uuid,
    pub product_id: String,
    pub amount_total: i64,
    pub amount_refunded: i64,
    pub status: String,
}

pub struct NewOrder<'a> {
    pub user_id: Uuid,
    pub checkout_session_id: &'a str,
    pub payment_intent_id: Option<&'a str>,
    pub product_id: &'a str,
    pub price_id: Option<&'a str>,
    pub invoice_id: Option<&'a str>,
    pub amount_total: i64,
    pub currency: &'a str,
}

/// Creates the order for a completed Checkout Session, once: `None` if it exists already.
pub async fn insert_order(conn: &mut PgConnection, o: &NewOrder<'_>) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "insert into orders (user_id, checkout_session_id, payment_intent_id, product_id, price_id, invoice_id,
                             amount_total, currency)
         select $1, $2, $3, $4, $5, $6, $7, $8 where exists (select 1 from users where id = $1)
         on conflict (checkout_session_id) do nothing
         returning id",
    )
    .bind(o.user_id)
    .bind(o.checkout_session_id)
    .bind(o.payment_intent_id)
    .bind(o.product_id)
    .bind(o.price_id)
    .bind(o.invoice_id)
    .bind(o.amount_total)
    .bind(o.currency)
    .fetch_optional(conn)
    .await
}

/// The order paid through `payment_intent`, locked for the caller's transaction.
pub async fn order_by_payment_intent(
    conn: &mut PgConnection,
    payment_intent: &str,
) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as(
        "select id, user_id, product_id, amount_total, amount_refunded, status
         from orders where payment_intent_id = $1 for update",
    )
    .bind(payment_intent)
    .fetch_optional(conn)
    .await
}

pub async fn update_order(
    conn: &mut PgConnection,
    id: Uuid,
    amount_refunded: i64,
    status: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "update orders set amount_refunded = $2, status = $3, updated_at = now() where id = $1",
    )
    .bind(id)
    .bind(amount_refunded)
    .bind(status)
    .execute(conn)
    .await?;
    Ok(())
}

/// What Stripe has refunded of a payment, over all its charges.
pub async fn refunded_total(conn: &mut PgConnection, payment_intent: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select coalesce(sum(amount_refunded), 0)::bigint from charges where payment_intent_id = $1",
    )
    .bind(payment_intent)
    .fetch_one(conn)
    .await
}

/// The status of the payment's latest dispute, if it has one.
pub async fn dispute_status(
    conn: &mut PgConnection,
    payment_intent: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "select status from disputes where payment_intent_id = $1 order by stripe_as_of desc, id desc limit 1",
    )
    .bind(payment_intent)
    .fetch_optional(conn)
    .await
}

pub struct NewLicense<'a> {
    pub key: &'a str,
    pub user_id: Uuid,
    pub product_id: &'a str,
    pub order_id: Option<Uuid>,
    pub subscription_id: Option<&'a str>,
    pub max_activations: i32,
    pub expires_at: Option<OffsetDateTime>,
}

pub async fn insert_license(
    conn: &mut PgConnection,
    l: &NewLicense<'_>,
) -> sqlx::Result<LicenseRow> {
    sqlx::query_as(&format!(
        "insert into licenses (key, user_id, product_id, order_id, subscription_id, status, max_activations, expires_at)
         values ($1, $2, $3, $4, $5, 'active', $6, $7)
         returning {LICENSE_COLUMNS}"
    ))
    .bind(l.key)
    .bind(l.user_id)
    .bind(l.product_id)
    .bind(l.order_id)
    .bind(l.subscription_id)
    .bind(l.max_activations)
    .bind(l.expires_at)
    .fetch_one(conn)
    .await
}

pub async fn license_for_order(
    conn: &mut PgConnection,
    order: Uuid,
) -> sqlx::Result<Option<LicenseRow>> {
    sqlx::query_as(&format!(
        "select {LICENSE_COLUMNS} from licenses where order_id = $1 for update"
    ))
    .bind(order)
    .fetch_optional(conn)
    .await
}

pub async fn license_for_subscription(
    conn: &mut PgConnection,
    subscription: &str,
) -> sqlx::Result<Option<LicenseRow>> {
    sqlx::query_as(&format!(
        "select {LICENSE_COLUMNS} from licenses where subscription_id = $1 for update"
    ))
    .bind(subscription)
    .fetch_optional(conn)
    .await
}

/// The license with `key`, locked for the caller's transaction.
pub async fn license_by_key(
    conn: &mut PgConnection,
    key: &str,
) -> sqlx::Result<Option<LicenseRow>> {
    sqlx::query_as(&format!(
        "select {LICENSE_COLUMNS} from licenses where key = $1 for update"
    ))
    .bind(key)
    .fetch_optional(conn)
    .await
}

/// `user`'s license `id`, locked for the caller's transaction.
pub async fn owned_license(
    conn: &mut PgConnection,
    id: Uuid,
    user: Uuid,
) -> sqlx::Result<Option<LicenseRow>> {
    sqlx::query_as(&format!(
        "select {LICENSE_COLUMNS} from licenses where id = $1 and user_id = $2 for update"
    ))
    .bind(id)
    .bind(user)
    .fetch_optional(conn)
    .await
}

pub async fn set_status(conn: &mut PgConnection, id: Uuid, status: &str) -> sqlx::Result<()> {
    sqlx::query("update licenses set status = $2, updated_at = now() where id = $1")
        .bind(id)
        .bind(status)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_expires(
    conn: &mut PgConnection,
    id: Uuid,
    at: OffsetDateTime,
) -> sqlx::Result<()> {
    sqlx::query("update licenses set expires_at = $2, updated_at = now() where id = $1")
        .bind(id)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// One row of the audit log, in the caller's transaction.
pub async fn audit(
    conn: &mut PgConnection,
    license: Uuid,
    action: &str,
    actor_kind: &str,
    actor: &str,
    reason: Option<&str>,
    amount: Option<i64>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into license_events (license_id, action, actor_kind, actor, reason, amount)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(license)
    .bind(action)
    .bind(actor_kind)
    .bind(actor)
    .bind(reason)
    .bind(amount)
    .execute(conn)
    .await?;
    Ok(())
}

/// An activation or deactivation, by the license's owner, in the audit log.
pub async fn audit_machine(
    conn: &mut PgConnection,
    license: &LicenseRow,
    action: &str,
    machine: &str,
) -> sqlx::Result<()> {
    let reason = format!("machine {machine}");
    let owner = license.user_id.to_string();
    audit(
        conn,
        license.id,
        action,
        "customer",
        &owner,
        Some(&reason),
        None,
    )
    .await
}

pub async fn activations(
    db: impl PgExecutor<'_>,
    license: Uuid,
) -> sqlx::Result<Vec<(String, OffsetDateTime)>> {
    sqlx::query_as(
        "select machine_id, activated_at from license_activations where license_id = $1 order by activated_at, machine_id",
    )
    .bind(license)
    .fetch_all(db)
    .await
}

/// Activates `machine` once; whether it was new.
pub async fn activate(conn: &mut PgConnection, license: Uuid, machine: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "insert into license_activations (license_id, machine_id) values ($1, $2) on conflict do nothing",
    )
    .bind(license)
    .bind(machine)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deactivates `machine`; whether it was active.
pub async fn deactivate(
    conn: &mut PgConnection,
    license: Uuid,
    machine: &str,
) -> sqlx::Result<bool> {
    let done =
        sqlx::query("delete from license_activations where license_id = $1 and machine_id = $2")
            .bind(license)
            .bind(machine)
            .execute(conn)
            .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn user_email(conn: &mut PgConnection, user: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select email from users where id = $1")
        .bind(user)
        .fetch_optional(conn)
        .await
}

/// What the license pages show of one license.
#[derive(Debug, sqlx::FromRow)]
pub struct OwnedLicense {
    pub id: Uuid,
    pub key: String,
    pub product: Option<String>,
    pub status: String,
    pub max_activations: i32,
    pub expires_at: Option<OffsetDateTime>,
    pub issued_at: OffsetDateTime,
    pub from_subscription: bool,
    pub receipt_url: Option<String>,
}

pub async fn licenses_of(db: impl PgExecutor<'_>, user: Uuid) -> sqlx::Result<Vec<OwnedLicense>> {
    sqlx::query_as(
        "select l.id, l.key, p.name as product, l.status, l.max_activations, l.expires_at, l.issued_at,
                l.subscription_id is not null as from_subscription, i.hosted_invoice_url as receipt_url
         from licenses l
         left join products p on p.id = l.product_id
         left join orders o on o.id = l.order_id
         left join invoices i on i.id = o.invoice_id
         where l.user_id = $1
         order by l.issued_at desc, l.id",
    )
    .bind(user)
    .fetch_all(db)
    .await
}

#[derive(Debug, sqlx::FromRow)]
pub struct HistoryRow {
    pub license_id: Uuid,
    pub action: String,
    pub actor_kind: String,
    pub reason: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub created_at: OffsetDateTime,
}

/// The audit log of `licenses`, oldest first.
pub async fn history(db: impl PgExecutor<'_>, licenses: &[Uuid]) -> sqlx::Result<Vec<HistoryRow>> {
    sqlx::query_as(
        "select e.license_id, e.action, e.actor_kind, e.reason, e.amount, o.currency, e.created_at
         from license_events e
         join licenses l on l.id = e.license_id
         left join orders o on o.id = l.order_id
         where e.license_id = any($1)
         order by e.id",
    )
    .bind(licenses)
    .fetch_all(db)
    .await
}
