//! `/v1/invoices`: list (by customer, subscription, status), retrieve, preview and pay; and
//! `/v1/invoice_payments`, the way from an invoice to its payment intent.

use super::{list_objects, respond, retrieve};
use crate::{
    engine::{invoices, payments::Outcome},
    http::{accepts, lists, Account, ApiResult, Page, Params, RequestInfo, StripeError},
    kind::Kind,
    store::Filter,
    Sandbox,
};
use axum::{
    extract::{Path, State},
    routing::{get, post},
    Router,
};
use serde_json::json;

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/invoices",
            get(list_invoices).layer(lists(&["customer", "status", "subscription"])),
        )
        .route(
            "/invoices/create_preview",
            post(create_preview).layer(accepts(&["subscription", "customer"])),
        )
        .route("/invoices/{id}", retrieve(Kind::Invoice))
        .route(
            "/invoice_payments",
            get(list_invoice_payments).layer(lists(&[
                "invoice",
                "status",
                "payment.type",
                "payment.payment_intent",
            ])),
        )
        .route(
            "/invoice_payments/{id}",
            get(retrieve_invoice_payment).layer(accepts(&[])),
        )
        .route(
            "/invoices/{id}/pay",
            post(pay_invoice).layer(accepts(&["payment_method"])),
        )
}

async fn list_invoices(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let mut contains = json!({});
    for key in ["customer", "status"] {
        if let Some(v) = params.str(key) {
            contains[key] = json!(v);
        }
    }
    if let Some(sub) = params.str("subscription") {
        contains["parent"] = json!({ "subscription_details": { "subscription": sub } });
    }
    list_objects(
        &sandbox,
        &account,
        Kind::Invoice,
        "/v1/invoices",
        &params,
        Filter::containing(contains),
    )
    .await
}

/// `POST /v1/invoices/create_preview` for `subscription` (and its `customer`): the next
/// invoice as it stands, not stored.
async fn create_preview(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let id = params
        .str("subscription")
        .ok_or_else(|| StripeError::missing("subscription"))?;
    let mut conn = sandbox.db.acquire().await?;
    let subscription = crate::store::get(&mut conn, &account, Kind::Subscription, &id).await?;
    if let Some(customer) = params.str("customer") {
        if subscription["customer"] != customer.as_str() {
            return Err(StripeError::invalid(
                "subscription",
                "The subscription does not belong to this customer.",
            ));
        }
    }
    let invoice =
        invoices::preview(&mut conn, &account, &sandbox.public_url, &subscription).await?;
    drop(conn);
    respond(&sandbox, &account, invoice, &params).await
}

/// `POST /v1/invoices/{id}/pay`: charge the default payment method (or `payment_method`).
async fn pay_invoice(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let mut tx = sandbox.db.begin().await?;
    let pm_id = params.str("payment_method");
    let (invoice, outcome) =
        invoices::settle(&mut tx, &account, &req, &id, pm_id.as_deref(), false).await?;
    tx.commit().await?;
    if let Outcome::Failed { decline_code, .. } = outcome {
        return Err(StripeError::card_declined(
            if decline_code == "insufficient_funds" {
                "insufficient_funds"
            } else {
                "generic_decline"
            },
        ));
    }
    respond(&sandbox, &account, invoice, &params).await
}

/// `GET /v1/invoice_payments`: by `invoice`, `status` and `payment[payment_intent]`, newest
/// first.
async fn list_invoice_payments(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let page = Page::from(&params)?;
    let status = params.one_of("status", &["canceled", "open", "paid"])?;
    let payment = params.object("payment");
    let intent = match &payment {
        Some(p) => {
            p.one_of("type", &["payment_intent"])?
                .ok_or_else(|| StripeError::missing("payment[type]"))?;
            p.str("payment_intent")
        }
        None => None,
    };
    let mut conn = sandbox.db.acquire().await?;
    let invoice = params.str("invoice");
    let found = invoices::payments(&mut conn, &account, invoice.as_deref(), None).await?;
    let found = found
        .into_iter()
        .filter(|p| status.as_ref().is_none_or(|s| p["status"] == s.as_str()))
        .filter(|p| {
            intent
                .as_ref()
                .is_none_or(|pi| p["payment"]["payment_intent"] == pi.as_str())
        })
        .collect();
    let list = page.slice(found, "/v1/invoice_payments");
    respond(&sandbox, &account, list, &params).await
}

async fn retrieve_invoice_payment(
    State(sandbox): State<Sandbox>,
    account: Account,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let mut conn = sandbox.db.acquire().await?;
    let payment = invoices::payments(&mut conn, &account, None, Some(&id))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| StripeError::no_such("invoice_payment", &id))?;
    respond(&sandbox, &account, payment, &params).await
}
