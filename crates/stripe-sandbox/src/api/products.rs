//! `/v1/products`: create (optionally with your own `id`), retrieve, update, delete, list.

use super::{create_object, delete_object, list_objects, retrieve, update_object};
use crate::{
    http::{accepts, lists, str_of, Account, ApiResult, Params, RequestInfo, StripeError},
    ids::{new_id, now},
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

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/products",
            post(create_product)
                .layer(accepts(&[
                    "name",
                    "id",
                    "active",
                    "description",
                    "images.#",
                    "marketing_features.#.name",
                    "statement_descriptor",
                    "tax_code",
                    "unit_label",
                    "url",
                    "metadata.*",
                ]))
                .merge(get(list_products).layer(lists(&["active", "ids.#"]))),
        )
        .route(
            "/products/{id}",
            retrieve(Kind::Product)
                .merge(post(update_product).layer(accepts(&[
                    "name",
                    "active",
                    "description",
                    "images.#",
                    "marketing_features.#.name",
                    "statement_descriptor",
                    "tax_code",
                    "unit_label",
                    "url",
                    "default_price",
                    "metadata.*",
                ])))
                .merge(delete(delete_product).layer(accepts(&[]))),
        )
}

async fn create_product(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let product = product_from(&params)?;
    create_object(&sandbox, &account, &req, product, &params).await
}

/// A product as Stripe returns it, from create parameters (also a price's `product_data`).
pub(super) fn product_from(params: &Params) -> Result<Value, StripeError> {
    let name = params.required_str("name")?;
    let id = params.custom_id()?.unwrap_or_else(|| new_id("prod"));
    let created = now();
    Ok(json!({
        "id": id,
        "object": "product",
        "active": params.bool("active")?.unwrap_or(true),
        "created": created,
        "default_price": null,
        "description": params.str("description"),
        "images": params.strings("images"),
        "livemode": false,
        "marketing_features": marketing_features(params)?.unwrap_or_default(),
        "metadata": {},
        "name": name,
        "package_dimensions": null,
        "shippable": null,
        "statement_descriptor": params.str("statement_descriptor"),
        "tax_code": params.str("tax_code"),
        "type": "service",
        "unit_label": params.str("unit_label"),
        "updated": created,
        "url": params.str("url"),
    }))
}

async fn update_product(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let default_price = match params.str("default_price") {
        Some(price_id) => {
            let mut conn = sandbox.db.acquire().await?;
            let price = store::get(&mut conn, &account, Kind::Price, &price_id).await?;
            if price["product"] != json!(id) {
                return Err(StripeError::invalid(
                    "default_price",
                    "The default price must belong to this product.",
                ));
            }
            Some(price_id)
        }
        None => None,
    };
    update_object(&sandbox, &account, &req, Kind::Product, &id, &params, |p| {
        for key in [
            "name",
            "description",
            "statement_descriptor",
            "tax_code",
            "unit_label",
            "url",
        ] {
            if let Some(v) = params.str(key) {
                p[key] = if v.is_empty() && key != "name" {
                    Value::Null
                } else {
                    json!(v)
                };
            }
        }
        if let Some(active) = params.bool("active")? {
            p["active"] = json!(active);
        }
        if params.get("images").is_some() {
            p["images"] = json!(params.strings("images"));
        }
        if let Some(features) = marketing_features(&params)? {
            p["marketing_features"] = json!(features);
        }
        if let Some(price) = default_price {
            p["default_price"] = json!(price);
        }
        Ok(())
    })
    .await
}

async fn delete_product(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    // Nothing to read, but an unknown parameter is still refused.
    _params: Params,
) -> ApiResult {
    let prices: i64 =
        sqlx::query_scalar("select count(*) from stripe_sandbox.objects where account = $1 and object = 'price' and data ->> 'product' = $2")
            .bind(&account.0)
            .bind(&id)
            .fetch_one(&sandbox.db)
            .await?;
    if prices > 0 {
        return Err(StripeError::invalid(
            "id",
            "This product cannot be deleted because it has one or more user-created prices.",
        ));
    }
    delete_object(&sandbox, &account, &req, Kind::Product, &id).await
}

async fn list_products(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let mut contains = json!({});
    if let Some(active) = params.bool("active")? {
        contains["active"] = json!(active);
    }
    let ids = params.strings("ids");
    let filter = Filter {
        contains,
        any_of: (!ids.is_empty()).then_some(("id", ids)),
    };
    list_objects(
        &sandbox,
        &account,
        Kind::Product,
        "/v1/products",
        &params,
        filter,
    )
    .await
}

/// `marketing_features[0][name]=...`: Stripe's list of feature lines shown on pricing tables.
fn marketing_features(params: &Params) -> Result<Option<Vec<Value>>, StripeError> {
    match params.get("marketing_features") {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(Some(Vec::new())),
        Some(Value::Array(items)) => items
            .iter()
            .map(|f| {
                f.get("name")
                    .and_then(str_of)
                    .map(|name| json!({ "name": name }))
                    .ok_or_else(|| {
                        StripeError::invalid("marketing_features", "Each feature needs a name.")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(StripeError::invalid("marketing_features", "Invalid array")),
    }
}
