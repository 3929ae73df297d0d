//! Sign up, log in, log out. The user's identity lives only in the server-side session;
//! no server function takes a user id from the browser.

#[cfg(feature = "ssr")]
mod domain;
mod pages;
#[cfg(feature = "ssr")]
mod repo;
#[cfg(feature = "ssr")]
mod service;
#[cfg(feature = "ssr")]
mod session;
#[cfg(feature = "ssr")]
mod verify;

pub use pages::{CheckEmailPage, ConfirmEmailPage, LoginPage, SignupPage};
#[cfg(feature = "ssr")]
pub use {
    domain::Network,
    repo::{prune_expired, user_by_id, User},
    service::hashing_permits,
    session::{
        client_ip, current_user, flash, is_form_post, require_login, require_user, take_flash,
        SECURE_SESSION_COOKIE, SESSION_COOKIE,
    },
    verify::send_confirmation,
};

use crate::{error::ApiError, stripe::StripeMode};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What the browser may know about the logged-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub email: String,
    /// One of `ADMIN_EMAILS`: the navigation shows the admin page.
    pub is_admin: bool,
}

/// Read by the page frame: who is logged in, and which Stripe the app talks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub user: Option<UserView>,
    pub mode: StripeMode,
    /// The address typed into a sign-up or login form the server just refused, so the form
    /// shows it again (a plain form post comes back as a new, empty page).
    pub typed_email: Option<String>,
}

#[server(prefix = "/api", endpoint = "session")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn load_session() -> Result<SessionInfo, ApiError> {
    let state = crate::state::AppState::get()?;
    let user = session::current_user(&state.db).await?.map(|u| UserView {
        is_admin: state.config.is_admin(&u.email),
        email: u.email,
    });
    Ok(SessionInfo {
        user,
        mode: state.config.stripe_mode,
        typed_email: session::take_flash(TYPED_EMAIL).await?,
    })
}

#[cfg(feature = "ssr")]
const TYPED_EMAIL: &str = "typed_email";

/// Keeps the typed address for the form when the server refuses it (see
/// [`SessionInfo::typed_email`]); never the password.
#[cfg(feature = "ssr")]
async fn keeping_email<T>(email: &str, result: Result<T, ApiError>) -> Result<T, ApiError> {
    if result.is_err() && session::is_form_post() {
        // At most an address's length: this is the visitor's own input, kept in their session.
        let typed = email.trim().chars().take(254).collect();
        if let Err(e) = session::flash(TYPED_EMAIL, typed).await {
            tracing::warn!(error = %e, "could not keep the typed address");
        }
    }
    result
}

#[server(prefix = "/api", endpoint = "signup")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn signup(email: String, password: String, next: Option<String>) -> Result<(), ApiError> {
    let result = sign_up_with(&email, &password, next).await;
    keeping_email(&email, result).await
}

#[cfg(feature = "ssr")]
async fn sign_up_with(email: &str, password: &str, next: Option<String>) -> Result<(), ApiError> {
    use service::SignUp;
    let state = crate::state::AppState::get()?;
    let network = session::client_network(&state.config.trusted_proxies).await?;
    let outcome = service::sign_up(&state.db, &state.config, email, password, &network).await?;
    // The visitor is told the same whether the address was free or not: the owner of a
    // taken one hears about it by email instead.
    let user = match outcome {
        SignUp::Created(user) => {
            verify::send_confirmation(&state.db, &state.config, &user).await?;
            Some(user)
        }
        SignUp::AddressTaken(owner) => {
            verify::tell_owner(&state.db, &state.config, &owner).await?;
            None
        }
    };
    if state.config.requires_confirmed_email() {
        // With real Stripe the account starts once its address is confirmed.
        leptos_axum::redirect("/signup/check-email");
        return Ok(());
    }
    // Sandbox mode (never on a public address): a local demo stays one click.
    if let Some(user) = user {
        session::log_in(&session::extract().await?, user.id).await?;
    }
    leptos_axum::redirect(&domain::safe_next(next.as_deref()));
    Ok(())
}

#[server(prefix = "/api", endpoint = "login")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn login(email: String, password: String, next: Option<String>) -> Result<(), ApiError> {
    let result = async {
        let state = crate::state::AppState::get()?;
        let network = session::client_network(&state.config.trusted_proxies).await?;
        let user = service::log_in(&state.db, &state.config, &email, &password, &network).await?;
        session::log_in(&session::extract().await?, user.id).await?;
        leptos_axum::redirect(&domain::safe_next(next.as_deref()));
        Ok(())
    }
    .await;
    keeping_email(&email, result).await
}

/// The confirmation link's button: confirms the address, logs its owner in.
#[server(prefix = "/api", endpoint = "confirm-email")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn confirm_email(token: String) -> Result<(), ApiError> {
    use crate::error::{AppError, Message};
    let state = crate::state::AppState::get()?;
    let Some(user) = verify::confirm(&state.db, &token).await? else {
        return Err(AppError::BadRequest(Message::VerificationLinkInvalid).into());
    };
    session::log_in(&session::extract().await?, user.id).await?;
    leptos_axum::redirect("/dashboard");
    Ok(())
}

#[server(prefix = "/api", endpoint = "logout")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn logout() -> Result<(), ApiError> {
    session::extract()
        .await?
        .flush()
        .await
        .map_err(crate::error::AppError::from)?;
    leptos_axum::redirect("/");
    Ok(())
}

/// Who is logged in, read once per page for the page frame and the pricing buttons.
#[derive(Clone, Copy)]
pub struct Auth {
    pub session: Resource<Result<SessionInfo, ApiError>>,
}

pub fn provide_auth() {
    provide_context(Auth {
        session: Resource::new(|| (), |_| load_session()),
    });
}

pub fn use_auth() -> Auth {
    expect_context::<Auth>()
}
