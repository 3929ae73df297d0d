//! Stripe's REST API: one module per resource, each with its handlers and the parsing of
//! their parameters; the behaviour is in `engine`. Mounted under `/v1` (standalone) or
//! `/sandbox/v1` (in the app).

mod checkout;
mod clocks;
mod coupons;
mod customers;
mod disputes;
mod events;
mod invoices;
mod meters;
mod payment_methods;
mod payments;
mod portal;
mod prices;
mod products;
mod subscriptions;
mod webhook_endpoints;

use crate::{
    engine::objects,
    http::{
        accepts, idempotency, Account, ApiCall, ApiResult, Page, Params, RequestInfo, StripeError,
    },
    ids::chance,
    kind::Kind,
    store::{self, Filter},
    Sandbox,
};
use axum::{
    extract::{Path, Request, State},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, MethodRouter},
    Json, Router,
};
use serde_json::Value;

pub fn router(sandbox: &Sandbox) -> Router {
    let fault_rate = sandbox.settings.fault_rate;
    Router::new()
        .merge(products::routes())
        .merge(prices::routes())
        .merge(customers::routes())
        .merge(payment_methods::routes())
        .merge(coupons::routes())
        .merge(checkout::routes())
        .merge(subscriptions::routes())
        .merge(invoices::routes())
        .merge(meters::routes())
        .merge(payments::routes())
        .merge(disputes::routes())
        .merge(portal::routes())
        .merge(clocks::routes())
        .merge(webhook_endpoints::routes())
        .merge(events::routes())
        .fallback(unknown_endpoint)
        // Every route declares the parameters it implements (`http::accepts`).
        .layer(axum::Extension(ApiCall))
        .layer(middleware::from_fn_with_state(
            sandbox.db.clone(),
            idempotency,
        ))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            inject_faults(fault_rate, req, next)
        }))
        .layer(middleware::from_fn(stripe_headers))
        .with_state(sandbox.clone())
}

/// An object as the API shows it: includable fields only when expanded, `expand[]` applied,
/// the sandbox's own notes removed.
pub(crate) async fn respond(
    sandbox: &Sandbox,
    account: &Account,
    mut obj: Value,
    params: &Params,
) -> ApiResult {
    let expand = params.expand();
    // Expanded objects come whole from the store: their includables go after expansion.
    store::expand(&sandbox.db, account, &mut obj, &expand).await?;
    store::omit_includables(&mut obj, &expand);
    Ok(Json(store::present(obj)))
}

/// `GET /v1/<resources>/{id}` for a kind whose retrieve needs nothing special.
fn retrieve(kind: Kind) -> MethodRouter<Sandbox> {
    get(
        move |State(sandbox): State<Sandbox>,
              account: Account,
              Path(id): Path<String>,
              params: Params| async move {
            let obj = objects::retrieve(&sandbox.db, &account, kind, &id).await?;
            respond(&sandbox, &account, obj, &params).await
        },
    )
    .layer(accepts(&[]))
}

/// `DELETE /v1/<resources>/{id}` for a kind whose deletion needs nothing special.
async fn delete_object(
    sandbox: &Sandbox,
    account: &Account,
    req: &RequestInfo,
    kind: Kind,
    id: &str,
) -> ApiResult {
    Ok(Json(
        objects::delete(&sandbox.db, account, req, kind, id).await?,
    ))
}

/// Creates an object built from the request (metadata included) and answers with it.
async fn create_object(
    sandbox: &Sandbox,
    account: &Account,
    req: &RequestInfo,
    mut obj: Value,
    params: &Params,
) -> ApiResult {
    params.metadata_into(&mut obj)?;
    let obj = objects::create(&sandbox.db, account, req, obj).await?;
    respond(sandbox, account, obj, params).await
}

/// Applies the request's changes (and its metadata) to a stored object.
async fn update_object(
    sandbox: &Sandbox,
    account: &Account,
    req: &RequestInfo,
    kind: Kind,
    id: &str,
    params: &Params,
    change: impl FnOnce(&mut Value) -> Result<(), StripeError>,
) -> ApiResult {
    let obj = objects::update(&sandbox.db, account, req, kind, id, |obj| {
        change(obj)?;
        params.metadata_into(obj)
    })
    .await?;
    respond(sandbox, account, obj, params).await
}

/// A page of `kind`, newest first.
async fn list_objects(
    sandbox: &Sandbox,
    account: &Account,
    kind: Kind,
    url: &str,
    params: &Params,
    filter: Filter,
) -> ApiResult {
    let list = store::list(
        &sandbox.db,
        account,
        kind,
        url,
        &Page::from(params)?,
        filter,
    )
    .await?;
    respond(sandbox, account, list, params).await
}

async fn unknown_endpoint(req: Request) -> StripeError {
    StripeError::not_found_url(req.method().as_str(), req.uri().path())
}

/// The API versions the sandbox answers in: the one async-stripe pins, and the one current
/// SDKs pin (the shapes it serves are the same).
pub const API_VERSIONS: [&str; 2] = [crate::API_VERSION, "2026-10-28.endive"];

/// What Stripe's SDKs read from every answer: `Request-Id` (the request's id, also on the
/// events it causes) and `Stripe-Version` (the version used: the request's `Stripe-Version`,
/// which must be one the sandbox knows, or the default).
async fn stripe_headers(mut req: Request, next: Next) -> Response {
    let id = crate::ids::new_id("req");
    let version = match req.headers().get("stripe-version").map(|v| v.to_str()) {
        None => crate::API_VERSION.to_owned(),
        Some(Ok(v)) if API_VERSIONS.contains(&v.trim()) => v.trim().to_owned(),
        Some(v) => {
            let given = v.unwrap_or("?").to_owned();
            let mut res = StripeError::invalid(
                "Stripe-Version",
                format!(
                    "Invalid Stripe API version: {given}. The sandbox answers in {}.",
                    API_VERSIONS.join(" and ")
                ),
            )
            .into_response();
            stamp(&mut res, &id, crate::API_VERSION);
            return res;
        }
    };
    req.extensions_mut()
        .insert(crate::http::RequestId(id.clone()));
    let mut res = next.run(req).await;
    stamp(&mut res, &id, &version);
    res
}

fn stamp(res: &mut Response, id: &str, version: &str) {
    use axum::http::HeaderValue;
    if let Ok(v) = HeaderValue::from_str(id) {
        res.headers_mut().insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(version) {
        res.headers_mut().insert("stripe-version", v);
    }
}

/// Fault injection for reliability tests: with probability `rate`, a request fails the way
/// Stripe sometimes does (500, 429, or a connection that drops mid-response).
async fn inject_faults(rate: f64, req: Request, next: Next) -> Response {
    if !chance(rate) {
        return next.run(req).await;
    }
    // What Stripe says of its own 500s and 429s: try again (SDKs read this header).
    let should_retry = |mut res: Response| {
        res.headers_mut().insert(
            "stripe-should-retry",
            axum::http::HeaderValue::from_static("true"),
        );
        res
    };
    match uuid::Uuid::new_v4().as_u128() % 3 {
        0 => should_retry(StripeError::internal("injected fault").into_response()),
        1 => should_retry(StripeError::rate_limited().into_response()),
        // The connection drops after the work is done, before the answer arrives: the case
        // idempotency keys exist for (a client that retries without one does it twice). A
        // body that errors at once makes hyper drop the connection.
        _ => {
            drop(next.run(req).await);
            Response::new(axum::body::Body::from_stream(futures::stream::once(
                async {
                    Err::<Vec<u8>, _>(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "injected connection reset",
                    ))
                },
            )))
        }
    }
}
