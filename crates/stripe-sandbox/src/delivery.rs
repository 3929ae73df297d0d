//! Webhook delivery: signed like Stripe, at least once, retried on a schedule, every attempt
//! recorded. Several app instances can run the worker; each due delivery is claimed by one.

use crate::{ids::chance, settings::Settings};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use sqlx::PgPool;
use std::{sync::Arc, time::Duration};

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, Stripe's `Stripe-Signature` header.
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length"); // ok: infallible for HMAC
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// A due delivery is leased for this long; a worker that dies mid-attempt loses the lease and
/// another instance retries.
const LEASE: &str = "60 seconds";

pub fn spawn_worker(db: PgPool, settings: Arc<Settings>) {
    let http = reqwest::Client::builder()
        .timeout(settings.delivery_timeout)
        .user_agent("Stripe/1.0 (+https://stripe.com/docs/webhooks)")
        .build()
        .unwrap_or_default();
    tokio::spawn(async move {
        let mut last_purge = std::time::Instant::now();
        loop {
            if last_purge.elapsed() > Duration::from_secs(3600) {
                last_purge = std::time::Instant::now();
                if let Err(e) = purge_expired_keys(&db).await {
                    tracing::warn!(error = %e, "could not purge expired idempotency keys");
                }
            }
            match deliver_due(&db, &http, &settings).await {
                Ok(0) => tokio::time::sleep(settings.poll_interval).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "webhook delivery round failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}

/// Idempotency keys expire after 24 hours (each is also expired when it is next used).
async fn purge_expired_keys(db: &PgPool) -> sqlx::Result<()> {
    sqlx::query("delete from stripe_sandbox.idempotency_keys where created_at < now() - interval '24 hours'")
        .execute(db)
        .await?;
    Ok(())
}

struct Due {
    id: i64,
    account: String,
    event_id: String,
    attempts: i32,
    url: Option<String>,
    secret: Option<String>,
    event: Value,
}

/// Claims up to 8 due deliveries and attempts each. Returns how many were attempted.
pub async fn deliver_due(
    db: &PgPool,
    http: &reqwest::Client,
    settings: &Settings,
) -> sqlx::Result<usize> {
    // With the reorder knob, new deliveries wait until none has arrived for the window, then
    // go newest first.
    let reorder = settings.chaos_reorder.as_secs_f64();
    let mut claimed: Vec<(i64, String, String, String, i32, i64)> = sqlx::query_as(&format!(
        "with due as (
             select id from stripe_sandbox.deliveries
             where status = 'pending' and next_attempt_at <= now()
               and ($1 = 0 or attempts > 0 or (
                   select max(created_at) from stripe_sandbox.deliveries
                   where status = 'pending' and attempts = 0) <= now() - make_interval(secs => $1))
             order by case when $1 > 0 then -id else 0 end, next_attempt_at, id
             limit 8
             for update skip locked)
         update stripe_sandbox.deliveries d
         set attempts = d.attempts + 1, next_attempt_at = now() + interval '{LEASE}'
         from due where d.id = due.id
         returning d.id, d.account, d.event_id, d.endpoint_id, d.attempts,
                   (select seq from stripe_sandbox.events e where e.account = d.account and e.id = d.event_id)"
    ))
    .bind(reorder)
    .fetch_all(db)
    .await?;
    claimed.sort_by_key(|row| if reorder > 0.0 { -row.5 } else { row.5 });
    let count = claimed.len();
    for (id, account, event_id, endpoint_id, attempts, _) in claimed {
        let (endpoint, event): (Option<Value>, Value) = sqlx::query_as(
            "select (select data from stripe_sandbox.objects where account = $1 and id = $2),
                    (select data from stripe_sandbox.events where account = $1 and id = $3)",
        )
        .bind(&account)
        .bind(&endpoint_id)
        .bind(&event_id)
        .fetch_one(db)
        .await?;
        let due = Due {
            id,
            account,
            event_id,
            attempts,
            url: endpoint
                .as_ref()
                .and_then(|e| e["url"].as_str().map(str::to_owned)),
            secret: endpoint
                .as_ref()
                .and_then(|e| e["secret"].as_str().map(str::to_owned)),
            event,
        };
        attempt(db, http, settings, due).await?;
    }
    Ok(count)
}

async fn attempt(
    db: &PgPool,
    http: &reqwest::Client,
    settings: &Settings,
    due: Due,
) -> sqlx::Result<()> {
    let outcome = match (&due.url, &due.secret) {
        (Some(url), Some(secret)) => {
            if !settings.chaos_delay.is_zero() {
                tokio::time::sleep(settings.chaos_delay).await;
            }
            let body = serde_json::to_vec(&due.event).unwrap_or_default();
            let result = post(http, url, secret, &body).await;
            // Chaos: Stripe may deliver the same event twice; so do we, when asked to.
            if result.is_ok() && chance(settings.chaos_duplicate) {
                let _ = post(http, url, secret, &body).await;
            }
            result
        }
        _ => Err("the endpoint was deleted".to_owned()),
    };
    let (status_code, error) = match &outcome {
        Ok(code) => (Some(i32::from(*code)), None),
        Err(e) => (None, Some(e.clone())),
    };
    let succeeded = matches!(outcome, Ok(code) if (200..300).contains(&code));
    sqlx::query("insert into stripe_sandbox.delivery_attempts (delivery_id, response_status, error) values ($1, $2, $3)")
        .bind(due.id)
        .bind(status_code)
        .bind(error)
        .execute(db)
        .await?;
    let retry_in = settings
        .retry_schedule
        .get(due.attempts as usize - 1)
        .copied();
    match (succeeded, retry_in, due.url.is_some()) {
        (true, _, _) => {
            sqlx::query("update stripe_sandbox.deliveries set status = 'succeeded' where id = $1")
                .bind(due.id)
                .execute(db)
                .await?;
        }
        (false, Some(wait), true) => {
            sqlx::query("update stripe_sandbox.deliveries set next_attempt_at = now() + make_interval(secs => $2) where id = $1")
                .bind(due.id)
                .bind(wait.as_secs_f64())
                .execute(db)
                .await?;
        }
        _ => {
            sqlx::query("update stripe_sandbox.deliveries set status = 'failed' where id = $1")
                .bind(due.id)
                .execute(db)
                .await?;
        }
    }
    // Stripe's `pending_webhooks`: deliveries not yet succeeded or given up.
    sqlx::query(
        "update stripe_sandbox.events set data = jsonb_set(data, '{pending_webhooks}', to_jsonb(
             (select count(*) from stripe_sandbox.deliveries where account = $1 and event_id = $2 and status = 'pending')))
         where account = $1 and id = $2",
    )
    .bind(&due.account)
    .bind(&due.event_id)
    .execute(db)
    .await?;
    Ok(())
}

async fn post(http: &reqwest::Client, url: &str, secret: &str, body: &[u8]) -> Result<u16, String> {
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    http.post(url)
        .header("content-type", "application/json; charset=utf-8")
        .header(
            "stripe-signature",
            signature_header(secret, timestamp, body),
        )
        .body(body.to_vec())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| {
            if e.is_timeout() {
                "timed out".to_owned()
            } else {
                "connection failed".to_owned()
            }
        })
}

/// Re-queues an event's deliveries (the dashboard's "resend").
pub async fn resend(db: &PgPool, account: &str, event_id: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "update stripe_sandbox.deliveries set status = 'pending', next_attempt_at = now()
         where account = $1 and event_id = $2",
    )
    .bind(account)
    .bind(event_id)
    .execute(db)
    .await?
    .rows_affected())
}

#[cfg(test)]
mod tests {
    #[test]
    fn signature_matches_stripes_documented_scheme() {
        // HMAC-SHA256("whsec_test", "1700000000.{}"), computed independently with openssl.
        let header = super::signature_header("whsec_test", 1_700_000_000, b"{}");
        assert_eq!(
            header,
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }
}
