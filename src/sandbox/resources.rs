//! What every resource shares: create, retrieve, update with `previous_attributes`, delete,
//! and the response shape (expansions applied, secrets withheld).

use super::{
    http::{Account, ApiResult, Params, StripeError},
    store::{self, RequestInfo},
    Sandbox,
};
use axum::{
    extract::{FromRequestParts, Path, State},
    http::request::Parts,
    Json,
};
use serde_json::{json, Value};

impl<S: Send + Sync> FromRequestParts<S> for RequestInfo {
    type Rejection = StripeError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let idempotency_key = parts
            .headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self {
            id: Some(store::new_id("req")),
            idempotency_key,
        })
    }
}

/// The event Stripe sends for an action on an object (`customer.updated`), if any. Stripe
/// sends none for webhook endpoints, and for payment methods only `.updated` (attach and
/// detach have their own events).
fn event_for(object: &str, action: &str) -> Option<String> {
    if object == "subscription" {
        return Some(format!("customer.subscription.{action}"));
    }
    let sent = match object {
        "product" | "price" | "customer" | "coupon" => true,
        "promotion_code" => action != "deleted",
        "test_helpers.test_clock" => action == "created",
        "payment_method" => action == "updated",
        "billing_portal.configuration" => action != "deleted",
        "billing_portal.session" => action == "created",
        _ => false,
    };
    sent.then(|| format!("{object}.{action}"))
}

impl Sandbox {
    /// Stores a new object and its `<object>.created` event together.
    pub async fn create(
        &self,
        account: &Account,
        req: &RequestInfo,
        obj: Value,
        params: &Params,
    ) -> ApiResult {
        let mut tx = self.db.begin().await?;
        store::insert(&mut tx, account, &obj).await?;
        if let Some(kind) = event_for(obj["object"].as_str().unwrap_or_default(), "created") {
            store::emit(&mut tx, account, &kind, &obj, None, req).await?;
        }
        tx.commit().await?;
        self.respond(account, obj, params).await
    }

    pub async fn retrieve(
        &self,
        account: &Account,
        object: &str,
        id: &str,
        params: &Params,
    ) -> ApiResult {
        let mut conn = self.db.acquire().await?;
        let obj = store::get_even_deleted(&mut conn, account, object, id).await?;
        drop(conn);
        self.respond(account, obj, params).await
    }

    /// Applies `change` to the stored object under a row lock; when anything changed, saves it
    /// and emits `<object>.updated` with the old values in `previous_attributes`.
    pub async fn update(
        &self,
        account: &Account,
        req: &RequestInfo,
        object: &str,
        id: &str,
        params: &Params,
        change: impl FnOnce(&mut Value) -> Result<(), StripeError>,
    ) -> ApiResult {
        let mut tx = self.db.begin().await?;
        let before = store::get(&mut tx, account, object, id).await?;
        let mut after = before.clone();
        change(&mut after)?;
        params.metadata_into(&mut after)?;
        if after != before {
            if after.get("updated").is_some() {
                after["updated"] = json!(store::now());
            }
            store::save(&mut tx, account, &after).await?;
            if let Some(kind) = event_for(object, "updated") {
                let prev = store::previous_attributes(&before, &after);
                store::emit(&mut tx, account, &kind, &after, Some(prev), req).await?;
            }
        }
        tx.commit().await?;
        self.respond(account, after, params).await
    }

    /// Deletes an object. Customers leave a stub behind that retrieve still returns, as on
    /// Stripe; other objects are gone.
    pub async fn delete(
        &self,
        account: &Account,
        req: &RequestInfo,
        object: &str,
        id: &str,
    ) -> ApiResult {
        let mut tx = self.db.begin().await?;
        let obj = store::get(&mut tx, account, object, id).await?;
        let stub = json!({ "id": id, "object": object, "deleted": true });
        if object == "customer" {
            store::save(&mut tx, account, &stub).await?;
        } else {
            store::delete(&mut tx, account, id).await?;
        }
        if let Some(kind) = event_for(object, "deleted") {
            store::emit(&mut tx, account, &kind, &obj, None, req).await?;
        }
        tx.commit().await?;
        Ok(Json(stub))
    }

    pub async fn respond(&self, account: &Account, mut obj: Value, params: &Params) -> ApiResult {
        let expand = params.expand();
        omit_includables(&mut obj, &expand);
        store::expand(&self.db, account, &mut obj, &expand).await?;
        Ok(Json(present(obj)))
    }
}

/// A resource whose retrieve and delete need nothing special, named by its `object`.
pub trait Kind {
    const OBJECT: &'static str;
}

pub struct Coupon;
pub struct Price;
pub struct Product;
pub struct PromotionCode;
pub struct TestClock;
pub struct Subscription;
pub struct CheckoutSession;
pub struct Customer;
pub struct WebhookEndpoint;
pub struct Invoice;
pub struct PaymentIntent;
pub struct Charge;
pub struct Refund;
pub struct PortalConfiguration;

impl Kind for PortalConfiguration {
    const OBJECT: &'static str = super::portal::CONFIGURATION;
}

impl Kind for Invoice {
    const OBJECT: &'static str = "invoice";
}
impl Kind for PaymentIntent {
    const OBJECT: &'static str = "payment_intent";
}
impl Kind for Charge {
    const OBJECT: &'static str = "charge";
}
impl Kind for Refund {
    const OBJECT: &'static str = "refund";
}

impl Kind for Coupon {
    const OBJECT: &'static str = "coupon";
}
impl Kind for PromotionCode {
    const OBJECT: &'static str = "promotion_code";
}
impl Kind for TestClock {
    const OBJECT: &'static str = super::clocks::OBJECT;
}
impl Kind for CheckoutSession {
    const OBJECT: &'static str = super::checkout::OBJECT;
}
impl Kind for Subscription {
    const OBJECT: &'static str = "subscription";
}
impl Kind for Price {
    const OBJECT: &'static str = "price";
}
impl Kind for Product {
    const OBJECT: &'static str = "product";
}
impl Kind for Customer {
    const OBJECT: &'static str = "customer";
}
impl Kind for WebhookEndpoint {
    const OBJECT: &'static str = "webhook_endpoint";
}

/// `GET /v1/<resources>/{id}`
pub async fn retrieve<K: Kind>(
    State(s): State<Sandbox>,
    account: Account,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    s.retrieve(&account, K::OBJECT, &id, &params).await
}

/// `DELETE /v1/<resources>/{id}`
pub async fn delete<K: Kind>(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
) -> ApiResult {
    s.delete(&account, &req, K::OBJECT, &id).await
}

/// Stripe leaves includable fields (an invoice's `payments`) out of responses and events
/// unless `expand[]` names them, on the object or on a list's `data`.
pub fn omit_includables(obj: &mut Value, expand: &[String]) {
    let wants = |path: &str| {
        expand
            .iter()
            .any(|e| e == path || e.starts_with(&format!("{path}.")))
    };
    let strip = |o: &mut Value, wanted: bool| {
        if o["object"] == "invoice" && !wanted {
            if let Some(map) = o.as_object_mut() {
                map.remove("payments");
            }
        }
    };
    strip(obj, wants("payments"));
    if obj["object"] == "list" {
        let wanted = wants("data.payments");
        for item in obj
            .get_mut("data")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            strip(item, wanted);
        }
    }
}

/// Strips what Stripe only shows once (a webhook endpoint's secret is returned on create).
pub fn present(mut obj: Value) -> Value {
    if let Some(map) = obj.as_object_mut() {
        match map.get("object").and_then(Value::as_str) {
            Some("webhook_endpoint") => {
                map.remove("secret");
            }
            // The sandbox's notes (which test card; what a session must remember) are not
            // part of Stripe's objects.
            Some("payment_method") => {
                map.remove("sandbox_card");
            }
            Some("checkout.session" | "subscription" | "billing_portal.session") => {
                map.remove("sandbox");
            }
            _ => {}
        }
    }
    if obj["object"] == "list" {
        if let Some(items) = obj.get_mut("data").and_then(Value::as_array_mut) {
            for item in items.iter_mut() {
                *item = present(std::mem::take(item));
            }
        }
    }
    obj
}

/// Caller-chosen ids (`id=prod_starter` on products) must look like ids.
pub fn check_custom_id(id: &str) -> Result<(), StripeError> {
    let ok = !id.is_empty()
        && id.len() <= 200
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(StripeError::invalid(
            "id",
            "Invalid id: use letters, digits, '_' and '-'.",
        ))
    }
}

pub fn currency(params: &Params) -> Result<String, StripeError> {
    let c = params.required_str("currency")?.to_ascii_lowercase();
    if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_lowercase()) {
        Ok(c)
    } else {
        Err(StripeError::invalid(
            "currency",
            format!("Invalid currency: {c}."),
        ))
    }
}

pub fn one_of(params: &Params, key: &str, allowed: &[&str]) -> Result<Option<String>, StripeError> {
    match params.str(key) {
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
