//! SQL for users, login attempts and mailed links, written out where it is used.

use super::domain::Email;
use sha2::{Digest, Sha256};
use sqlx::{PgExecutor, PgPool};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub password_hash: String,
    /// When the owner opened the confirmation link we mailed; `None` until then.
    pub email_verified_at: Option<OffsetDateTime>,
}

const USER: &str = "select id, email, password_hash, email_verified_at from users";

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
         returning id, email, password_hash, email_verified_at",
    )
    .bind(email.as_str())
    .bind(password_hash)
    .fetch_optional(db)
    .await
}

pub async fn user_by_email(db: impl PgExecutor<'_>, email: &Email) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!("{USER} where email = $1"))
        .bind(email.as_str())
        .fetch_optional(db)
        .await
}

pub async fn user_by_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!("{USER} where id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Mailed links long expired no longer count for anything.
pub async fn prune_expired(db: &PgPool) -> sqlx::Result<()> {
    sqlx::query("delete from email_tokens where expires_at < now() - interval '7 days'")
        .execute(db)
        .await?;
    Ok(())
}

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Stores a single-use confirmation link for `user`, valid for `lifetime`; only its hash
/// is kept.
pub async fn store_verification_token(
    db: impl PgExecutor<'_>,
    user: Uuid,
    token: &str,
    lifetime: Duration,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into email_tokens (token_hash, user_id, purpose, expires_at)
         values ($1, $2, 'verify_email', now() + make_interval(secs => $3))",
    )
    .bind(token_hash(token))
    .bind(user)
    .bind(lifetime.as_secs_f64())
    .execute(db)
    .await?;
    Ok(())
}

/// Uses a confirmation link: once, before it expires. Marks the user's address confirmed
/// and returns the user, in one statement, so two clicks cannot both use it.
pub async fn use_verification_token(
    db: impl PgExecutor<'_>,
    token: &str,
) -> sqlx::Result<Option<User>> {
    sqlx::query_as(
        "with used as (
             update email_tokens set used_at = now()
             where token_hash = $1 and purpose = 'verify_email' and used_at is null and expires_at > now()
             returning user_id)
         update users set email_verified_at = coalesce(email_verified_at, now())
         where id = (select user_id from used)
         returning id, email, password_hash, email_verified_at",
    )
    .bind(token_hash(token))
    .fetch_optional(db)
    .await
}
