//! Webhook delivery: signed like Stripe, at least once, retried on a schedule, every attempt
//! recorded. Several app instances can run the worker; each due delivery is claimed by one.

use crate::{
    http::Account,
    ids::chance,
    settings::{PrivateWebhooks, Settings},
};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use sqlx::PgPool;
use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

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

/// Whether `ip` is on the public internet: not loopback, private, link-local, shared
/// (carrier-grade NAT), unspecified, multicast or documentation space, in IPv4 or IPv6
/// (including IPv4 addresses written as IPv6).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00 // unique local
                    || (first & 0xffc0) == 0xfe80 // link-local
                    || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
            }
        },
    }
}

/// Resolves names to public addresses only, at connect time: a name that points at a
/// private address (or is made to, between a check and the connection) is never reached.
struct PublicAddressesOnly;

impl reqwest::dns::Resolve for PublicAddressesOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let public: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The two ways out: to public addresses only, or anywhere (for the accounts allowed to).
/// Neither follows redirects: a delivery goes to the endpoint's URL and nowhere else.
struct Clients {
    public_only: reqwest::Client,
    anywhere: reqwest::Client,
    private_allowed: PrivateWebhooks,
}

impl Clients {
    fn new(settings: &Settings) -> Self {
        let builder = || {
            reqwest::Client::builder()
                .timeout(settings.delivery_timeout)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("Stripe/1.0 (+https://stripe.com/docs/webhooks)")
        };
        Self {
            public_only: builder()
                .dns_resolver(Arc::new(PublicAddressesOnly))
                .build()
                .unwrap_or_default(),
            anywhere: builder().build().unwrap_or_default(),
            private_allowed: settings.private_webhooks.clone(),
        }
    }

    fn for_account(&self, account: &str) -> (&reqwest::Client, bool) {
        let private = match &self.private_allowed {
            PrivateWebhooks::Refused => false,
            PrivateWebhooks::Allowed => true,
            PrivateWebhooks::ForKeys(keys) => keys.iter().any(|k| Account::for_key(k).0 == account),
        };
        if private {
            (&self.anywhere, true)
        } else {
            (&self.public_only, false)
        }
    }
}

pub fn spawn_worker(db: PgPool, settings: Arc<Settings>) {
    let http = Clients::new(&settings);
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
async fn deliver_due(db: &PgPool, http: &Clients, settings: &Settings) -> sqlx::Result<usize> {
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

async fn attempt(db: &PgPool, http: &Clients, settings: &Settings, due: Due) -> sqlx::Result<()> {
    let (http, private_allowed) = http.for_account(&due.account);
    let outcome = match (&due.url, &due.secret) {
        (Some(url), Some(_)) if !private_allowed && names_a_private_address(url) => {
            Err("refused: the endpoint's address is not public".to_owned())
        }
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

/// Whether `text` appears anywhere in the error's chain of causes.
fn caused_by(e: &dyn std::error::Error, text: &str) -> bool {
    let mut cause = e.source();
    while let Some(c) = cause {
        if c.to_string().contains(text) {
            return true;
        }
        cause = c.source();
    }
    false
}

/// A URL whose host is written as a private IP address (names are checked when they are
/// resolved, by [`PublicAddressesOnly`]).
fn names_a_private_address(url: &str) -> bool {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(ip)) => !is_public(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => !is_public(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => false,
        None => true,
    }
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
            } else if caused_by(&e, "no public address") {
                "refused: the endpoint's address is not public".to_owned()
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
    use super::is_public;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

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
