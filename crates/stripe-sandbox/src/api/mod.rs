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
    store::omit_includables(&mut obj, &expand);
    store::expand(&sandbox.db, account, &mut obj, &expand).await?;
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

/// Fault injection for reliability tests: with probability `rate`, a request fails the way
/// Stripe sometimes does (500, 429, or a connection that drops mid-response).
async fn inject_faults(rate: f64, req: Request, next: Next) -> Response {
    if !chance(rate) {
        return next.run(req).await;
    }
    match uuid::Uuid::new_v4().as_u128() % 3 {
        0 => StripeError::internal("injected fault").into_response(),
        1 => StripeError::rate_limited().into_response(),
        // A body that errors at once makes hyper drop the connection.
        _ => Response::new(axum::body::Body::from_stream(futures::stream::once(
            async {
                Err::<Vec<u8>, _>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected connection reset",
                ))
            },
        ))),
    }
}
