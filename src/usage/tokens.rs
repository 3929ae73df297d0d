//! Personal API tokens for `POST /api/v1/reports`: made on the settings page, shown once,
//! kept only as a SHA-256 hash, revoked there too.

use super::{repo, TokenView, TokensView};
use crate::{
    error::{AppError, Message},
    ui::format::long_date,
};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Where a token just made waits, in the maker's session, to be shown once.
const FRESH: &str = "fresh_api_token";
const PREFIX: &str = "sbt_";

/// 192 random bits from the operating system, as hex, after a prefix that says what it is
/// (so a leaked one is recognisable in logs and scanners).
fn new_token() -> Result<String, AppError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(AppError::internal)?;
    Ok(format!("{PREFIX}{}", hex::encode(bytes)))
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub async fn create(db: &PgPool, user: Uuid, name: &str) -> Result<(), AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(AppError::field("name", Message::TokenNameInvalid));
    }
    let token = new_token()?;
    let hint = token[token.len() - 4..].to_owned();
    repo::insert_token(db, user, name, &hash(&token), &hint).await?;
    crate::accounts::flash(FRESH, token).await?;
    Ok(())
}

pub async fn revoke(db: &PgPool, user: Uuid, id: &str) -> Result<(), AppError> {
    let id = Uuid::parse_str(id).map_err(|_| AppError::NotFound)?;
    if !repo::revoke_token(db, user, id).await? {
        return Err(AppError::NotFound);
    }
    Ok(())
}

pub async fn list(db: &PgPool, user: Uuid) -> Result<TokensView, AppError> {
    let tokens = repo::tokens(db, user)
        .await?
        .into_iter()
        .map(|t| TokenView {
            id: t.id.to_string(),
            name: t.name,
            hint: t.hint,
            created: long_date(t.created_at),
            last_used: t.last_used_at.map(long_date),
        })
        .collect();
    let fresh = crate::accounts::take_flash(FRESH).await?;
    Ok(TokensView { tokens, fresh })
}

/// The user a bearer token belongs to, if it is a live token. Its last use is written at
/// most once a minute (a write per call would cost every call).
pub async fn authenticate(conn: &mut PgConnection, token: &str) -> Result<Option<Uuid>, AppError> {
    if !token.starts_with(PREFIX) || token.len() > 100 {
        return Ok(None);
    }
    let Some((id, user, last_used)) = repo::token_owner(&mut *conn, &hash(token)).await? else {
        return Ok(None);
    };
    let stale =
        last_used.is_none_or(|t| t < time::OffsetDateTime::now_utc() - time::Duration::minutes(1));
    if stale {
        repo::touch_token(conn, id).await?;
    }
    Ok(Some(user))
}
