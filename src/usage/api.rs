//! `POST /api/v1/reports` with `Authorization: Bearer sbt_…`: runs a report for the token's
//! owner, metered exactly as the dashboard's button is. JSON back: the report and the
//! period's usage; `429` with `Retry-After` (seconds to the next period) at a hard limit.

use super::{
    meter::{self, Refused, Source},
    tokens,
};
use crate::{
    accounts::{client_ip, Network},
    error::AppError,
    state::AppState,
};
use axum::{
    extract::{ConnectInfo, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use serde_json::json;
use std::{net::SocketAddr, time::Duration};

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/reports", post(run_report))
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "error": code, "message": message }))).into_response()
}

async fn run_report(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    // Guessing tokens is slow: a network's failed attempts are counted, and past the limit it
    // is refused before any token is looked at. A valid call writes nothing here.
    let network = Network::of(client_ip(
        peer.ip(),
        &headers,
        &state.config.trusted_proxies,
    ));
    let key = format!("reports-api-failures:{network}");
    let window = Duration::from_secs(60);
    // The two checks share one connection: each use of the pool costs a round trip of its own.
    let mut conn = match state.db.acquire().await {
        Ok(conn) => conn,
        Err(e) => return AppError::from(e).into_response(),
    };
    match crate::rate_limit::current(&mut *conn, &key, window).await {
        Ok(n) if n >= state.config.reports_api_failures_per_network => {
            let mut res = refuse(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many failed attempts; try again in a minute.",
            );
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            return res;
        }
        Ok(_) => {}
        Err(e) => return AppError::from(e).into_response(),
    }
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let user = match tokens::authenticate(&mut conn, token.trim()).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            if let Err(e) = crate::rate_limit::record(&mut *conn, &[key], window).await {
                return AppError::from(e).into_response();
            }
            let mut res = refuse(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "Send a live API token: Authorization: Bearer sbt_…",
            );
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return res;
        }
        Err(e) => return e.into_response(),
    };
    // Back to the pool before the clock (which may ask Stripe) and the action.
    drop(conn);
    let now = crate::stripe::clock::now_for_user(
        &state.stripe,
        crate::stripe::clock::follows_clocks(&state.config),
        &state.db,
        user,
    )
    .await;
    match meter::record(&state.db, &state.config, user, Source::Api, now).await {
        Ok(ran) => {
            let at = time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            (
                StatusCode::CREATED,
                Json(json!({
                    "report": format!("Report generated at {at}."),
                    "usage": { "used": ran.used, "included": ran.included, "limit": ran.limit },
                })),
            )
                .into_response()
        }
        Err(Refused::NoAccess) => refuse(
            StatusCode::FORBIDDEN,
            "no_subscription",
            "Reports are part of every paid plan: subscribe first.",
        ),
        Err(Refused::LimitReached { resets_at }) => {
            let wait = (resets_at - time::OffsetDateTime::now_utc())
                .whole_seconds()
                .max(1);
            let mut res = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({
                    "error": "usage_limit_reached",
                    "message": crate::error::Message::UsageLimitReached.text(),
                    "resets_at": resets_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
                })),
            )
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, value);
            }
            res
        }
        Err(Refused::Failed(e)) => e.into_response(),
    }
}
