//! The license API for desktop apps: `POST /api/v1/licenses/{verify,activate,deactivate}`
//! with a JSON body `{"key": "…", "machine_id": "…"}`, JSON back.
//!
//! It answers about the key it was given and nothing else: no owner, no email. A malformed
//! key and an unknown one get the same answer, so the API cannot be used to learn which
//! keys exist; the check symbol refuses typos before the database is asked. Calls are
//! limited per key and per network (`LICENSE_API_PER_KEY_PER_MINUTE`,
//! `LICENSE_API_PER_NETWORK_PER_MINUTE`).

use super::{effective_status, key::LicenseKey, repo};
use crate::{
    accounts::{client_ip, Network},
    state::AppState,
};
use axum::{
    body::Bytes,
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};
use std::{net::SocketAddr, time::Duration};

const MAX_MACHINE_ID: usize = 128;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/licenses/verify", post(verify))
        .route("/api/v1/licenses/activate", post(activate))
        .route("/api/v1/licenses/deactivate", post(deactivate))
}

#[derive(Deserialize)]
struct Request {
    key: String,
    machine_id: Option<String>,
}

/// Why a call was refused; each answers a status and `{"error": code, "message": …}`.
#[derive(Debug)]
enum Refusal {
    BadRequest(&'static str),
    UnknownKey,
    NotActive(String),
    LimitReached,
    RateLimited,
    Internal,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, code, message) = match &self {
            Self::BadRequest(m) => (StatusCode::BAD_REQUEST, "bad_request", (*m).to_owned()),
            Self::UnknownKey => (
                StatusCode::NOT_FOUND,
                "invalid_key",
                "This is not a valid license key.".to_owned(),
            ),
            Self::NotActive(s) => (
                StatusCode::FORBIDDEN,
                "license_not_active",
                format!("This license is {s}."),
            ),
            Self::LimitReached => (
                StatusCode::CONFLICT,
                "activation_limit_reached",
                "This license is active on as many machines as it allows. Deactivate one first."
                    .to_owned(),
            ),
            Self::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests; try again in a minute.".to_owned(),
            ),
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Something went wrong; try again.".to_owned(),
            ),
        };
        let mut res = (status, Json(json!({ "error": code, "message": message }))).into_response();
        if matches!(self, Self::RateLimited) {
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
        }
        res
    }
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Self {
        tracing::error!(error = %e, "license API: database");
        Self::Internal
    }
}

/// The body as a request (a clear 400 when it is not one), the key parsed (`None` when
/// malformed), and the caller counted against the limits.
async fn admit(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Option<LicenseKey>, Option<String>), Refusal> {
    let request: Request = serde_json::from_slice(body)
        .map_err(|_| Refusal::BadRequest(r#"Send JSON: {"key": "XXXX-…", "machine_id": "…"}."#))?;
    let machine = match request.machine_id {
        Some(m) if m.is_empty() || m.len() > MAX_MACHINE_ID || m.chars().any(char::is_control) => {
            return Err(Refusal::BadRequest(
                "machine_id must be 1 to 128 printable characters.",
            ))
        }
        other => other,
    };
    let key = LicenseKey::parse(&request.key).ok();
    let network = Network::of(client_ip(peer.ip(), headers, &state.config.trusted_proxies));
    let mut keys = vec![format!("license-api-network:{network}")];
    keys.extend(key.as_ref().map(|k| format!("license-api-key:{k}")));
    let counts = crate::rate_limit::record(&state.db, &keys, Duration::from_secs(60)).await?;
    let over = counts.iter().any(|(k, n)| {
        let limit = if k.starts_with("license-api-key:") {
            state.config.license_api_per_key
        } else {
            state.config.license_api_per_network
        };
        i64::from(*n) > limit
    });
    if over {
        return Err(Refusal::RateLimited);
    }
    Ok((key, machine))
}

/// What a license is now, and the product's name.
async fn status_of(
    conn: &mut sqlx::PgConnection,
    license: &repo::LicenseRow,
) -> Result<(String, Option<String>), Refusal> {
    let product: Option<String> = sqlx::query_scalar("select name from products where id = $1")
        .bind(&license.product_id)
        .fetch_optional(&mut *conn)
        .await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let status = effective_status(
        &license.status,
        license.expires_at.map(|t| t.unix_timestamp()),
        now,
    );
    Ok((status.to_owned(), product))
}

fn rfc3339(t: Option<time::OffsetDateTime>) -> Value {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .map_or(Value::Null, Value::String)
}

/// `{valid, status, product, expires_at}` (and `activated` when a `machine_id` is given).
/// `valid` means the license works now, on that machine if one was named.
async fn verify(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Refusal> {
    let (key, machine) = admit(&state, peer, &headers, &body).await?;
    let invalid =
        json!({ "valid": false, "status": "invalid", "product": null, "expires_at": null });
    let Some(key) = key else {
        return Ok(Json(invalid));
    };
    let mut conn = state.db.acquire().await?;
    let Some(license) = repo::license_by_key(&mut conn, key.as_str()).await? else {
        return Ok(Json(invalid));
    };
    let (status, product) = status_of(&mut conn, &license).await?;
    let mut answer = json!({
        "valid": status == "active",
        "status": status,
        "product": product,
        "expires_at": rfc3339(license.expires_at),
    });
    if let Some(machine) = machine {
        let activated = repo::activations(&mut *conn, license.id)
            .await?
            .iter()
            .any(|(m, _)| *m == machine);
        answer["activated"] = json!(activated);
        answer["valid"] = json!(status == "active" && activated);
    }
    Ok(Json(answer))
}

/// A call about one key and one machine: the request admitted, the machine named, and the
/// license found and locked (two machines activating at once cannot both take the last
/// place).
async fn for_machine(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<
    (
        sqlx::Transaction<'static, sqlx::Postgres>,
        repo::LicenseRow,
        String,
    ),
    Refusal,
> {
    let (key, machine) = admit(state, peer, headers, body).await?;
    let machine = machine.ok_or(Refusal::BadRequest("machine_id is required."))?;
    let key = key.ok_or(Refusal::UnknownKey)?;
    let mut tx = state.db.begin().await?;
    let license = repo::license_by_key(&mut tx, key.as_str())
        .await?
        .ok_or(Refusal::UnknownKey)?;
    Ok((tx, license, machine))
}

/// Activates the key on `machine_id` (again is fine), within `max_activations`.
async fn activate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Refusal> {
    let (mut tx, license, machine) = for_machine(&state, peer, &headers, &body).await?;
    let (status, _) = status_of(&mut tx, &license).await?;
    if status != "active" {
        return Err(Refusal::NotActive(status));
    }
    let active = repo::activations(&mut *tx, license.id).await?;
    let already = active.iter().any(|(m, _)| *m == machine);
    if !already && active.len() >= license.max_activations as usize {
        return Err(Refusal::LimitReached);
    }
    if repo::activate(&mut tx, license.id, &machine).await? {
        repo::audit_machine(&mut tx, &license, "activated", &machine).await?;
    }
    tx.commit().await?;
    Ok(Json(json!({
        "activated": true,
        "machine_id": machine,
        "activations": active.len() + usize::from(!already),
        "max_activations": license.max_activations,
    })))
}

/// Frees `machine_id`'s activation (nothing to free is fine too).
async fn deactivate(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, Refusal> {
    let (mut tx, license, machine) = for_machine(&state, peer, &headers, &body).await?;
    let freed = repo::deactivate(&mut tx, license.id, &machine).await?;
    if freed {
        repo::audit_machine(&mut tx, &license, "deactivated", &machine).await?;
    }
    let left = repo::activations(&mut *tx, license.id).await?.len();
    tx.commit().await?;
    Ok(Json(
        json!({ "deactivated": freed, "machine_id": machine, "activations": left,
                    "max_activations": license.max_activations }),
    ))
}
