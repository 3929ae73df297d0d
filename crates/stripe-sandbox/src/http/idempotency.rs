//! Idempotency-Key replay, as Stripe does it: the first response to a key is kept for 24
//! hours and replayed; the same key with other parameters is refused; a key whose first
//! request is still running answers 409; a request refused before it ran keeps nothing.

use super::{
    error::StripeError,
    extract::{Account, MAX_BODY},
};
use axum::{
    body::{to_bytes, Body},
    extract::{FromRequestParts, Request},
    http::{HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// Idempotency-Key: the first response to a key is stored and replayed for 24 hours; a key
/// reused with different parameters is refused; a key whose first request is still running
/// answers 409. Only POSTs take part, as on Stripe.
pub async fn idempotency(
    axum::extract::State(db): axum::extract::State<PgPool>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return next.run(req).await;
    };
    if key.is_empty() || key.len() > 255 {
        return StripeError::idempotency(
            StatusCode::BAD_REQUEST,
            "Idempotency keys must be 1 to 255 characters long.",
        )
        .into_response();
    }
    let (mut parts, body) = req.into_parts();
    let account = match Account::from_request_parts(&mut parts, &()).await {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let Ok(bytes) = to_bytes(body, MAX_BODY).await else {
        return StripeError::invalid("body", "The request body is too large.").into_response();
    };
    let fingerprint = fingerprint(parts.uri.path(), &bytes);
    match claim_key(&db, &account, &key, &fingerprint).await {
        Ok(Claim::Fresh) => {}
        Ok(Claim::Replay(status, body)) => {
            let mut res = (StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK), Json(body)).into_response();
            res.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            return res;
        }
        Ok(Claim::Mismatch) => {
            return StripeError::idempotency(
                StatusCode::BAD_REQUEST,
                format!("Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."),
            )
            .into_response()
        }
        Ok(Claim::InFlight) => {
            return StripeError::idempotency(
                StatusCode::CONFLICT,
                "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): please try again later.",
            )
            .into_response()
        }
        Err(e) => return StripeError::from(e).into_response(),
    }

    let mut pending = Pending {
        db: db.clone(),
        account: account.0.clone(),
        key: key.clone(),
        answered: false,
    };
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = res.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    // Stripe keeps no result for a request refused before it began (its parameters failed
    // validation, or name an object that does not exist): the same key may be sent again,
    // corrected. Anything that ran (a charge declined, a 500 mid-way) is kept and replayed.
    let refused_before_running = matches!(
        parts.status,
        StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND
    );
    let settled = if refused_before_running {
        sqlx::query("delete from stripe_sandbox.idempotency_keys where account = $1 and key = $2")
            .bind(&account.0)
            .bind(&key)
            .execute(&db)
            .await
    } else {
        let stored: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        sqlx::query(
            "update stripe_sandbox.idempotency_keys set status = $3, body = $4 where account = $1 and key = $2",
        )
        .bind(&account.0)
        .bind(&key)
        .bind(i32::from(parts.status.as_u16()))
        .bind(&stored)
        .execute(&db)
        .await
    };
    match settled {
        Ok(_) => pending.answered = true,
        Err(e) => tracing::warn!(error = %e, "could not settle an idempotency key"),
    }
    drop(pending);
    Response::from_parts(parts, Body::from(bytes))
}

/// A claimed key whose request has not been settled. Dropped so (the request cancelled
/// mid-way because its client went away), it frees the key: a retry then runs instead of
/// meeting "in progress" (409) for a day.
struct Pending {
    db: PgPool,
    account: String,
    key: String,
    answered: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        let (db, account, key) = (self.db.clone(), self.account.clone(), self.key.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let freed = sqlx::query(
                    "delete from stripe_sandbox.idempotency_keys
                     where account = $1 and key = $2 and status is null",
                )
                .bind(&account)
                .bind(&key)
                .execute(&db)
                .await;
                if let Err(e) = freed {
                    tracing::warn!(error = %e, "an idempotency key stays claimed until it expires");
                }
            });
        }
    }
}

/// What makes two requests "the same parameters": the path and the form's pairs in any
/// order. SDKs build forms from hash maps (metadata), so a retry of the same request may
/// list its pairs in another order; Stripe compares parameters, not bytes.
fn fingerprint(path: &str, body: &[u8]) -> String {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    pairs.sort();
    let mut hasher = Sha256::new();
    hasher.update(path.as_bytes());
    for (k, v) in pairs {
        hasher.update(b"\n");
        hasher.update(k.as_bytes());
        hasher.update(b"=");
        hasher.update(v.as_bytes());
    }
    hex::encode(hasher.finalize())
}

enum Claim {
    Fresh,
    Replay(i32, Value),
    Mismatch,
    InFlight,
}

async fn claim_key(
    db: &PgPool,
    account: &Account,
    key: &str,
    fingerprint: &str,
) -> sqlx::Result<Claim> {
    // A key is remembered for 24 hours; after that it may be used afresh.
    sqlx::query(
        "delete from stripe_sandbox.idempotency_keys
         where account = $1 and key = $2 and created_at < now() - interval '24 hours'",
    )
    .bind(&account.0)
    .bind(key)
    .execute(db)
    .await?;
    let inserted = sqlx::query(
        "insert into stripe_sandbox.idempotency_keys (account, key, fingerprint) values ($1, $2, $3)
         on conflict (account, key) do nothing",
    )
    .bind(&account.0)
    .bind(key)
    .bind(fingerprint)
    .execute(db)
    .await?
    .rows_affected();
    if inserted == 1 {
        return Ok(Claim::Fresh);
    }
    let (stored_fp, status, body): (String, Option<i32>, Option<Value>) = sqlx::query_as(
        "select fingerprint, status, body from stripe_sandbox.idempotency_keys where account = $1 and key = $2",
    )
    .bind(&account.0)
    .bind(key)
    .fetch_one(db)
    .await?;
    Ok(match (stored_fp == fingerprint, status) {
        (false, _) => Claim::Mismatch,
        (true, None) => Claim::InFlight,
        (true, Some(s)) => Claim::Replay(s, body.unwrap_or(Value::Null)),
    })
}

#[cfg(test)]
mod fingerprint_tests {
    use super::fingerprint;

    #[test]
    fn the_same_parameters_in_another_order_are_the_same_request() {
        let a = fingerprint("/v1/refunds", b"amount=100&metadata[a]=1&metadata[b]=2");
        let b = fingerprint("/v1/refunds", b"metadata[b]=2&amount=100&metadata%5Ba%5D=1");
        assert_eq!(a, b);
        assert_ne!(
            a,
            fingerprint("/v1/refunds", b"amount=101&metadata[a]=1&metadata[b]=2")
        );
        assert_ne!(
            a,
            fingerprint("/v1/charges", b"amount=100&metadata[a]=1&metadata[b]=2")
        );
    }
}
