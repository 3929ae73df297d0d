//! `/v1/prices`: one-time and recurring prices, `lookup_key` with `transfer_lookup_key`,
//! `product_data` for a product made on the spot, and list filters.

use super::{list_objects, products::product_from, respond, retrieve, update_object};
use crate::{
    engine::catalog::claim_lookup_key,
    http::{accepts, lists, Account, ApiResult, Params, RequestInfo, StripeError},
    ids::{new_id, now},
    kind::Kind,
    store::{self, Filter},
    Sandbox,
};
use axum::{
    extract::{Path, State},
    routing::{get, post},
    Router,
};
use serde_json::{json, Value};

const TAX_BEHAVIORS: [&str; 3] = ["inclusive", "exclusive", "unspecified"];

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/prices",
            post(create_price)
                .layer(accepts(&[
                    "currency",
                    "unit_amount",
                    "billing_scheme",
                    "tiers_mode",
                    "tiers.#.up_to",
                    "tiers.#.unit_amount",
                    "tiers.#.flat_amount",
                    "recurring.interval",
                    "recurring.interval_count",
                    "recurring.usage_type",
                    "recurring.meter",
                    "tax_behavior",
                    "product",
                    "product_data.name",
                    "product_data.id",
                    "product_data.active",
                    "product_data.description",
                    "product_data.images.#",
                    "product_data.marketing_features.#.name",
                    "product_data.statement_descriptor",
                    "product_data.tax_code",
                    "product_data.unit_label",
                    "product_data.url",
                    "product_data.metadata.*",
                    "lookup_key",
                    "transfer_lookup_key",
                    "active",
                    "nickname",
                    "metadata.*",
                ]))
                .merge(get(list_prices).layer(lists(&[
                    "active",
                    "product",
                    "currency",
                    "type",
                    "recurring.interval",
                    "recurring.usage_type",
                    "lookup_keys.#",
                ]))),
        )
        .route(
            "/prices/{id}",
            retrieve(Kind::Price).merge(post(update_price).layer(accepts(&[
                "active",
                "nickname",
                "lookup_key",
                "transfer_lookup_key",
                "tax_behavior",
                "metadata.*",
            ]))),
        )
}

async fn create_price(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let currency = params.currency()?;
    let billing_scheme = params
        .one_of("billing_scheme", &["per_unit", "tiered"])?
        .unwrap_or_else(|| "per_unit".into());
    let (unit_amount, tiers_mode, tiers) = if billing_scheme == "tiered" {
        let mode = params
            .one_of("tiers_mode", &["graduated", "volume"])?
            .ok_or_else(|| StripeError::missing("tiers_mode"))?;
        (None, Some(mode), Some(tiers_of(&params)?))
    } else {
        let unit_amount = params
            .i64("unit_amount")?
            .ok_or_else(|| StripeError::missing("unit_amount"))?;
        if unit_amount < 0 {
            return Err(StripeError::invalid(
                "unit_amount",
                "This value must be greater than or equal to 0.",
            ));
        }
        (Some(unit_amount), None, None)
    };
    let recurring = match params.object("recurring") {
        None => Value::Null,
        Some(r) => {
            let interval = r
                .one_of("interval", &["day", "week", "month", "year"])?
                .ok_or_else(|| StripeError::missing("recurring[interval]"))?;
            let count = r.i64("interval_count")?.unwrap_or(1);
            if !(1..=1095).contains(&count) {
                return Err(StripeError::invalid(
                    "recurring[interval_count]",
                    "Invalid interval count.",
                ));
            }
            let usage_type = r
                .one_of("usage_type", &["licensed", "metered"])?
                .unwrap_or_else(|| "licensed".into());
            let meter = r.str("meter");
            // A metered price bills what its meter aggregated: it needs one, and only it.
            if usage_type == "metered" && meter.is_none() {
                return Err(StripeError::missing("recurring[meter]"));
            }
            if usage_type != "metered" && meter.is_some() {
                return Err(StripeError::invalid(
                    "recurring[meter]",
                    "Only a price with recurring[usage_type]=metered can have a meter.",
                ));
            }
            json!({ "interval": interval, "interval_count": count, "meter": meter,
                    "trial_period_days": null, "usage_type": usage_type })
        }
    };
    let tax_behavior = params
        .one_of("tax_behavior", &TAX_BEHAVIORS)?
        .unwrap_or_else(|| "unspecified".into());

    if tiers.is_some() && recurring.is_null() {
        return Err(StripeError::invalid(
            "billing_scheme",
            "Tiered prices must be recurring.",
        ));
    }
    let mut tx = sandbox.db.begin().await?;
    if let Some(meter) = recurring["meter"].as_str() {
        store::get(&mut tx, &account, Kind::Meter, meter)
            .await
            .map_err(|e| StripeError {
                param: Some("recurring[meter]".into()),
                ..e
            })?;
    }
    let product_id = match (params.str("product"), params.object("product_data")) {
        (Some(id), _) => {
            store::get(&mut tx, &account, Kind::Product, &id).await?;
            id
        }
        (None, Some(data)) => {
            let in_product_data = |e: StripeError| StripeError {
                param: e.param.map(|p| format!("product_data[{p}]")),
                ..e
            };
            let mut product = product_from(&data).map_err(in_product_data)?;
            data.metadata_into(&mut product).map_err(in_product_data)?;
            store::insert(&mut tx, &account, &product).await?;
            store::emit(&mut tx, &account, "product.created", &product, None, &req).await?;
            product["id"].as_str().unwrap_or_default().to_owned()
        }
        (None, None) => return Err(StripeError::missing("product")),
    };
    let lookup_key = params.str("lookup_key");
    if let Some(key) = &lookup_key {
        let transfer = params.bool("transfer_lookup_key")?.unwrap_or(false);
        claim_lookup_key(&mut tx, &account, &req, key, transfer, None).await?;
    }
    let mut price = json!({
        "id": new_id("price"),
        "object": "price",
        "active": params.bool("active")?.unwrap_or(true),
        "billing_scheme": billing_scheme,
        "created": now(),
        "currency": currency,
        "custom_unit_amount": null,
        "livemode": false,
        "lookup_key": lookup_key,
        "metadata": {},
        "nickname": params.str("nickname"),
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": tax_behavior,
        "tiers": tiers,
        "tiers_mode": tiers_mode,
        "transform_quantity": null,
        "type": if recurring.is_null() { "one_time" } else { "recurring" },
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount.map(|a| a.to_string()),
    });
    params.metadata_into(&mut price)?;
    store::insert(&mut tx, &account, &price).await?;
    store::emit(&mut tx, &account, "price.created", &price, None, &req).await?;
    tx.commit().await?;
    respond(&sandbox, &account, price, &params).await
}

/// `tiers[i][up_to]` (a whole number, or `inf` for the last), `tiers[i][unit_amount]` and
/// `tiers[i][flat_amount]`, in ascending order, as Stripe requires.
fn tiers_of(params: &Params) -> Result<Value, StripeError> {
    let given = params.objects("tiers");
    if given.is_empty() {
        return Err(StripeError::missing("tiers"));
    }
    let mut tiers = Vec::with_capacity(given.len());
    let mut previous = 0;
    for (i, tier) in given.iter().enumerate() {
        let last = i + 1 == given.len();
        let up_to = match tier.str("up_to").as_deref() {
            Some("inf") if last => None,
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if n > previous && !last => Some(n),
                _ => {
                    return Err(StripeError::invalid(
                        &format!("tiers[{i}][up_to]"),
                        "Each tier's up_to must be a whole number above the previous one, and the last must be `inf`.",
                    ))
                }
            },
            None => return Err(StripeError::missing(&format!("tiers[{i}][up_to]"))),
        };
        let unit = tier.i64("unit_amount")?;
        let flat = tier.i64("flat_amount")?;
        if unit.is_none() && flat.is_none() {
            return Err(StripeError::missing(&format!("tiers[{i}][unit_amount]")));
        }
        if unit.is_some_and(|u| u < 0) || flat.is_some_and(|f| f < 0) {
            return Err(StripeError::invalid(
                &format!("tiers[{i}]"),
                "Tier amounts must be greater than or equal to 0.",
            ));
        }
        tiers.push(json!({
            "flat_amount": flat, "flat_amount_decimal": flat.map(|f| f.to_string()),
            "unit_amount": unit, "unit_amount_decimal": unit.map(|u| u.to_string()),
            "up_to": up_to,
        }));
        previous = up_to.unwrap_or(i64::MAX);
    }
    Ok(Value::Array(tiers))
}

async fn update_price(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    if let Some(key) = params.str("lookup_key").filter(|k| !k.is_empty()) {
        let transfer = params.bool("transfer_lookup_key")?.unwrap_or(false);
        let mut tx = sandbox.db.begin().await?;
        claim_lookup_key(&mut tx, &account, &req, &key, transfer, Some(&id)).await?;
        tx.commit().await?;
    }
    update_object(&sandbox, &account, &req, Kind::Price, &id, &params, |p| {
        if let Some(active) = params.bool("active")? {
            p["active"] = json!(active);
        }
        for key in ["nickname", "lookup_key"] {
            if let Some(v) = params.str(key) {
                p[key] = if v.is_empty() { Value::Null } else { json!(v) };
            }
        }
        if let Some(tb) = params.one_of("tax_behavior", &TAX_BEHAVIORS)? {
            p["tax_behavior"] = json!(tb);
        }
        Ok(())
    })
    .await
}

async fn list_prices(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let mut contains = json!({});
    if let Some(active) = params.bool("active")? {
        contains["active"] = json!(active);
    }
    for key in ["product", "currency"] {
        if let Some(v) = params.str(key) {
            contains[key] = json!(v);
        }
    }
    if let Some(t) = params.one_of("type", &["one_time", "recurring"])? {
        contains["type"] = json!(t);
    }
    if let Some(r) = params.object("recurring") {
        let mut rec = json!({});
        if let Some(i) = r.str("interval") {
            rec["interval"] = json!(i);
        }
        if let Some(u) = r.str("usage_type") {
            rec["usage_type"] = json!(u);
        }
        contains["recurring"] = rec;
    }
    let keys = params.strings("lookup_keys");
    let filter = Filter {
        contains,
        any_of: (!keys.is_empty()).then_some(("lookup_key", keys)),
    };
    list_objects(
        &sandbox,
        &account,
        Kind::Price,
        "/v1/prices",
        &params,
        filter,
    )
    .await
}
