//! The session is the only source of the user's identity.

use super::repo::{self, User};
use crate::{error::AppError, ui::login_path};
use axum::{
    extract::{ConnectInfo, Request},
    http::Method,
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use sqlx::PgPool;
use std::net::SocketAddr;
use tower_sessions::Session;
use uuid::Uuid;

const USER_ID: &str = "user_id";

/// Pages behind the login wall. Server functions check again on their own.
const PROTECTED: &[&str] = &["/dashboard", "/settings", "/checkout"];

pub async fn extract() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>()
        .await
        .map_err(|e| AppError::internal(format!("no session layer: {e}")))
}

/// The peer address. Behind a proxy this is the proxy; see README ("Deploying").
pub async fn client_ip() -> String {
    leptos_axum::extract::<ConnectInfo<SocketAddr>>()
        .await
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// A new session id at every login, so an id planted before login is worth nothing after.
pub async fn log_in(session: &Session, user_id: Uuid) -> Result<(), AppError> {
    session.cycle_id().await?;
    session.insert(USER_ID, user_id).await?;
    Ok(())
}

/// The logged-in user of the current request, if any. A session whose user was deleted
/// counts as logged out.
pub async fn current_user(db: &PgPool) -> Result<Option<User>, AppError> {
    let session = extract().await?;
    match session.get::<Uuid>(USER_ID).await? {
        Some(id) => Ok(repo::user_by_id(db, id).await?),
        None => Ok(None),
    }
}

/// The logged-in user, or `Unauthenticated`. Their id goes on the request's span (server
/// functions declare a `user_id` field), so the log says whose request it was.
pub async fn require_user(db: &PgPool) -> Result<User, AppError> {
    let user = current_user(db).await?.ok_or(AppError::Unauthenticated)?;
    tracing::Span::current().record("user_id", tracing::field::display(user.id));
    Ok(user)
}

/// Sends anonymous page loads of protected pages to the login page, with a way back.
/// This covers full page loads; client-side navigation is covered by the pages' own
/// server functions answering `Unauthenticated`.
pub async fn require_login(session: Session, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let protected = PROTECTED
        .iter()
        .any(|p| path == *p || path.starts_with(&format!("{p}/")));
    if req.method() == Method::GET && protected {
        match session.get::<Uuid>(USER_ID).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                let back_to = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or(path);
                return Redirect::to(&login_path(back_to)).into_response();
            }
            Err(e) => return AppError::from(e).into_response(),
        }
    }
    next.run(req).await
}
