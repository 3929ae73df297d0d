//! What a request carries in Stripe's dialect: the secret key (which account), the
//! form-encoded bracket parameters, the request's id and idempotency key, and pagination.

use super::error::StripeError;
use axum::{
    body::to_bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts, Method},
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// Largest request body the sandbox reads (Stripe's own limit is far above any real request).
pub const MAX_BODY: usize = 1024 * 1024;

/// The account a request acts on: a fingerprint of its secret key, so every key sees only
/// its own objects, like separate Stripe accounts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
        // Bearer, or Basic with the key as the user name (`curl -u sk_test_…:`), as on Stripe.
        let basic = raw.strip_prefix("Basic ").and_then(|encoded| {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()?;
            let user_pass = String::from_utf8(decoded).ok()?;
            Some(user_pass.split(':').next().unwrap_or_default().to_owned())
        });
        let key = match &basic {
            Some(user) => user.as_str(),
            None => raw.strip_prefix("Bearer ").map(str::trim).unwrap_or(""),
        };
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

/// The id of an API request: in its `Request-Id` response header and on the events it
/// causes, as on Stripe.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// What an event records about the request that caused it.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub id: Option<String>,
    pub idempotency_key: Option<String>,
}

impl RequestInfo {
    /// A request made on a hosted page or the dashboard: it has an id, but no key.
    pub fn from_page() -> Self {
        Self {
            id: Some(crate::ids::new_id("req")),
            idempotency_key: None,
        }
    }

    /// Something Stripe did by itself (an expiry, a clock's work): no request at all.
    pub fn automatic() -> Self {
        Self::default()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestInfo {
    type Rejection = StripeError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let idempotency_key = parts
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // The id the response's `Request-Id` header carries, when the API gave it one.
        let id = parts
            .extensions
            .get::<RequestId>()
            .map(|r| r.0.clone())
            .unwrap_or_else(|| crate::ids::new_id("req"));
        Ok(Self {
            id: Some(id),
            idempotency_key,
        })
    }
}

/// Request parameters: the form body of a POST or the query string otherwise, decoded from
/// Stripe's bracket notation (`metadata[plan]=pro`, `expand[]=x`, `items[0][price]=p`).
#[derive(Debug, Default, Clone)]
pub struct Params(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = StripeError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let accepts = req.extensions().get::<super::accepts::Accepts>().copied();
        let api_call = req.extensions().get::<super::accepts::ApiCall>().is_some();
        let endpoint = super::accepts::Endpoint::new(req.method(), req.extensions().get());
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
        let params = Params::parse(&source)?;
        super::accepts::check(&params, accepts, api_call, endpoint.as_ref())?;
        Ok(params)
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

    /// `key[0][...]`, `key[1][...]`: each element as its own parameters.
    pub fn objects(&self, key: &str) -> Vec<Params> {
        self.0
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|v| Params(v.as_object().cloned().unwrap_or_default()))
            .collect()
    }

    /// `key[]=a&key[]=b` (or `key[0]=a`), as strings.
    pub fn strings(&self, key: &str) -> Vec<String> {
        match self.0.get(key) {
            Some(Value::Array(items)) => items.iter().filter_map(str_of).collect(),
            Some(v) => str_of(v).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// A value from a fixed list (Stripe's enums).
    pub fn one_of(&self, key: &str, allowed: &[&str]) -> Result<Option<String>, StripeError> {
        match self.str(key) {
            None => Ok(None),
            Some(v) if allowed.contains(&v.as_str()) => Ok(Some(v)),
            Some(v) => Err(StripeError::invalid(
                key,
                format!(
                    "Invalid {key}: must be one of {}; got {v}",
                    allowed.join(", ")
                ),
            )),
        }
    }

    /// A required three-letter ISO currency, lower-cased as Stripe returns it.
    pub fn currency(&self) -> Result<String, StripeError> {
        let c = self.required_str("currency")?.to_ascii_lowercase();
        if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_lowercase()) {
            Ok(c)
        } else {
            Err(StripeError::invalid(
                "currency",
                format!("Invalid currency: {c}."),
            ))
        }
    }

    /// A caller-chosen `id` (products, coupons), which must look like an id.
    pub fn custom_id(&self) -> Result<Option<String>, StripeError> {
        let Some(id) = self.str("id") else {
            return Ok(None);
        };
        let ok = !id.is_empty()
            && id.len() <= 200
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if ok {
            Ok(Some(id))
        } else {
            Err(StripeError::invalid(
                "id",
                "Invalid id: use letters, digits, '_' and '-'.",
            ))
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

    /// A URL parameter: `http` or `https` with a host, as Stripe requires (anything else,
    /// `javascript:` included, is Stripe's `url_invalid`). With `origin`, the URL must also
    /// be on it (`scheme://host:port`): where the hosted pages may send a customer.
    pub fn url(&self, key: &str, origin: Option<&str>) -> Result<Option<String>, StripeError> {
        let Some(raw) = self.str(key) else {
            return Ok(None);
        };
        let invalid = |message: String| StripeError {
            code: Some("url_invalid"),
            ..StripeError::invalid(key, message)
        };
        let url = url::Url::parse(&raw).map_err(|_| invalid("Not a valid URL".into()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(invalid("Not a valid URL: use an http or https URL.".into()));
        }
        if let Some(origin) = origin {
            if url.origin().ascii_serialization() != origin {
                return Err(invalid(format!(
                    "This sandbox only sends customers back to {origin}."
                )));
            }
        }
        Ok(Some(raw))
    }

    /// The `metadata` of a create request, as the object to store.
    pub fn metadata(&self) -> Result<Value, StripeError> {
        let mut holder = json!({ "metadata": {} });
        self.metadata_into(&mut holder)?;
        Ok(holder["metadata"].take())
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

    /// `ending_before` alone pages backwards: the rows come oldest first, then flip.
    pub fn reversed(&self) -> bool {
        self.ending_before.is_some() && self.starting_after.is_none()
    }

    pub fn cursor(&self) -> Option<&str> {
        self.starting_after
            .as_deref()
            .or(self.ending_before.as_deref())
    }

    /// A list object from up to `limit + 1` rows read in the page's order.
    pub fn list(&self, mut rows: Vec<Value>, url: &str) -> Value {
        let has_more = rows.len() as i64 > self.limit;
        rows.truncate(self.limit as usize);
        if self.reversed() {
            rows.reverse();
        }
        list_object(url, rows, has_more)
    }
}

impl Page {
    /// A page of a list held in memory (a session's line items, an invoice's payments), in
    /// the list's own order. A cursor that is not in the list gives an empty page.
    pub fn slice(&self, items: Vec<Value>, url: &str) -> Value {
        let position = |id: &str| items.iter().position(|i| i["id"] == id);
        let limit = self.limit as usize;
        let (start, end) = match (&self.starting_after, &self.ending_before) {
            (Some(after), _) => match position(after) {
                Some(at) => (at + 1, items.len()),
                None => (0, 0),
            },
            (None, Some(before)) => match position(before) {
                Some(at) => (at.saturating_sub(limit), at),
                None => (0, 0),
            },
            (None, None) => (0, items.len()),
        };
        let has_more = if self.reversed() {
            start > 0
        } else {
            end - start > limit
        };
        let end = if self.reversed() {
            end
        } else {
            end.min(start + limit)
        };
        let data = items[start..end].to_vec();
        list_object(url, data, has_more)
    }
}

fn list_object(url: &str, data: Vec<Value>, has_more: bool) -> Value {
    json!({ "object": "list", "data": data, "has_more": has_more, "url": url })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_of_a_list_in_memory_follow_the_cursors() {
        let items: Vec<Value> = (1..=5)
            .map(|i| json!({ "id": format!("li_{i}") }))
            .collect();
        let ids = |list: &Value| -> Vec<String> {
            list["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let page = |q: &str| Page::from(&Params::parse(q).unwrap()).unwrap();
        let first = page("limit=2").slice(items.clone(), "/x");
        assert_eq!(
            (ids(&first), first["has_more"].clone()),
            (vec!["li_1".to_owned(), "li_2".to_owned()], json!(true))
        );
        let last = page("limit=2&starting_after=li_4").slice(items.clone(), "/x");
        assert_eq!(
            (ids(&last), last["has_more"].clone()),
            (vec!["li_5".to_owned()], json!(false))
        );
        let back = page("limit=2&ending_before=li_4").slice(items.clone(), "/x");
        assert_eq!(
            (ids(&back), back["has_more"].clone()),
            (vec!["li_2".to_owned(), "li_3".to_owned()], json!(true))
        );
        let start = page("limit=2&ending_before=li_2").slice(items.clone(), "/x");
        assert_eq!(
            (ids(&start), start["has_more"].clone()),
            (vec!["li_1".to_owned()], json!(false))
        );
        assert!(ids(&page("starting_after=li_9").slice(items, "/x")).is_empty());
    }

    #[test]
    fn parses_stripe_bracket_params() {
        let p = Params::parse(
            "name=Gold&metadata[plan]=pro&expand[]=a&expand[]=b&items[0][price]=p1&items[1][price]=p2&recurring%5Binterval%5D=month",
        )
        .unwrap();
        assert_eq!(p.str("name").as_deref(), Some("Gold"));
        assert_eq!(p.get("metadata").unwrap()["plan"], "pro");
        assert_eq!(p.expand(), vec!["a", "b"]);
        let items = p.objects("items");
        assert_eq!(items[1].str("price").as_deref(), Some("p2"));
        assert_eq!(
            p.object("recurring").unwrap().str("interval").as_deref(),
            Some("month")
        );
    }

    #[test]
    fn typed_accessors_reject_garbage() {
        let p = Params::parse("active=maybe&limit=ten&currency=usdollar&id=a b").unwrap();
        assert!(p.bool("active").is_err());
        assert!(p.i64("limit").is_err());
        assert!(p.currency().is_err());
        assert!(p.custom_id().is_err());
        assert!(p.one_of("active", &["yes"]).is_err());
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
