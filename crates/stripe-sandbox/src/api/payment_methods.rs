//! `/v1/payment_methods`: cards created from a test number or used by test id
//! (`pm_card_visa`, …), attached to customers, detached, listed per customer.

use super::{create_object, list_objects, respond};
use crate::{
    engine::{cards, objects, payment_methods},
    http::{accepts, lists, Account, ApiResult, Params, RequestInfo, StripeError},
    kind::Kind,
    store::Filter,
    Sandbox,
};
use axum::{
    extract::{Path, State},
    routing::{get, post},
    Json, Router,
};
use serde_json::json;

pub fn routes() -> Router<Sandbox> {
    Router::new()
        .route(
            "/payment_methods",
            post(create_payment_method)
                .layer(accepts(&[
                    "type",
                    "card.number",
                    "card.exp_month",
                    "card.exp_year",
                    "card.cvc",
                    "metadata.*",
                ]))
                .merge(get(list_payment_methods).layer(lists(&["customer", "type"]))),
        )
        .route(
            "/payment_methods/{id}",
            get(retrieve_payment_method).layer(accepts(&[])),
        )
        .route(
            "/payment_methods/{id}/attach",
            post(attach_payment_method).layer(accepts(&["customer"])),
        )
        .route(
            "/payment_methods/{id}/detach",
            post(detach_payment_method).layer(accepts(&[])),
        )
        .route(
            "/customers/{id}/payment_methods",
            get(list_customer_payment_methods).layer(lists(&["type"])),
        )
}

/// `type=card` with `card[number|exp_month|exp_year|cvc]` (the sandbox accepts raw test
/// numbers; they never leave this machine).
async fn create_payment_method(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    if params.str("type").as_deref() != Some("card") {
        return Err(StripeError::invalid(
            "type",
            "The sandbox supports payment methods of type card.",
        ));
    }
    let card = params
        .object("card")
        .ok_or_else(|| StripeError::missing("card"))?;
    let number = card
        .required_str("number")
        .map_err(|_| StripeError::missing("card[number]"))?;
    if cards::test_card(&number).is_none() && !cards::luhn_valid(&number) {
        return Err(StripeError::card(
            "card[number]",
            "incorrect_number",
            "Your card number is incorrect.",
        ));
    }
    let exp_month = card
        .i64("exp_month")?
        .ok_or_else(|| StripeError::missing("card[exp_month]"))?;
    let exp_year = card
        .i64("exp_year")?
        .ok_or_else(|| StripeError::missing("card[exp_year]"))?;
    cards::check_expiry(exp_month, exp_year)?;
    let pm = cards::card_payment_method(&number, exp_month, exp_year, cards::blank_billing());
    create_object(&sandbox, &account, &req, pm, &params).await
}

async fn retrieve_payment_method(
    State(sandbox): State<Sandbox>,
    account: Account,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    // The test ids are not stored objects: each use is a fresh payment method, as on Stripe.
    if let Some(card) = cards::test_id(&id) {
        return Ok(Json(crate::store::present(cards::test_card_template(card))));
    }
    let pm = objects::retrieve(&sandbox.db, &account, Kind::PaymentMethod, &id).await?;
    respond(&sandbox, &account, pm, &params).await
}

async fn attach_payment_method(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let customer = params.required_str("customer")?;
    let pm = payment_methods::attach(&sandbox.db, &account, &req, &id, &customer).await?;
    respond(&sandbox, &account, pm, &params).await
}

async fn detach_payment_method(
    State(sandbox): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let pm = payment_methods::detach(&sandbox.db, &account, &req, &id).await?;
    respond(&sandbox, &account, pm, &params).await
}

/// `GET /v1/payment_methods?customer=…`
async fn list_payment_methods(
    State(sandbox): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    let customer = params.required_str("customer")?;
    list_for(&sandbox, &account, &customer, &params).await
}

/// `GET /v1/customers/{id}/payment_methods`
async fn list_customer_payment_methods(
    State(sandbox): State<Sandbox>,
    account: Account,
    Path(customer): Path<String>,
    params: Params,
) -> ApiResult {
    list_for(&sandbox, &account, &customer, &params).await
}

async fn list_for(
    sandbox: &Sandbox,
    account: &Account,
    customer: &str,
    params: &Params,
) -> ApiResult {
    let url = format!("/v1/customers/{customer}/payment_methods");
    let filter = Filter::containing(json!({ "customer": customer }));
    list_objects(sandbox, account, Kind::PaymentMethod, &url, params, filter).await
}
