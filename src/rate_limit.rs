//! Counted attempts in fixed windows, per key (an email, a network, a license key…): what
//! the login limits and the license API's limits are made of.

use sqlx::{PgExecutor, PgPool};
use std::time::Duration;

/// Records one attempt on each of `keys` and returns each key's count in the current
/// window, in one statement: the upsert locks each key's row, so concurrent attempts are
/// counted one after the other and each sees its own number. A window older than `window`
/// starts again at one.
pub async fn record(
    db: impl PgExecutor<'_>,
    keys: &[String],
    window: Duration,
) -> sqlx::Result<Vec<(String, i32)>> {
    sqlx::query_as(
        "insert into rate_limits (key, window_start, attempts)
         select k, now(), 1 from unnest($1::text[]) with ordinality as t(k, n) order by n
         on conflict (key) do update set
             attempts = case when rate_limits.window_start < now() - make_interval(secs => $2)
                             then 1 else rate_limits.attempts + 1 end,
             window_start = case when rate_limits.window_start < now() - make_interval(secs => $2)
                                 then now() else rate_limits.window_start end
         returning key, attempts",
    )
    .bind(keys)
    .bind(window.as_secs_f64())
    .fetch_all(db)
    .await
}

/// The count of `key` in its current window, without counting anything.
pub async fn current(db: impl PgExecutor<'_>, key: &str, window: Duration) -> sqlx::Result<i64> {
    let count: Option<i32> = sqlx::query_scalar(
        "select attempts from rate_limits where key = $1 and window_start >= now() - make_interval(secs => $2)",
    )
    .bind(key)
    .bind(window.as_secs_f64())
    .fetch_optional(db)
    .await?;
    Ok(count.map_or(0, i64::from))
}

/// After a successful login: the attempt does not count against the shared keys (email,
/// network), and the email-on-this-network key starts afresh.
pub async fn forgive(db: impl PgExecutor<'_>, shared: &[String], pair: &str) -> sqlx::Result<()> {
    sqlx::query(
        "with forgiven as (
             update rate_limits set attempts = greatest(attempts - 1, 0) where key = any($1))
         delete from rate_limits where key = $2",
    )
    .bind(shared)
    .bind(pair)
    .execute(db)
    .await?;
    Ok(())
}

/// Windows that ended a day ago no longer count for anything.
pub async fn prune(db: &PgPool) -> sqlx::Result<()> {
    sqlx::query("delete from rate_limits where window_start < now() - interval '1 day'")
        .execute(db)
        .await?;
    Ok(())
}
