use super::{
    http::{str_of, Account, ApiResult, Page, Params, StripeError},
    resources::check_custom_id,
    store::{self, now, RequestInfo},
    Sandbox,
};
use axum::extract::{Path, State};
use serde_json::{json, Value};

pub async fn create(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let product = new_product(&params)?;
    s.create(&account, &req, product, &params).await
}

/// A product as Stripe returns it, from create parameters (also `price[product_data]`).
pub fn new_product(params: &Params) -> Result<Value, StripeError> {
    let name = params.required_str("name")?;
    let id = match params.str("id") {
        Some(id) => {
            check_custom_id(&id)?;
            id
        }
        None => store::new_id("prod"),
    };
    let created = now();
    let mut product = json!({
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
    });
    params.metadata_into(&mut product)?;
    Ok(product)
}

pub async fn update(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let default_price = match params.str("default_price") {
        Some(price_id) => {
            let mut conn = s.db.acquire().await?;
            let price = store::get(&mut conn, &account, "price", &price_id).await?;
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
    s.update(&account, &req, "product", &id, &params, |p| {
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

pub async fn delete(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
) -> ApiResult {
    let prices: i64 =
        sqlx::query_scalar("select count(*) from stripe_sandbox.objects where account = $1 and object = 'price' and data ->> 'product' = $2")
            .bind(&account.0)
            .bind(&id)
            .fetch_one(&s.db)
            .await?;
    if prices > 0 {
        return Err(StripeError::invalid(
            "id",
            "This product cannot be deleted because it has one or more user-created prices.",
        ));
    }
    s.delete(&account, &req, "product", &id).await
}

pub async fn list(State(s): State<Sandbox>, account: Account, params: Params) -> ApiResult {
    let mut filter = json!({});
    if let Some(active) = params.bool("active")? {
        filter["active"] = json!(active);
    }
    let ids = params.strings("ids");
    let any_of = (!ids.is_empty()).then_some(("id", ids));
    let list = store::list(
        &s.db,
        &account,
        "product",
        "/v1/products",
        &Page::from(&params)?,
        filter,
        any_of,
    )
    .await?;
    s.respond(&account, list, &params).await
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
