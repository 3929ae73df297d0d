//! Stripe's HTTP dialect: secret-key auth, form-encoded bracket params, error JSON, lists,
//! and Idempotency-Key replay.

use axum::{
    body::{to_bytes, Body},
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

/// Largest request body the sandbox reads (Stripe's own limit is far above any real request).
const MAX_BODY: usize = 1024 * 1024;

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

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_request_error", message)
    }

    pub fn idempotency(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, "idempotency_error", message)
    }

    pub fn internal(context: impl std::fmt::Display) -> Self {
        tracing::error!(error = %context, "sandbox request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "An unknown error occurred in the sandbox.",
        )
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

/// The account a request acts on: a fingerprint of its secret key, so every key sees only
/// its own objects, like separate Stripe accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account(pub String);

impl Account {
    pub fn for_key(key: &str) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        Self(format!("acct_{}", &hex::encode(digest)[..16]))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Account {
    type Rejection = StripeError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let key = raw.strip_prefix("Bearer ").map(str::trim).unwrap_or("");
        if key.is_empty() {
            return Err(StripeError::unauthorized(
                "You did not provide an API key. Provide your secret key in the Authorization header, using Bearer auth.",
            ));
        }
        if !key.starts_with("sk_test_") && !key.starts_with("rk_test_") {
            return Err(StripeError::unauthorized(format!(
                "Invalid API Key provided: {}. The sandbox accepts test-mode secret keys (sk_test_...).",
                redact(key)
            )));
        }
        Ok(Self::for_key(key))
    }
}

/// Stripe shows keys in errors with most characters hidden.
fn redact(key: &str) -> String {
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!(
        "{}{}",
        key.chars().take(8).collect::<String>(),
        "*".repeat(8) + &tail
    )
}

/// Request parameters: the form body of a POST or the query string otherwise, decoded from
/// Stripe's bracket notation (`metadata[plan]=pro`, `expand[]=x`, `items[0][price]=p`).
#[derive(Debug, Default, Clone)]
pub struct Params(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = StripeError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let query = req.uri().query().unwrap_or("").to_owned();
        let body = if req.method() == Method::GET || req.method() == Method::DELETE {
            String::new()
        } else {
            let bytes = to_bytes(req.into_body(), MAX_BODY).await.map_err(|_| {
                StripeError::invalid(
                    "body",
                    "The request body is too large or could not be read.",
                )
            })?;
            String::from_utf8(bytes.to_vec()).map_err(|_| {
                StripeError::invalid("body", "The request body must be UTF-8 form data.")
            })?
        };
        let source = if body.is_empty() { query } else { body };
        Params::parse(&source)
    }
}

impl Params {
    pub fn parse(raw: &str) -> Result<Self, StripeError> {
        if raw.trim().is_empty() {
            return Ok(Self::default());
        }
        // Not strict: clients may percent-encode the brackets.
        let map: Map<String, Value> = serde_qs::Config::new(6, false)
            .deserialize_str(raw)
            .map_err(|e| {
                StripeError::invalid("body", format!("Invalid request parameters: {e}"))
            })?;
        match normalize(Value::Object(map)) {
            Value::Object(map) => Ok(Self(map)),
            _ => Err(StripeError::invalid("body", "Invalid request parameters.")),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    pub fn str(&self, key: &str) -> Option<String> {
        str_of(self.0.get(key)?)
    }

    pub fn required_str(&self, key: &str) -> Result<String, StripeError> {
        self.str(key)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| StripeError::missing(key))
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, StripeError> {
        match self.str(key).as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(other) => Err(StripeError::invalid(
                key,
                format!("Invalid boolean: {other}"),
            )),
        }
    }

    pub fn i64(&self, key: &str) -> Result<Option<i64>, StripeError> {
        int_of(self.0.get(key), key)
    }

    /// A nested hash such as `recurring[interval]`.
    pub fn object(&self, key: &str) -> Option<Params> {
        match self.0.get(key)? {
            Value::Object(map) => Some(Params(map.clone())),
            _ => None,
        }
    }

    /// `key[]=a&key[]=b` (or `key[0]=a`), as strings.
    pub fn strings(&self, key: &str) -> Vec<String> {
        match self.0.get(key) {
            Some(Value::Array(items)) => items.iter().filter_map(str_of).collect(),
            Some(v) => str_of(v).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// `metadata[k]=v`. An empty value deletes the key, as on Stripe.
    pub fn metadata_into(&self, target: &mut Value) -> Result<(), StripeError> {
        let Some(given) = self.0.get("metadata") else {
            return Ok(());
        };
        if !target["metadata"].is_object() {
            target["metadata"] = json!({});
        }
        match given {
            // `metadata=` clears everything.
            Value::String(s) if s.is_empty() => target["metadata"] = json!({}),
            Value::Object(map) => {
                for (k, v) in map {
                    let v = str_of(v).ok_or_else(|| {
                        StripeError::invalid(
                            &format!("metadata[{k}]"),
                            "Metadata values must be strings.",
                        )
                    })?;
                    if v.is_empty() {
                        target["metadata"].as_object_mut().map(|m| m.remove(k));
                    } else {
                        target["metadata"][k] = json!(v);
                    }
                }
            }
            _ => return Err(StripeError::invalid("metadata", "Invalid hash")),
        }
        Ok(())
    }

    pub fn expand(&self) -> Vec<String> {
        self.strings("expand")
    }
}

pub fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn int_of(v: Option<&Value>, key: &str) -> Result<Option<i64>, StripeError> {
    match v.and_then(str_of) {
        None => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| StripeError::invalid(key, format!("Invalid integer: {s}"))),
    }
}

/// serde_qs yields maps for `a[0]=x`; Stripe means arrays.
fn normalize(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            if !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok()) {
                let mut items: Vec<(usize, Value)> = map
                    .into_iter()
                    .map(|(k, v)| (k.parse().unwrap_or(0), normalize(v)))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(map.into_iter().map(|(k, v)| (k, normalize(v))).collect())
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}

/// Pagination of list endpoints.
pub struct Page {
    pub limit: i64,
    pub starting_after: Option<String>,
    pub ending_before: Option<String>,
}

impl Page {
    pub fn from(params: &Params) -> Result<Self, StripeError> {
        let limit = params.i64("limit")?.unwrap_or(10);
        if !(1..=100).contains(&limit) {
            return Err(StripeError::invalid(
                "limit",
                "This value must be between 1 and 100.",
            ));
        }
        Ok(Self {
            limit,
            starting_after: params.str("starting_after"),
            ending_before: params.str("ending_before"),
        })
    }
}

pub fn list_object(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    json!({ "object": "list", "data": data, "has_more": has_more, "url": url })
}

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
    let fingerprint = hex::encode(Sha256::digest(
        [parts.uri.path().as_bytes(), b"\n", &bytes].concat(),
    ));
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

    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let (parts, body) = res.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let stored: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let saved = sqlx::query(
        "update stripe_sandbox.idempotency_keys set status = $3, body = $4 where account = $1 and key = $2",
    )
    .bind(&account.0)
    .bind(&key)
    .bind(i32::from(parts.status.as_u16()))
    .bind(&stored)
    .execute(&db)
    .await;
    if let Err(e) = saved {
        tracing::warn!(error = %e, "could not save an idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
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
mod tests {
    use super::*;

    #[test]
    fn parses_stripe_bracket_params() {
        let p = Params::parse(
            "name=Gold&metadata[plan]=pro&expand[]=a&expand[]=b&items[0][price]=p1&items[1][price]=p2&recurring%5Binterval%5D=month",
        )
        .unwrap();
        assert_eq!(p.str("name").as_deref(), Some("Gold"));
        assert_eq!(p.get("metadata").unwrap()["plan"], "pro");
        assert_eq!(p.expand(), vec!["a", "b"]);
        let items = p.get("items").unwrap().as_array().unwrap();
        assert_eq!(items[1]["price"], "p2");
        assert_eq!(
            p.object("recurring").unwrap().str("interval").as_deref(),
            Some("month")
        );
    }

    #[test]
    fn typed_accessors_reject_garbage() {
        let p = Params::parse("active=maybe&limit=ten").unwrap();
        assert!(p.bool("active").is_err());
        assert!(p.i64("limit").is_err());
        assert!(Page::from(&Params::parse("limit=101").unwrap()).is_err());
        assert!(
            matches!(Params::default().required_str("name"), Err(e) if e.code == Some("parameter_missing"))
        );
    }

    #[test]
    fn keys_map_to_separate_accounts() {
        assert_eq!(Account::for_key("sk_test_a"), Account::for_key("sk_test_a"));
        assert_ne!(Account::for_key("sk_test_a"), Account::for_key("sk_test_b"));
        assert_eq!(redact("sk_test_abcdefgh1234"), "sk_test_********1234");
    }

    #[test]
    fn metadata_updates_merge_and_empty_values_delete() {
        let mut target = json!({ "metadata": { "a": "1", "b": "2" } });
        Params::parse("metadata[b]=&metadata[c]=3")
            .unwrap()
            .metadata_into(&mut target)
            .unwrap();
        assert_eq!(target["metadata"], json!({ "a": "1", "c": "3" }));
    }
}
