use super::{
    http::{Account, ApiResult, Page, Params, StripeError},
    resources::{currency, one_of},
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
    let currency = currency(&params)?;
    let unit_amount = params
        .i64("unit_amount")?
        .ok_or_else(|| StripeError::missing("unit_amount"))?;
    if unit_amount < 0 {
        return Err(StripeError::invalid(
            "unit_amount",
            "This value must be greater than or equal to 0.",
        ));
    }
    let recurring = match params.object("recurring") {
        None => Value::Null,
        Some(r) => {
            let interval = one_of(&r, "interval", &["day", "week", "month", "year"])?
                .ok_or_else(|| StripeError::missing("recurring[interval]"))?;
            let count = r.i64("interval_count")?.unwrap_or(1);
            if !(1..=1095).contains(&count) {
                return Err(StripeError::invalid(
                    "recurring[interval_count]",
                    "Invalid interval count.",
                ));
            }
            let usage_type = one_of(&r, "usage_type", &["licensed", "metered"])?
                .unwrap_or_else(|| "licensed".into());
            json!({ "interval": interval, "interval_count": count, "meter": r.str("meter"),
                    "trial_period_days": null, "usage_type": usage_type })
        }
    };
    let tax_behavior = one_of(
        &params,
        "tax_behavior",
        &["inclusive", "exclusive", "unspecified"],
    )?
    .unwrap_or_else(|| "unspecified".into());

    let mut tx = s.db.begin().await?;
    let product_id = match (params.str("product"), params.object("product_data")) {
        (Some(id), _) => {
            store::get(&mut tx, &account, "product", &id).await?;
            id
        }
        (None, Some(data)) => {
            let product = super::products::new_product(&data).map_err(|e| StripeError {
                param: e.param.map(|p| format!("product_data[{p}]")),
                ..e
            })?;
            store::insert(&mut tx, &account, &product).await?;
            store::emit(&mut tx, &account, "product.created", &product, None, &req).await?;
            product["id"].as_str().unwrap_or_default().to_owned()
        }
        (None, None) => return Err(StripeError::missing("product")),
    };
    let lookup_key = params.str("lookup_key");
    if let Some(key) = &lookup_key {
        claim_lookup_key(
            &mut tx,
            &account,
            &req,
            key,
            params.bool("transfer_lookup_key")?.unwrap_or(false),
        )
        .await?;
    }
    let mut price = json!({
        "id": store::new_id("price"),
        "object": "price",
        "active": params.bool("active")?.unwrap_or(true),
        "billing_scheme": "per_unit",
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
        "tiers_mode": null,
        "transform_quantity": null,
        "type": if recurring.is_null() { "one_time" } else { "recurring" },
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount.to_string(),
    });
    params.metadata_into(&mut price)?;
    store::insert(&mut tx, &account, &price).await?;
    store::emit(&mut tx, &account, "price.created", &price, None, &req).await?;
    tx.commit().await?;
    s.respond(&account, price, &params).await
}

/// A lookup key names one price per account. With `transfer_lookup_key` it moves from the
/// price that has it (which then emits `price.updated`); without, reuse is an error.
async fn claim_lookup_key(
    conn: &mut sqlx::PgConnection,
    account: &Account,
    req: &RequestInfo,
    key: &str,
    transfer: bool,
) -> Result<(), StripeError> {
    let holder: Option<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = 'price' and data ->> 'lookup_key' = $2 for update",
    )
    .bind(&account.0)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(mut old) = holder else { return Ok(()) };
    if !transfer {
        return Err(StripeError::invalid(
            "lookup_key",
            format!(
                "A price (`{}`) already uses that lookup key.",
                old["id"].as_str().unwrap_or("")
            ),
        ));
    }
    let before = old.clone();
    old["lookup_key"] = Value::Null;
    store::save(conn, account, &old).await?;
    store::emit(
        conn,
        account,
        "price.updated",
        &old,
        Some(store::previous_attributes(&before, &old)),
        req,
    )
    .await?;
    Ok(())
}

pub async fn update(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    if let Some(key) = params.str("lookup_key").filter(|k| !k.is_empty()) {
        let mut tx = s.db.begin().await?;
        let holder: Option<String> = sqlx::query_scalar(
            "select id from stripe_sandbox.objects where account = $1 and object = 'price' and data ->> 'lookup_key' = $2",
        )
        .bind(&account.0)
        .bind(&key)
        .fetch_optional(&mut *tx)
        .await?;
        if holder.as_deref() != Some(id.as_str()) {
            claim_lookup_key(
                &mut tx,
                &account,
                &req,
                &key,
                params.bool("transfer_lookup_key")?.unwrap_or(false),
            )
            .await?;
        }
        tx.commit().await?;
    }
    s.update(&account, &req, "price", &id, &params, |p| {
        if let Some(active) = params.bool("active")? {
            p["active"] = json!(active);
        }
        for key in ["nickname", "lookup_key"] {
            if let Some(v) = params.str(key) {
                p[key] = if v.is_empty() { Value::Null } else { json!(v) };
            }
        }
        if let Some(tb) = one_of(
            &params,
            "tax_behavior",
            &["inclusive", "exclusive", "unspecified"],
        )? {
            p["tax_behavior"] = json!(tb);
        }
        Ok(())
    })
    .await
}

pub async fn list(State(s): State<Sandbox>, account: Account, params: Params) -> ApiResult {
    let mut filter = json!({});
    if let Some(active) = params.bool("active")? {
        filter["active"] = json!(active);
    }
    for key in ["product", "currency"] {
        if let Some(v) = params.str(key) {
            filter[key] = json!(v);
        }
    }
    if let Some(t) = one_of(&params, "type", &["one_time", "recurring"])? {
        filter["type"] = json!(t);
    }
    if let Some(r) = params.object("recurring") {
        let mut rec = json!({});
        if let Some(i) = r.str("interval") {
            rec["interval"] = json!(i);
        }
        if let Some(u) = r.str("usage_type") {
            rec["usage_type"] = json!(u);
        }
        filter["recurring"] = rec;
    }
    let keys = params.strings("lookup_keys");
    let any_of = (!keys.is_empty()).then_some(("lookup_key", keys));
    let list = store::list(
        &s.db,
        &account,
        "price",
        "/v1/prices",
        &Page::from(&params)?,
        filter,
        any_of,
    )
    .await?;
    s.respond(&account, list, &params).await
}
