//! `/v1/billing/meters`, `/v1/billing/meter_events` and event summaries: the meters a
//! metered price bills from, the usage reported to them, and what they aggregated.

use super::{create_object, list_objects, respond, retrieve, update_object};
use crate::{
    engine::meters::{self, meter_json},
    http::{accepts, lists, Account, ApiResult, Params, RequestInfo, StripeError},
    ids::{new_id, now},
    kind::Kind,
    store::{self, Filter},
    Sandbox,
};
use axum::{
    extract::{Path, State},
    routing::{get, post},
    Json, Router,
};
use serde_json::{json, Value};

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/billing/meters",
            post(create_meter)
                .layer(accepts(&[
                    "display_name",
                    "event_name",
                    "default_aggregation.formula",
                    "customer_mapping.event_payload_key",
                    "customer_mapping.type",
                    "value_settings.event_payload_key",
                    "event_time_window",
                ]))
                .merge(get(list_meters).layer(lists(&["status"]))),
        )
        .route(
            "/billing/meters/{id}",
            retrieve(Kind::Meter).merge(post(update_meter).layer(accepts(&["display_name"]))),
        )
        .route(
            "/billing/meters/{id}/deactivate",
            post(deactivate_meter).layer(accepts(&[])),
        )
        .route(
            "/billing/meters/{id}/reactivate",
            post(reactivate_meter).layer(accepts(&[])),
        )
        .route(
            "/billing/meters/{id}/event_summaries",
            get(event_summaries).layer(lists(&[
                "customer",
                "start_time",
                "end_time",
                "value_grouping_window",
            ])),
        )
        .route(
            "/billing/meter_events",
            post(create_meter_event).layer(accepts(&[
                "event_name",
                "payload.*",
                "identifier",
                "timestamp",
            ])),
        )
}

const FORMULAS: [&str; 3] = ["sum", "count", "last"];

async fn create_meter(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let display_name = params.required_str("display_name")?;
    let event_name = params.required_str("event_name")?;
    if event_name.len() > 100 {
        return Err(StripeError::invalid(
            "event_name",
            "The event name must be at most 100 characters.",
        ));
    }
    let formula = params
        .object("default_aggregation")
        .map(|a| a.one_of("formula", &FORMULAS))
        .transpose()?
        .flatten()
        .ok_or_else(|| StripeError::missing("default_aggregation[formula]"))?;
    let customer_key = params
        .object("customer_mapping")
        .and_then(|m| m.str("event_payload_key"))
        .unwrap_or_else(|| "stripe_customer_id".into());
    let value_key = params
        .object("value_settings")
        .and_then(|v| v.str("event_payload_key"))
        .unwrap_or_else(|| "value".into());
    let window = params.one_of("event_time_window", &["day", "hour"])?;
    let mut conn = sandbox.db.acquire().await?;
    if meters::active_meter(&mut conn, &account, &event_name)
        .await?
        .is_some()
    {
        return Err(StripeError::invalid(
            "event_name",
            format!("An active meter with event_name `{event_name}` already exists."),
        ));
    }
    drop(conn);
    let meter = meter_json(
        &display_name,
        &event_name,
        &formula,
        &customer_key,
        &value_key,
        window.as_deref(),
    );
    create_object(&sandbox, &account, &req, meter, &params).await
}

async fn list_meters(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let mut contains = json!({});
    if let Some(status) = params.one_of("status", &["active", "inactive"])? {
        contains["status"] = json!(status);
    }
    list_objects(
        &sandbox,
        &account,
        Kind::Meter,
        "/v1/billing/meters",
        &params,
        Filter::containing(contains),
    )
    .await
}

/// Only the display name changes, as on Stripe.
async fn update_meter(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    update_object(&sandbox, &account, &req, Kind::Meter, &id, &params, |m| {
        if let Some(name) = params.str("display_name") {
            m["display_name"] = json!(name);
            m["updated"] = json!(now());
        }
        Ok(())
    })
    .await
}

/// Deactivates or reactivates a meter: `billing.meter.deactivated` / `.reactivated`.
async fn set_active(
    sandbox: &Sandbox,
    account: &Account,
    req: &RequestInfo,
    id: &str,
    active: bool,
    params: &Params,
) -> ApiResult {
    let mut tx = sandbox.db.begin().await?;
    let before = store::get(&mut tx, account, Kind::Meter, id).await?;
    let (from, to, event) = if active {
        ("inactive", "active", "billing.meter.reactivated")
    } else {
        ("active", "inactive", "billing.meter.deactivated")
    };
    if before["status"] != from {
        return Err(StripeError::invalid(
            "meter",
            format!("This meter is already {to}."),
        ));
    }
    if active {
        let name = before["event_name"].as_str().unwrap_or_default();
        if meters::active_meter(&mut tx, account, name)
            .await?
            .is_some()
        {
            return Err(StripeError::invalid(
                "event_name",
                format!("An active meter with event_name `{name}` already exists."),
            ));
        }
    }
    let mut meter = before.clone();
    meter["status"] = json!(to);
    meter["status_transitions"]["deactivated_at"] = if active { Value::Null } else { json!(now()) };
    meter["updated"] = json!(now());
    store::record_change(&mut tx, account, event, &before, &meter, req).await?;
    tx.commit().await?;
    respond(sandbox, account, meter, params).await
}

async fn deactivate_meter(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    set_active(&sandbox, &account, &req, &id, false, &params).await
}

async fn reactivate_meter(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    set_active(&sandbox, &account, &req, &id, true, &params).await
}

/// `event_name`, `payload` (the customer and the value under the meter's keys), optional
/// `identifier` (de-duplicated) and `timestamp` (within Stripe's window).
async fn create_meter_event(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let event_name = params.required_str("event_name")?;
    let payload = params
        .get("payload")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| StripeError::missing("payload"))?;
    let mut conn = sandbox.db.acquire().await?;
    let event = meters::record_event(
        &mut conn,
        &account,
        &event_name,
        &payload,
        params.str("identifier"),
        params.i64("timestamp")?,
    )
    .await?;
    Ok(Json(event))
}

/// `customer`, `start_time` and `end_time` (whole minutes), and an optional
/// `value_grouping_window` (`day` or `hour`): what the meter aggregated, as one summary for
/// the whole range or one per window.
async fn event_summaries(
    State(sandbox): State<Sandbox>,
    account: Account,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let customer = params.required_str("customer")?;
    let start = params
        .i64("start_time")?
        .ok_or_else(|| StripeError::missing("start_time"))?;
    let end = params
        .i64("end_time")?
        .ok_or_else(|| StripeError::missing("end_time"))?;
    if start % 60 != 0 || end % 60 != 0 {
        return Err(StripeError::invalid(
            "start_time",
            "start_time and end_time must be aligned to whole minutes.",
        ));
    }
    if end <= start {
        return Err(StripeError::invalid(
            "end_time",
            "end_time must be after start_time.",
        ));
    }
    let window = match params
        .one_of("value_grouping_window", &["day", "hour"])?
        .as_deref()
    {
        Some("day") => 86_400,
        Some(_) => 3_600,
        None => end - start,
    };
    if (end - start) / window > 10_000 {
        return Err(StripeError::invalid(
            "value_grouping_window",
            "Too many windows for this range.",
        ));
    }
    let mut conn = sandbox.db.acquire().await?;
    let meter = store::get(&mut conn, &account, Kind::Meter, &id).await?;
    let mut summaries = Vec::new();
    let mut from = start;
    while from < end {
        let to = (from + window).min(end);
        let value = meters::usage(&mut conn, &account, &meter, &customer, from, to).await?;
        summaries.push(json!({
            "id": new_id("mtrusg"), "object": "billing.meter_event_summary",
            "aggregated_value": value as f64, "end_time": to, "livemode": false,
            "meter": id, "start_time": from,
        }));
        from = to;
    }
    // Newest first, as Stripe lists them.
    summaries.reverse();
    let url = format!("/v1/billing/meters/{id}/event_summaries");
    Ok(Json(json!({
        "object": "list", "data": summaries, "has_more": false, "url": url,
    })))
}
