//! SQL for users and login attempts, written out where it is used.

use super::domain::Email;
use sqlx::{PgExecutor, PgPool};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
}

/// `None` when the email is taken (the unique constraint decides, so two concurrent signups
/// for one address cannot both win).
pub async fn insert_user(
    db: impl PgExecutor<'_>,
    email: &Email,
    password_hash: &str,
) -> sqlx::Result<Option<User>> {
    sqlx::query_as(
        "insert into users (email, password_hash) values ($1, $2)
         on conflict (email) do nothing
         returning id, email, password_hash",
    )
    .bind(email.as_str())
    .bind(password_hash)
    .fetch_optional(db)
    .await
}

pub async fn user_by_email(db: impl PgExecutor<'_>, email: &Email) -> sqlx::Result<Option<User>> {
    sqlx::query_as("select id, email, password_hash from users where email = $1")
        .bind(email.as_str())
        .fetch_optional(db)
        .await
}

pub async fn user_by_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<User>> {
    sqlx::query_as("select id, email, password_hash from users where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn recent_failures(
    db: impl PgExecutor<'_>,
    email: &Email,
    ip: &str,
    window: Duration,
) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select count(*) from login_failures
         where email = $1 and ip = $2 and attempted_at > now() - make_interval(secs => $3)",
    )
    .bind(email.as_str())
    .bind(ip)
    .bind(window.as_secs_f64())
    .fetch_one(db)
    .await
}

pub async fn record_failure(db: impl PgExecutor<'_>, email: &Email, ip: &str) -> sqlx::Result<()> {
    sqlx::query("insert into login_failures (email, ip) values ($1, $2)")
        .bind(email.as_str())
        .bind(ip)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn clear_failures(db: impl PgExecutor<'_>, email: &Email, ip: &str) -> sqlx::Result<()> {
    sqlx::query("delete from login_failures where email = $1 and ip = $2")
        .bind(email.as_str())
        .bind(ip)
        .execute(db)
        .await?;
    Ok(())
}

/// Failures older than a day no longer count towards any limit.
pub async fn prune_expired(db: &PgPool) -> sqlx::Result<()> {
    sqlx::query("delete from login_failures where attempted_at < now() - interval '1 day'")
        .execute(db)
        .await?;
    Ok(())
}
