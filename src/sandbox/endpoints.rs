//! Webhook endpoints. The `whsec_` secret is returned only by create, as on Stripe.

use super::{
    http::{Account, ApiResult, Page, Params, StripeError},
    store::{self, now, RequestInfo},
    Sandbox,
};
use axum::{
    extract::{Path, State},
    Json,
};
use serde_json::{json, Value};

pub async fn create(State(s): State<Sandbox>, account: Account, params: Params) -> ApiResult {
    let url = endpoint_url(&params.required_str("url")?)?;
    let events = enabled_events(&params)?.ok_or_else(|| StripeError::missing("enabled_events"))?;
    let mut endpoint = json!({
        "id": store::new_id("we"),
        "object": "webhook_endpoint",
        "api_version": params.str("api_version"),
        "application": null,
        "created": now(),
        "description": params.str("description"),
        "enabled_events": events,
        "livemode": false,
        "metadata": {},
        "secret": format!("whsec_{}", &store::new_id("x")[2..]),
        "status": "enabled",
        "url": url,
    });
    params.metadata_into(&mut endpoint)?;
    let mut tx = s.db.begin().await?;
    store::insert(&mut tx, &account, &endpoint).await?;
    tx.commit().await?;
    // The one response that shows the secret.
    Ok(Json(endpoint))
}

pub async fn update(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let url = params.str("url").map(|u| endpoint_url(&u)).transpose()?;
    let events = enabled_events(&params)?;
    s.update(&account, &req, "webhook_endpoint", &id, &params, |e| {
        if let Some(url) = url {
            e["url"] = json!(url);
        }
        if let Some(events) = events {
            e["enabled_events"] = json!(events);
        }
        if let Some(disabled) = params.bool("disabled")? {
            e["status"] = json!(if disabled { "disabled" } else { "enabled" });
        }
        if let Some(d) = params.str("description") {
            e["description"] = if d.is_empty() { Value::Null } else { json!(d) };
        }
        Ok(())
    })
    .await
}

pub async fn list(State(s): State<Sandbox>, account: Account, params: Params) -> ApiResult {
    let list = store::list(
        &s.db,
        &account,
        "webhook_endpoint",
        "/v1/webhook_endpoints",
        &Page::from(&params)?,
        json!({}),
        None,
    )
    .await?;
    s.respond(&account, list, &params).await
}

fn endpoint_url(raw: &str) -> Result<String, StripeError> {
    match url::Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(u.to_string()),
        _ => Err(StripeError::invalid(
            "url",
            format!("Invalid URL: {raw}. URLs must be http(s) with a host."),
        )),
    }
}

fn enabled_events(params: &Params) -> Result<Option<Vec<String>>, StripeError> {
    if params.get("enabled_events").is_none() {
        return Ok(None);
    }
    let events = params.strings("enabled_events");
    if events.is_empty() || events.iter().any(|e| e.is_empty() || e.contains(' ')) {
        return Err(StripeError::invalid(
            "enabled_events",
            "Provide at least one event type, or '*' for all.",
        ));
    }
    Ok(Some(events))
}
