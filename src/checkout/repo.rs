//! SQL for Checkout: what may be bought, and whether the webhook has recorded it yet.

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// Whether `price` is a recurring price the app offers (price and product active, the
/// product marked for sale here).
pub async fn recurring_price_on_sale(db: &PgPool, price: &str) -> sqlx::Result<bool> {
    let on_sale: Option<bool> = sqlx::query_scalar(
        "select pr.active and p.active and p.offered from prices pr join products p on p.id = pr.product_id
         where pr.id = $1 and pr.kind = 'recurring' and pr.usage_type = 'licensed'",
    )
    .bind(price)
    .fetch_optional(db)
    .await?;
    Ok(on_sale == Some(true))
}

/// The metered price that goes with a plan's price: its product's, for the same period.
pub async fn metered_companion(db: &PgPool, price: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "select m.id from prices p
         join prices m on m.product_id = p.product_id and m.usage_type = 'metered' and m.active
              and m.recurring_interval = p.recurring_interval
              and m.recurring_interval_count = p.recurring_interval_count
         where p.id = $1 order by m.id limit 1",
    )
    .bind(price)
    .fetch_optional(db)
    .await
}

/// The product of `price` when it is a one-time price of a licensed product the app offers.
pub async fn licensed_price_on_sale(db: &PgPool, price: &str) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "select p.id from prices pr join products p on p.id = pr.product_id
         where pr.id = $1 and pr.kind = 'one_time' and pr.active and p.active and p.offered
           and p.license is not null",
    )
    .bind(price)
    .fetch_optional(db)
    .await
}

/// The product and license key of the order a session created, once the webhook has.
pub async fn stored_purchase(
    db: &PgPool,
    session: &str,
) -> sqlx::Result<Option<(Option<String>, Option<String>)>> {
    sqlx::query_as(
        "select p.name, l.key from orders o
         left join products p on p.id = o.product_id
         left join licenses l on l.order_id = o.id
         where o.checkout_session_id = $1",
    )
    .bind(session)
    .fetch_optional(db)
    .await
}

/// `Some(product name)` once the webhook has stored the subscription (the name itself may
/// be unknown), `None` before.
pub async fn stored_subscription_product(
    db: &PgPool,
    subscription: &str,
) -> sqlx::Result<Option<(Option<String>, Option<time::OffsetDateTime>)>> {
    sqlx::query_as(
        "select p.name, case when s.status = 'trialing' then s.trial_end end
           from subscriptions s left join products p on p.id = s.product_id where s.id = $1",
    )
    .bind(subscription)
    .fetch_optional(db)
    .await
}

/// The user's Checkout Sessions that may still be open.
pub async fn open_sessions(db: impl PgExecutor<'_>, user: Uuid) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("select id from checkout_sessions where user_id = $1 and open")
        .bind(user)
        .fetch_all(db)
        .await
}

pub async fn close_session(db: impl PgExecutor<'_>, id: &str) -> sqlx::Result<()> {
    sqlx::query("update checkout_sessions set open = false where id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn record_session(db: impl PgExecutor<'_>, id: &str, user: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "insert into checkout_sessions (id, user_id) values ($1, $2) on conflict do nothing",
    )
    .bind(id)
    .bind(user)
    .execute(db)
    .await?;
    Ok(())
}

/// A claim on one user's checkout (`checkout_leases`): while it is held, no other request of
/// theirs starts one. Released when dropped, whichever way the request ends (an error, a
/// cancelled request), and in any case when it expires.
pub struct CheckoutLease {
    db: PgPool,
    user: Uuid,
    token: Uuid,
}

/// Takes the user's lease for `ttl` unless another request holds an unexpired one.
pub async fn try_lease(
    db: &PgPool,
    user: Uuid,
    ttl: std::time::Duration,
) -> sqlx::Result<Option<CheckoutLease>> {
    let token = Uuid::new_v4();
    let taken: Option<Uuid> = sqlx::query_scalar(
        "insert into checkout_leases (user_id, token, expires_at)
         values ($1, $2, now() + make_interval(secs => $3))
         on conflict (user_id) do update set token = excluded.token, expires_at = excluded.expires_at
           where checkout_leases.expires_at < now()
         returning token",
    )
    .bind(user)
    .bind(token)
    .bind(ttl.as_secs_f64())
    .fetch_optional(db)
    .await?;
    Ok(taken.map(|token| CheckoutLease {
        db: db.clone(),
        user,
        token,
    }))
}

impl Drop for CheckoutLease {
    fn drop(&mut self) {
        let (db, user, token) = (self.db.clone(), self.user, self.token);
        // Drop cannot wait; the statement runs on its own. Only this holder's token is
        // removed: after an expiry, the lease may be someone else's.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let released =
                    sqlx::query("delete from checkout_leases where user_id = $1 and token = $2")
                        .bind(user)
                        .bind(token)
                        .execute(&db)
                        .await;
                if let Err(e) = released {
                    tracing::warn!(error = %e, "a checkout lease stays until it expires");
                }
            });
        }
    }
}
