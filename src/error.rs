//! Errors, one type per layer.
//!
//! * [`ApiError`] crosses the wire: server functions return it and pages render it. It only
//!   carries what a user may see, so nothing internal (SQL text, Stripe responses) can leak.
//! * `AppError` (server only) is what the domain and the handlers use. It knows its HTTP
//!   status, logs internals once when it is turned into a response, and converts into
//!   [`ApiError`] for server functions.

use leptos::server_fn::{codec::JsonEncoding, error::FromServerFnError, error::ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// Everything the app says about a request it refuses, one variant per sentence. The wire
/// carries the variant's name, never text: an error decoded from an address (a form posted
/// without JavaScript comes back with it in `__err`) can only be one the app defines, so a
/// crafted link cannot put words in the app's mouth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    EnterEmail,
    InvalidEmail,
    EnterPassword,
    PasswordTooShort,
    PasswordTooLong,
    PasswordBlank,
    PlanUnavailable,
    NoBillingAccount,
    MalformedForm,
    RequestTooLarge,
    ConfirmEmailFirst,
    VerificationLinkInvalid,
    RefundAmountInvalid,
    RefundReasonInvalid,
    RefundRefused,
    TokenNameInvalid,
    UsageLimitReached,
    CheckoutInProgress,
}

impl Message {
    pub fn text(self) -> &'static str {
        match self {
            Self::EnterEmail => "Enter your email address.",
            Self::InvalidEmail => "Enter a valid email address, like name@example.com.",
            Self::EnterPassword => "Enter your password.",
            Self::PasswordTooShort => "Use at least 8 characters.",
            Self::PasswordTooLong => "Use at most 1024 characters.",
            Self::PasswordBlank => "A password cannot be only spaces.",
            Self::PlanUnavailable => "That plan is not available.",
            Self::NoBillingAccount => {
                "You have no billing account yet: choose a plan on the pricing page first."
            }
            Self::MalformedForm => "The form was incomplete or malformed.",
            Self::RequestTooLarge => "The request is too large.",
            Self::ConfirmEmailFirst => {
                "Confirm your email address first: we sent you a link. Open it, then try again."
            }
            Self::VerificationLinkInvalid => {
                "This confirmation link is not valid any more. Log in to get a new one."
            }
            Self::RefundAmountInvalid => {
                "Enter an amount up to what is left to refund, like 12.50, or leave it empty for all of it."
            }
            Self::RefundReasonInvalid => "Choose a reason for the refund.",
            Self::TokenNameInvalid => "Give the token a name of at most 60 characters.",
            Self::UsageLimitReached => {
                "You have used all the reports your plan allows this period. They start again when your next billing period begins."
            }
            Self::CheckoutInProgress => {
                "A checkout of yours is still starting in another tab or window. Wait a moment, then try again."
            }
            Self::RefundRefused => {
                "Stripe refused this refund: the payment may already be refunded or disputed."
            }
        }
    }
}

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

/// The error a browser sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    /// A problem with one form field; pages show it next to that field.
    #[error("{message}")]
    Field { field: String, message: Message },
    #[error("{0}")]
    BadRequest(Message),
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
    #[error("The request is too large.")]
    TooLarge,
    #[error("Something went wrong on our side. Please try again in a moment.")]
    Internal,
    /// The request never reached our code, or its answer could not be read.
    #[error("We could not reach the server. Check your connection and try again.")]
    Transport,
}

impl ApiError {
    pub fn field(field: &str, message: Message) -> Self {
        Self::Field {
            field: field.to_owned(),
            message,
        }
    }

    /// The message for `name` if this error is about that form field.
    pub fn message_for(&self, name: &str) -> Option<String> {
        match self {
            Self::Field { field, message } if field == name => Some(message.to_string()),
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
                Self::BadRequest(Message::MalformedForm)
            }
            _ => Self::Transport,
        }
    }
}

#[cfg(feature = "ssr")]
pub use server::*;

#[cfg(feature = "ssr")]
mod server {
    use super::{ApiError, Message};
    use axum::response::{IntoResponse, Response};
    use http::StatusCode;

    #[derive(Debug, thiserror::Error)]
    pub enum AppError {
        #[error("invalid {field}: {message}")]
        Field {
            field: &'static str,
            message: Message,
        },
        #[error("bad request: {0}")]
        BadRequest(Message),
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
        /// A plan's hard usage limit for the period is reached.
        #[error("usage limit reached")]
        UsageLimitReached,
        #[error("request body too large")]
        TooLarge,
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
        pub fn field(field: &'static str, message: Message) -> Self {
            Self::Field { field, message }
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
                Self::RateLimited | Self::UsageLimitReached => StatusCode::TOO_MANY_REQUESTS,
                Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                Self::Stripe(_) => StatusCode::BAD_GATEWAY,
                Self::Database(_) | Self::Session(_) | Self::Internal(_) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }
        }

        /// What the user may see. Internal details are logged here, once, and dropped.
        pub fn to_api(&self) -> ApiError {
            match self {
                Self::Field { field, message } => ApiError::field(field, *message),
                Self::BadRequest(m) => ApiError::BadRequest(*m),
                Self::Unauthenticated => ApiError::Unauthenticated,
                Self::InvalidCredentials => ApiError::InvalidCredentials,
                Self::Forbidden => ApiError::Forbidden,
                Self::NotFound => ApiError::NotFound,
                Self::RateLimited => ApiError::RateLimited,
                Self::UsageLimitReached => ApiError::BadRequest(Message::UsageLimitReached),
                Self::TooLarge => ApiError::TooLarge,
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
