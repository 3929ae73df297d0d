use super::{
    http::{str_of, Account, ApiResult, Page, Params, StripeError},
    store::{self, now, RequestInfo},
    Sandbox,
};
use axum::extract::{Path, State};
use serde_json::{json, Value};

const ADDRESS_FIELDS: [&str; 6] = ["city", "country", "line1", "line2", "postal_code", "state"];

/// A new, empty customer as Stripe returns it.
pub fn customer_json() -> Value {
    let id = store::new_id("cus");
    json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": now(),
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "discount": null,
        "email": null,
        "invoice_prefix": id[4..12].to_ascii_uppercase(),
        "invoice_settings": { "custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null },
        "livemode": false,
        "metadata": {},
        "name": null,
        "next_invoice_sequence": 1,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null,
    })
}

pub async fn create(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let mut customer = customer_json();
    apply(&mut customer, &params)?;
    params.metadata_into(&mut customer)?;
    if let Some(clock) = params.str("test_clock") {
        let mut conn = s.db.acquire().await?;
        store::get(&mut conn, &account, super::clocks::OBJECT, &clock).await?;
        customer["test_clock"] = json!(clock);
    }
    s.create(&account, &req, customer, &params).await
}

pub async fn update(
    State(s): State<Sandbox>,
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
        let mut conn = s.db.acquire().await?;
        let pm = store::get(&mut conn, &account, "payment_method", &pm_id).await?;
        if pm["customer"] != json!(id) {
            return Err(StripeError::invalid(
                "invoice_settings[default_payment_method]",
                format!("The payment method {pm_id} is not attached to customer {id}."),
            ));
        }
    }
    s.update(&account, &req, "customer", &id, &params, |c| {
        apply(c, &params)
    })
    .await
}

pub async fn list(State(s): State<Sandbox>, account: Account, params: Params) -> ApiResult {
    let mut filter = json!({});
    if let Some(email) = params.str("email") {
        filter["email"] = json!(email);
    }
    if let Some(clock) = params.str("test_clock") {
        filter["test_clock"] = json!(clock);
    }
    let list = store::list(
        &s.db,
        &account,
        "customer",
        "/v1/customers",
        &Page::from(&params)?,
        filter,
        None,
    )
    .await?;
    s.respond(&account, list, &params).await
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
