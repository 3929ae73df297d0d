//! `/v1/webhook_endpoints`. The `whsec_` secret is returned only by create, as on Stripe.

use super::{delete_object, list_objects, retrieve, update_object};
use crate::{
    engine::objects,
    http::{accepts, lists, Account, ApiResult, Params, RequestInfo, StripeError},
    ids::{new_id, now},
    kind::Kind,
    store::Filter,
    Sandbox,
};
use axum::{
    extract::{Path, State},
    routing::{delete, get, post},
    Json, Router,
};
use serde_json::{json, Value};

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/webhook_endpoints",
            post(create_endpoint)
                .layer(accepts(&[
                    "url",
                    "enabled_events.#",
                    "api_version",
                    "description",
                    "metadata.*",
                ]))
                .merge(get(list_endpoints).layer(lists(&[]))),
        )
        .route(
            "/webhook_endpoints/{id}",
            retrieve(Kind::WebhookEndpoint)
                .merge(post(update_endpoint).layer(accepts(&[
                    "url",
                    "enabled_events.#",
                    "disabled",
                    "description",
                    "metadata.*",
                ])))
                .merge(delete(delete_endpoint).layer(accepts(&[]))),
        )
}

async fn create_endpoint(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let url = endpoint_url(&params.required_str("url")?)?;
    let events = enabled_events(&params)?.ok_or_else(|| StripeError::missing("enabled_events"))?;
    // Events go out in the version the sandbox speaks; an endpoint pinned to another could
    // never get what it asked for.
    let api_version = params.str("api_version");
    if let Some(version) = api_version.as_deref() {
        if !super::API_VERSIONS.contains(&version) {
            return Err(StripeError::invalid(
                "api_version",
                format!(
                    "Invalid API version: {version}. The sandbox speaks {}.",
                    super::API_VERSIONS.join(" and ")
                ),
            ));
        }
    }
    let endpoint = json!({
        "id": new_id("we"),
        "object": "webhook_endpoint",
        "api_version": api_version,
        "application": null,
        "created": now(),
        "description": params.str("description"),
        "enabled_events": events,
        "livemode": false,
        "metadata": params.metadata()?,
        "secret": format!("whsec_{}", &new_id("x")[2..]),
        "status": "enabled",
        "url": url,
    });
    // The one response that shows the secret.
    Ok(Json(
        objects::create(&sandbox.db, &account, &req, endpoint).await?,
    ))
}

async fn update_endpoint(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let url = params.str("url").map(|u| endpoint_url(&u)).transpose()?;
    let events = enabled_events(&params)?;
    update_object(
        &sandbox,
        &account,
        &req,
        Kind::WebhookEndpoint,
        &id,
        &params,
        |e| {
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
        },
    )
    .await
}

async fn delete_endpoint(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    // Nothing to read, but an unknown parameter is still refused.
    _params: Params,
) -> ApiResult {
    delete_object(&sandbox, &account, &req, Kind::WebhookEndpoint, &id).await
}

async fn list_endpoints(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    list_objects(
        &sandbox,
        &account,
        Kind::WebhookEndpoint,
        "/v1/webhook_endpoints",
        &params,
        Filter::default(),
    )
    .await
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
