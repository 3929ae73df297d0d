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
    session::{client_ip, current_user, require_login, require_user},
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
    })
}

#[server(prefix = "/api", endpoint = "signup")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn signup(email: String, password: String, next: Option<String>) -> Result<(), ApiError> {
    use service::SignUp;
    let state = crate::state::AppState::get()?;
    let network = session::client_network(&state.config.trusted_proxies).await?;
    let outcome = service::sign_up(&state.db, &state.config, &email, &password, &network).await?;
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
    let state = crate::state::AppState::get()?;
    let network = session::client_network(&state.config.trusted_proxies).await?;
    let user = service::log_in(&state.db, &state.config, &email, &password, &network).await?;
    session::log_in(&session::extract().await?, user.id).await?;
    leptos_axum::redirect(&domain::safe_next(next.as_deref()));
    Ok(())
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

/// The auth actions and the session they change, shared by the nav and the forms so a
/// login anywhere refreshes the page frame.
#[derive(Clone, Copy)]
pub struct Auth {
    pub signup: ServerAction<Signup>,
    pub login: ServerAction<Login>,
    pub logout: ServerAction<Logout>,
    pub session: Resource<Result<SessionInfo, ApiError>>,
}

pub fn provide_auth() {
    let signup = ServerAction::<Signup>::new();
    let login = ServerAction::<Login>::new();
    let logout = ServerAction::<Logout>::new();
    let session = Resource::new(
        move || {
            (
                signup.version().get(),
                login.version().get(),
                logout.version().get(),
            )
        },
        |_| load_session(),
    );
    provide_context(Auth {
        signup,
        login,
        logout,
        session,
    });
}

pub fn use_auth() -> Auth {
    expect_context::<Auth>()
}
