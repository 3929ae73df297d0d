//! Confirming an address: a single-use link mailed to it, valid for a day. Only a hash of
//! the token is stored, and the email and the token are written in one transaction.

use super::repo::{self, User};
use crate::{config::Config, email::account, error::AppError};
use sqlx::PgPool;
use std::time::Duration;
use uuid::Uuid;

const LINK_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// 244 random bits from the operating system's generator (two v4 UUIDs), as hex.
fn new_token() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// The hour a message belongs to: at most one of a kind per user and hour, however often
/// someone asks.
fn this_hour() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp() / 3600
}

/// Mails `user` a link that confirms their address.
pub async fn send_confirmation(db: &PgPool, config: &Config, user: &User) -> Result<(), AppError> {
    let token = new_token();
    let link = config.url(&format!("/verify-email?token={token}"));
    let occasion = format!("confirm-{}-{}", user.id, this_hour());
    let mut tx = db.begin().await?;
    if account::confirm_address(link)
        .queue(&mut tx, &occasion, user.id, &user.email)
        .await?
    {
        repo::store_verification_token(&mut *tx, user.id, &token, LINK_LIFETIME).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Tells the owner of a taken address that someone tried to sign up with it.
pub async fn tell_owner(db: &PgPool, config: &Config, owner: &User) -> Result<(), AppError> {
    let occasion = format!("taken-{}-{}", owner.id, this_hour());
    let mut conn = db.acquire().await?;
    account::address_taken(config.url("/login"))
        .queue(&mut conn, &occasion, owner.id, &owner.email)
        .await?;
    Ok(())
}

/// Uses a confirmation link; the user it confirmed, if it was valid.
pub async fn confirm(db: &PgPool, token: &str) -> Result<Option<User>, AppError> {
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    Ok(repo::use_verification_token(db, token).await?)
}
