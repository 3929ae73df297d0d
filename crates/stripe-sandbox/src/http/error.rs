//! Stripe's error object, and the one error type of the whole sandbox: what the API answers
//! is what the engine decided, in Stripe's words.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Value};

/// An error in Stripe's shape: `{"error": {"type", "code", "message", "param", ...}}`.
#[derive(Debug)]
pub struct StripeError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: Option<&'static str>,
    pub message: String,
    pub param: Option<String>,
    pub decline_code: Option<&'static str>,
}

impl StripeError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            code: None,
            message: message.into(),
            param: None,
            decline_code: None,
        }
    }

    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self {
            param: Some(param.to_owned()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
        }
    }

    pub fn missing(param: &str) -> Self {
        Self {
            code: Some("parameter_missing"),
            ..Self::invalid(param, format!("Missing required param: {param}."))
        }
    }

    pub fn no_such(resource: &str, id: &str) -> Self {
        Self {
            code: Some("resource_missing"),
            param: Some("id".into()),
            ..Self::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                format!("No such {resource}: '{id}'"),
            )
        }
    }

    /// A missing object named by a request parameter (not by the URL) is Stripe's 400
    /// `resource_missing` with that parameter, where the same lookup by URL is a 404.
    pub fn in_param(self, param: &str) -> Self {
        if self.code == Some("resource_missing") {
            Self {
                status: StatusCode::BAD_REQUEST,
                param: Some(param.to_owned()),
                ..self
            }
        } else {
            self
        }
    }

    pub fn not_found_url(method: &str, path: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            ..Self::invalid(
                "url",
                format!("Unrecognized request URL ({method}: {path})."),
            )
        }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message)
    }

    pub fn idempotency(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, "idempotency_error", message)
    }

    pub fn rate_limited() -> Self {
        Self {
            code: Some("rate_limit"),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "invalid_request_error",
                "Too many requests hit the API too quickly.",
            )
        }
    }

    /// A card error as Stripe sends it: 402 with `decline_code`.
    pub fn card_declined(decline_code: &'static str) -> Self {
        let message = match decline_code {
            "insufficient_funds" => "Your card has insufficient funds.",
            _ => "Your card was declined.",
        };
        Self {
            code: Some("card_declined"),
            decline_code: Some(decline_code),
            ..Self::new(StatusCode::PAYMENT_REQUIRED, "card_error", message)
        }
    }

    /// A problem with what a customer typed into a card form (402, `card_error`).
    pub fn card(param: &str, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code: Some(code),
            status: StatusCode::PAYMENT_REQUIRED,
            kind: "card_error",
            ..Self::invalid(param, message)
        }
    }

    pub fn internal(context: impl std::fmt::Display) -> Self {
        tracing::error!(error = %context, "sandbox request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "An unknown error occurred in the sandbox.",
        )
    }

    /// Stripe's 404 for an id it does not know.
    pub fn is_missing(&self) -> bool {
        self.code == Some("resource_missing")
    }

    /// Whether the customer (or the API caller) can fix this, rather than the sandbox.
    pub fn is_callers(&self) -> bool {
        self.status.is_client_error() || self.kind == "card_error"
    }

    pub fn to_json(&self) -> Value {
        let mut error = json!({ "type": self.kind, "message": self.message });
        for (key, value) in [("code", self.code), ("decline_code", self.decline_code)] {
            if let Some(v) = value {
                error[key] = json!(v);
            }
        }
        if let Some(p) = &self.param {
            error["param"] = json!(p);
        }
        json!({ "error": error })
    }
}

impl From<sqlx::Error> for StripeError {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(e)
    }
}

impl IntoResponse for StripeError {
    fn into_response(self) -> Response {
        (self.status, Json(self.to_json())).into_response()
    }
}

pub type ApiResult = Result<Json<Value>, StripeError>;
