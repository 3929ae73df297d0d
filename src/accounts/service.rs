//! Account rules: validation, hashing off the async runtime, and the login limit.

use super::{
    domain::{Email, NewPassword},
    repo::{self, User},
};
use crate::{error::AppError, state::AppState};
use sqlx::PgPool;
use std::sync::OnceLock;

pub async fn sign_up(db: &PgPool, email: &str, password: &str) -> Result<User, AppError> {
    let email = Email::parse(email)?;
    let password = NewPassword::parse(password.to_owned())?;
    let hash = blocking(move || password_auth::generate_hash(password.into_inner())).await?;
    repo::insert_user(db, &email, &hash).await?.ok_or_else(|| {
        AppError::field(
            "email",
            "An account with this email already exists. Log in instead?",
        )
    })
}

/// Unknown email and wrong password give the same error and cost the same hashing time, so
/// the answer does not reveal who has an account.
pub async fn log_in(
    state: &AppState,
    email: &str,
    password: &str,
    ip: &str,
) -> Result<User, AppError> {
    let email = Email::parse(email)?;
    if password.is_empty() {
        return Err(AppError::field("password", "Enter your password."));
    }
    let db = &state.db;
    if repo::recent_failures(db, &email, ip, state.config.login_window).await?
        >= state.config.login_max_failures
    {
        return Err(AppError::RateLimited);
    }
    let user = repo::user_by_email(db, &email).await?;
    let hash = match &user {
        Some(u) => u.password_hash.clone(),
        None => dummy_hash().await?,
    };
    let password = password.to_owned();
    let matches = blocking(move || password_auth::verify_password(password, &hash).is_ok()).await?;
    match user {
        Some(user) if matches => {
            repo::clear_failures(db, &email, ip).await?;
            Ok(user)
        }
        _ => {
            repo::record_failure(db, &email, ip).await?;
            Err(AppError::InvalidCredentials)
        }
    }
}

/// A real Argon2 hash with our parameters, so a login for an unknown email does the same
/// work as one for a known email.
async fn dummy_hash() -> Result<String, AppError> {
    static HASH: OnceLock<String> = OnceLock::new();
    if let Some(h) = HASH.get() {
        return Ok(h.clone());
    }
    let h = blocking(|| password_auth::generate_hash("not-a-real-password")).await?;
    Ok(HASH.get_or_init(|| h).clone())
}

/// Argon2 takes tens of milliseconds of CPU: keep it off the async worker threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(AppError::internal)
}
