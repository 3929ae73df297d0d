//! Account rules: validation, hashing off the async runtime (a few at a time), the login
//! limits, and signing up without telling a stranger who has an account.

use super::{
    domain::{Email, Network, NewPassword},
    repo::{self, User},
};
use crate::{
    config::Config,
    error::{AppError, Message},
};
use sqlx::PgPool;
use std::sync::OnceLock;
use tokio::sync::Semaphore;

/// What a sign-up did. The visitor is told the same either way: the owner of a taken
/// address gets an email instead of an account.
pub enum SignUp {
    Created(User),
    AddressTaken(User),
}

/// Each attempt is counted, per network and per address, before the password is hashed.
pub async fn sign_up(
    db: &PgPool,
    config: &Config,
    email: &str,
    password: &str,
    network: &Network,
) -> Result<SignUp, AppError> {
    let email = Email::parse(email)?;
    let password = NewPassword::parse(password.to_owned())?;
    let limits = [
        (
            format!("signup-net:{network}"),
            config.signup_max_per_network,
        ),
        (
            format!("signup-email:{}", email.as_str()),
            config.signup_max_per_email,
        ),
    ];
    let keys: Vec<String> = limits.iter().map(|(k, _)| k.clone()).collect();
    let counts = crate::rate_limit::record(db, &keys, config.signup_window).await?;
    if over_a_limit(&limits, &counts) {
        return Err(AppError::RateLimited);
    }
    // Hashed whether or not the address is free, so both answers take as long.
    let hash = hash_password(password.into_inner()).await?;
    match repo::insert_user(db, &email, &hash).await? {
        Some(user) => Ok(SignUp::Created(user)),
        None => repo::user_by_email(db, &email)
            .await?
            .map(SignUp::AddressTaken)
            .ok_or_else(|| AppError::internal("a taken address without its user")),
    }
}

/// The limits a login attempt counts against, and how many attempts each allows per window.
fn limits(config: &Config, email: &Email, network: &Network) -> [(String, i64); 3] {
    [
        (
            format!("email+net:{}|{network}", email.as_str()),
            config.login_max_failures,
        ),
        (
            format!("email:{}", email.as_str()),
            config.login_max_failures_per_email,
        ),
        (
            format!("net:{network}"),
            config.login_max_failures_per_network,
        ),
    ]
}

/// Unknown email and wrong password give the same error and cost the same hashing time, so
/// the answer does not reveal who has an account. Each attempt is counted before the
/// password is checked, against the email on this network, the email anywhere, and the
/// network for any email: parallel guesses cannot all pass the limit before it counts them.
pub async fn log_in(
    db: &PgPool,
    config: &Config,
    email: &str,
    password: &str,
    network: &Network,
) -> Result<User, AppError> {
    let email = Email::parse(email)?;
    if password.is_empty() {
        return Err(AppError::field("password", Message::EnterPassword));
    }
    if password.len() > NewPassword::MAX_BYTES {
        return Err(AppError::field("password", Message::PasswordTooLong));
    }
    let limits = limits(config, &email, network);
    let keys: Vec<String> = limits.iter().map(|(k, _)| k.clone()).collect();
    let counts = crate::rate_limit::record(db, &keys, config.login_window).await?;
    if over_a_limit(&limits, &counts) {
        return Err(AppError::RateLimited);
    }
    let user = repo::user_by_email(db, &email).await?;
    let password = password.to_owned();
    let matches = match &user {
        Some(u) => verify_password(password, u.password_hash.clone()).await?,
        None => against_dummy_hash(password).await?,
    };
    match user {
        Some(user) if matches => {
            crate::rate_limit::forgive(db, &keys[1..], &keys[0]).await?;
            Ok(user)
        }
        _ => Err(AppError::InvalidCredentials),
    }
}

/// Whether any key's count in this window is past its limit.
fn over_a_limit(limits: &[(String, i64)], counts: &[(String, i32)]) -> bool {
    limits.iter().any(|(key, limit)| {
        counts
            .iter()
            .any(|(k, count)| k == key && i64::from(*count) > *limit)
    })
}

/// Checks `password` against a real Argon2 hash with our parameters (never a match), so a
/// login for an unknown email does the same work as one for a known email. The hash is made
/// once, on the blocking thread of whichever login gets there first; the others wait for it
/// there rather than each queueing a hash of their own behind the flood.
async fn against_dummy_hash(password: String) -> Result<bool, AppError> {
    static HASH: OnceLock<String> = OnceLock::new();
    with_a_core(move || {
        let hash = HASH.get_or_init(|| password_auth::generate_hash("not-a-real-password"));
        password_auth::verify_password(password, hash).is_ok()
    })
    .await
}

pub async fn hash_password(password: String) -> Result<String, AppError> {
    with_a_core(move || password_auth::generate_hash(password)).await
}

async fn verify_password(password: String, hash: String) -> Result<bool, AppError> {
    with_a_core(move || password_auth::verify_password(password, &hash).is_ok()).await
}

/// Argon2 takes tens of milliseconds of CPU and about 19 MiB per hash: it runs off the async
/// workers, and no more at once than there are cores. Others wait their turn, so a flood of
/// logins queues up instead of starving every other request of CPU and memory.
async fn with_a_core<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let _permit = hashing_permits()
        .acquire()
        .await
        .map_err(AppError::internal)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(AppError::internal)
}

/// One permit per core.
pub fn hashing_permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    };

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_hashes_run_at_once_than_there_are_cores() {
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let work = (0..24).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            tokio::spawn(with_a_core(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
            }))
        });
        for task in work.collect::<Vec<_>>() {
            task.await.unwrap().unwrap();
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        assert!(most.load(Ordering::SeqCst) <= cores, "{most:?} > {cores}");
        assert!(most.load(Ordering::SeqCst) >= 1);
    }
}
