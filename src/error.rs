//! Errors, one type per layer.
//!
//! * [`ApiError`] crosses the wire: server functions return it and pages render it. It only
//!   carries what a user may see, so nothing internal (SQL text, Stripe responses) can leak.
//! * `AppError` (server only) is what the domain and the handlers use. It knows its HTTP
//!   status, logs internals once when it is turned into a response, and converts into
//!   [`ApiError`] for server functions.

use leptos::server_fn::{codec::JsonEncoding, error::FromServerFnError, error::ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// The error a browser sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    /// A problem with one form field; pages show it next to that field.
    #[error("{message}")]
    Field { field: String, message: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("Please log in to continue.")]
    Unauthenticated,
    #[error("Email or password is incorrect.")]
    InvalidCredentials,
    #[error("You do not have access to that.")]
    Forbidden,
    #[error("Not found.")]
    NotFound,
    #[error("Too many attempts. Please wait a few minutes and try again.")]
    RateLimited,
    #[error("Something went wrong on our side. Please try again in a moment.")]
    Internal,
    /// The request never reached our code, or its answer could not be read.
    #[error("We could not reach the server. Check your connection and try again.")]
    Transport,
}

impl ApiError {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::Field {
            field: field.to_owned(),
            message: message.into(),
        }
    }

    /// The message for `name` if this error is about that form field.
    pub fn message_for(&self, name: &str) -> Option<String> {
        match self {
            Self::Field { field, message } if field == name => Some(message.clone()),
            _ => None,
        }
    }

    /// An error that is not tied to one field, for the banner above a form.
    pub fn general_message(&self) -> Option<String> {
        match self {
            Self::Field { .. } => None,
            other => Some(other.to_string()),
        }
    }
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // Arguments that do not decode are the caller's mistake, not ours.
            ServerFnErrorErr::Args(_) | ServerFnErrorErr::MissingArg(_) => {
                #[cfg(feature = "ssr")]
                set_status(http::StatusCode::BAD_REQUEST);
                Self::BadRequest("The form was incomplete or malformed.".into())
            }
            _ => Self::Transport,
        }
    }
}

#[cfg(feature = "ssr")]
pub use server::*;

#[cfg(feature = "ssr")]
mod server {
    use super::ApiError;
    use axum::response::{IntoResponse, Response};
    use http::StatusCode;

    #[derive(Debug, thiserror::Error)]
    pub enum AppError {
        #[error("invalid {field}: {message}")]
        Field {
            field: &'static str,
            message: String,
        },
        #[error("bad request: {0}")]
        BadRequest(String),
        #[error("not logged in")]
        Unauthenticated,
        #[error("wrong email or password")]
        InvalidCredentials,
        #[error("forbidden")]
        Forbidden,
        #[error("not found")]
        NotFound,
        #[error("rate limited")]
        RateLimited,
        #[error("database: {0}")]
        Database(#[from] sqlx::Error),
        #[error("session store: {0}")]
        Session(#[from] tower_sessions::session::Error),
        /// Stripe (or the network to it) failed us; the user can only try again later.
        #[error("stripe: {0}")]
        Stripe(#[from] stripe::StripeError),
        #[error("{0}")]
        Internal(String),
    }

    impl AppError {
        pub fn field(field: &'static str, message: impl Into<String>) -> Self {
            Self::Field {
                field,
                message: message.into(),
            }
        }

        pub fn internal(context: impl std::fmt::Display) -> Self {
            Self::Internal(context.to_string())
        }

        pub fn status(&self) -> StatusCode {
            match self {
                Self::Field { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                Self::BadRequest(_) => StatusCode::BAD_REQUEST,
                Self::Unauthenticated | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
                Self::Forbidden => StatusCode::FORBIDDEN,
                Self::NotFound => StatusCode::NOT_FOUND,
                Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
                Self::Stripe(_) => StatusCode::BAD_GATEWAY,
                Self::Database(_) | Self::Session(_) | Self::Internal(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        }

        /// What the user may see. Internal details are logged here, once, and dropped.
        pub fn to_api(&self) -> ApiError {
            match self {
                Self::Field { field, message } => ApiError::field(field, message.clone()),
                Self::BadRequest(m) => ApiError::BadRequest(m.clone()),
                Self::Unauthenticated => ApiError::Unauthenticated,
                Self::InvalidCredentials => ApiError::InvalidCredentials,
                Self::Forbidden => ApiError::Forbidden,
                Self::NotFound => ApiError::NotFound,
                Self::RateLimited => ApiError::RateLimited,
                Self::Database(_) | Self::Session(_) | Self::Stripe(_) | Self::Internal(_) => {
                    tracing::error!(error = %self, "request failed");
                    ApiError::Internal
                }
            }
        }
    }

    /// Server functions return `ApiError`; `?` on an `AppError` lands here, which also sets
    /// the HTTP status so API clients see a 4xx for their mistakes and a 5xx for ours.
    impl From<AppError> for ApiError {
        fn from(err: AppError) -> Self {
            set_status(err.status());
            err.to_api()
        }
    }

    /// JSON for plain axum routes: `{"error": {"code": 422, "message": "...", "field": "email"}}`.
    impl IntoResponse for AppError {
        fn into_response(self) -> Response {
            let status = self.status();
            let api = self.to_api();
            let field = match &api {
                ApiError::Field { field, .. } => Some(field.clone()),
                _ => None,
            };
            let body = serde_json::json!({
                "error": { "code": status.as_u16(), "message": api.to_string(), "field": field }
            });
            (status, axum::Json(body)).into_response()
        }
    }

    /// Sets the status of a server-function response. A plain HTML form post (no JS yet) is
    /// left alone: it must stay a redirect, which carries the error back in the URL.
    pub(crate) fn set_status(status: StatusCode) {
        use leptos::prelude::use_context;
        let html_form_post = use_context::<http::request::Parts>()
            .and_then(|p| {
                p.headers
                    .get(http::header::ACCEPT)?
                    .to_str()
                    .ok()
                    .map(|a| a.contains("text/html"))
            })
            .unwrap_or(false);
        if html_form_post {
            return;
        }
        if let Some(opts) = use_context::<leptos_axum::ResponseOptions>() {
            opts.set_status(status);
        }
    }
}
