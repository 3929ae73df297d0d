//! `/v1/customers`: create (optionally on a test clock), retrieve, update, delete (a stub
//! stays retrievable), list by email or clock.

use super::{create_object, delete_object, list_objects, retrieve, update_object};
use crate::{
    engine::customers::customer_json,
    http::{accepts, lists, str_of, Account, ApiResult, Params, RequestInfo, StripeError},
    kind::Kind,
    store::{self, Filter},
    Sandbox,
};
use axum::{
    extract::{Path, State},
    routing::{delete, get, post},
    Router,
};
use serde_json::{json, Value};

const ADDRESS_FIELDS: [&str; 6] = ["city", "country", "line1", "line2", "postal_code", "state"];

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/customers",
            post(create_customer)
                .layer(accepts(&[
                    "email",
                    "name",
                    "description",
                    "phone",
                    "address.city",
                    "address.country",
                    "address.line1",
                    "address.line2",
                    "address.postal_code",
                    "address.state",
                    "invoice_settings.default_payment_method",
                    "preferred_locales.#",
                    "test_clock",
                    "metadata.*",
                ]))
                .merge(get(list_customers).layer(lists(&["email", "test_clock"]))),
        )
        .route(
            "/customers/{id}",
            retrieve(Kind::Customer)
                .merge(post(update_customer).layer(accepts(&[
                    "email",
                    "name",
                    "description",
                    "phone",
                    "address.city",
                    "address.country",
                    "address.line1",
                    "address.line2",
                    "address.postal_code",
                    "address.state",
                    "invoice_settings.default_payment_method",
                    "preferred_locales.#",
                    "metadata.*",
                ])))
                .merge(delete(delete_customer).layer(accepts(&[]))),
        )
}

async fn create_customer(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let mut customer = customer_json();
    apply(&mut customer, &params)?;
    if let Some(clock) = params.str("test_clock") {
        let mut conn = sandbox.db.acquire().await?;
        store::get(&mut conn, &account, Kind::TestClock, &clock).await?;
        customer["test_clock"] = json!(clock);
    }
    create_object(&sandbox, &account, &req, customer, &params).await
}

async fn update_customer(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    // The default card must be one of this customer's.
    if let Some(pm_id) = params
        .object("invoice_settings")
        .and_then(|i| i.str("default_payment_method"))
        .filter(|p| !p.is_empty())
    {
        let mut conn = sandbox.db.acquire().await?;
        let pm = store::get(&mut conn, &account, Kind::PaymentMethod, &pm_id).await?;
        if pm["customer"] != json!(id) {
            return Err(StripeError::invalid(
                "invoice_settings[default_payment_method]",
                format!("The payment method {pm_id} is not attached to customer {id}."),
            ));
        }
    }
    update_object(
        &sandbox,
        &account,
        &req,
        Kind::Customer,
        &id,
        &params,
        |c| apply(c, &params),
    )
    .await
}

async fn delete_customer(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    // Nothing to read, but an unknown parameter is still refused.
    _params: Params,
) -> ApiResult {
    delete_object(&sandbox, &account, &req, Kind::Customer, &id).await
}

async fn list_customers(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let mut contains = json!({});
    for key in ["email", "test_clock"] {
        if let Some(v) = params.str(key) {
            contains[key] = json!(v);
        }
    }
    list_objects(
        &sandbox,
        &account,
        Kind::Customer,
        "/v1/customers",
        &params,
        Filter::containing(contains),
    )
    .await
}

/// The fields a create or update may set. Empty strings clear, as on Stripe.
fn apply(c: &mut Value, params: &Params) -> Result<(), StripeError> {
    for key in ["email", "name", "description", "phone"] {
        if let Some(v) = params.str(key) {
            c[key] = if v.is_empty() { Value::Null } else { json!(v) };
        }
    }
    if let Some(email) = c["email"].as_str() {
        if email.len() > 512 || !email.contains('@') {
            return Err(StripeError::invalid(
                "email",
                format!("Invalid email address: {email}"),
            ));
        }
    }
    match params.get("address") {
        None => {}
        Some(Value::String(s)) if s.is_empty() => c["address"] = Value::Null,
        Some(Value::Object(given)) => {
            let mut address = if c["address"].is_object() {
                c["address"].clone()
            } else {
                json!({})
            };
            for field in ADDRESS_FIELDS {
                if let Some(v) = given.get(field).and_then(str_of) {
                    address[field] = if v.is_empty() { Value::Null } else { json!(v) };
                } else if address.get(field).is_none() {
                    address[field] = Value::Null;
                }
            }
            if let Some(country) = address["country"].as_str() {
                if country.len() != 2 {
                    return Err(StripeError::invalid(
                        "address[country]",
                        "Country must be a two-letter ISO code.",
                    ));
                }
            }
            c["address"] = address;
        }
        Some(_) => return Err(StripeError::invalid("address", "Invalid hash")),
    }
    if let Some(settings) = params.object("invoice_settings") {
        if let Some(pm) = settings.str("default_payment_method") {
            c["invoice_settings"]["default_payment_method"] = if pm.is_empty() {
                Value::Null
            } else {
                json!(pm)
            };
        }
    }
    if params.get("preferred_locales").is_some() {
        c["preferred_locales"] = json!(params.strings("preferred_locales"));
    }
    Ok(())
}
