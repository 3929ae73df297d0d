//! The session is the only source of the user's identity.

use super::{
    domain::Network,
    repo::{self, User},
};
use crate::{error::AppError, state::AppState, ui::login_path};
use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, Method},
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use ipnet::IpNet;
use sqlx::PgPool;
use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};
use tower_sessions::Session;

/// The session cookie's name; `__Host-` prefixed ([`SECURE_SESSION_COOKIE`]) when Secure,
/// which pins it to this exact host and path `/`: no subdomain can set or overwrite it.
/// Anything that must tell a visitor with a session apart (the kept pricing page) looks for
/// this name.
pub const SESSION_COOKIE: &str = "sb_session";
pub const SECURE_SESSION_COOKIE: &str = "__Host-sb_session";
use uuid::Uuid;

const USER_ID: &str = "user_id";
/// When the user logged in (unix seconds): a login ends `SESSION_MAX_AGE_DAYS` later, however
/// active it stays.
const LOGGED_IN_AT: &str = "logged_in_at";

/// Pages behind the login wall. Server functions check again on their own.
const PROTECTED: &[&str] = &["/dashboard", "/settings", "/checkout", "/licenses"];

pub async fn extract() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|e| AppError::internal(format!("no session layer: {e}")))
}

/// Keeps a message for the next page this session renders, once: the answer to a plain
/// form post, which the browser only sees after the redirect.
pub async fn flash(key: &str, message: String) -> Result<(), AppError> {
    extract().await?.insert(key, message).await?;
    Ok(())
}

/// The message [`flash`] kept under `key`, taken (it shows once). Read first: removing
/// marks the session changed whether or not the key was there, and a changed session is
/// saved (or, for a visitor without one, created) at the end of the request.
pub async fn take_flash(key: &str) -> Result<Option<String>, AppError> {
    let session = extract().await?;
    if session.get::<String>(key).await?.is_none() {
        return Ok(None);
    }
    Ok(session.remove::<String>(key).await?)
}

/// Whether this server function call is a browser's plain form post (it asks for HTML and
/// is answered with a redirect) rather than a script's call (answered with the value).
pub fn is_form_post() -> bool {
    leptos::prelude::use_context::<axum::http::request::Parts>().is_some_and(|parts| {
        parts
            .headers
            .get(axum::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    })
}

/// The network a request comes from, for login limits (see [`client_ip`]).
pub async fn client_network(trusted_proxies: &[IpNet]) -> Result<Network, AppError> {
    let (ConnectInfo(peer), headers) =
        leptos_axum::extract::<(ConnectInfo<SocketAddr>, HeaderMap)>()
            .await
            .map_err(|e| AppError::internal(format!("no peer address: {e}")))?;
    Ok(Network::of(client_ip(peer.ip(), &headers, trusted_proxies)))
}

/// The client's address: the peer's, unless the peer is one of our trusted proxies; then the
/// nearest address in `X-Forwarded-For` that our proxies did not add (a client can write
/// anything to the left of what the proxies append, so only the right end is believed).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> IpAddr {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|ip| ip.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !trusted(ip))
        .or(forwarded.first())
        .copied()
        .unwrap_or(peer)
}

/// A new session id at every login, so an id planted before login is worth nothing after.
pub async fn log_in(session: &Session, user_id: Uuid) -> Result<(), AppError> {
    session.cycle_id().await?;
    session.insert(USER_ID, user_id).await?;
    session
        .insert(
            LOGGED_IN_AT,
            time::OffsetDateTime::now_utc().unix_timestamp(),
        )
        .await?;
    Ok(())
}

/// The logged-in user of the current request, if any. A session whose user was deleted, or
/// whose login is older than `SESSION_MAX_AGE_DAYS`, counts as logged out (and the latter
/// is ended).
pub async fn current_user(db: &PgPool) -> Result<Option<User>, AppError> {
    let session = extract().await?;
    let Some(id) = session.get::<Uuid>(USER_ID).await? else {
        return Ok(None);
    };
    let max_age = crate::state::AppState::get()?.config.session_max_age;
    if current_user_id(&session, max_age).await?.is_none() {
        session.flush().await?;
        return Ok(None);
    }
    Ok(repo::user_by_id(db, id).await?)
}

/// The logged-in user, or `Unauthenticated`. Their id goes on the request's span (server
/// functions declare a `user_id` field), so the log says whose request it was.
pub async fn require_user(db: &PgPool) -> Result<User, AppError> {
    let user = current_user(db).await?.ok_or(AppError::Unauthenticated)?;
    tracing::Span::current().record("user_id", tracing::field::display(user.id));
    Ok(user)
}

/// Sends anonymous page loads of protected pages to the login page, with a way back.
/// Every navigation is a full page load (islands have no client-side router); the pages'
/// own server functions answer `Unauthenticated` as well, so no page relies on this alone.
pub async fn require_login(
    State(state): State<AppState>,
    session: Session,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let protected = PROTECTED
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")));
    if req.method() == Method::GET && protected {
        match current_user_id(&session, state.config.session_max_age).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                let back_to = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or(path);
                return Redirect::to(&login_path(back_to)).into_response();
            }
            Err(e) => return e.into_response(),
        }
    }
    next.run(req).await
}

/// The session's user id, if its login has not outlived `max_age`.
async fn current_user_id(session: &Session, max_age: Duration) -> Result<Option<Uuid>, AppError> {
    let logged_in_at = session.get::<i64>(LOGGED_IN_AT).await?.unwrap_or(0);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    if now.saturating_sub(logged_in_at) > max_age.as_secs() as i64 {
        return Ok(None);
    }
    Ok(session.get::<Uuid>(USER_ID).await?)
}

#[cfg(test)]
mod tests {
    use super::client_ip;
    use axum::http::HeaderMap;

    #[test]
    fn forwarded_addresses_count_only_behind_trusted_proxies() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "6.6.6.6, 203.0.113.9, 10.0.0.2".parse().unwrap(),
        );
        let proxies = ["10.0.0.0/8".parse().unwrap()];
        let peer = "10.0.0.1".parse().unwrap();
        // Behind our proxy: the nearest address it did not add.
        assert_eq!(
            client_ip(peer, &headers, &proxies).to_string(),
            "203.0.113.9"
        );
        // Without trusted proxies the header is anyone's to write.
        assert_eq!(client_ip(peer, &headers, &[]).to_string(), "10.0.0.1");
        let stranger = "198.51.100.4".parse().unwrap();
        assert_eq!(
            client_ip(stranger, &headers, &proxies).to_string(),
            "198.51.100.4"
        );
    }
}
