//! Card payment methods: created from a test card number or used by test id
//! (`pm_card_visa`, …), attached to customers, set as their default.

use super::{
    cards::{self, Behavior},
    http::{Account, ApiResult, Page, Params, StripeError},
    store::{self, now, RequestInfo},
    Sandbox,
};
use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use serde_json::{json, Value};

/// A card error as Stripe sends it: 402 with `decline_code`.
pub fn declined(decline_code: &'static str) -> StripeError {
    let message = match decline_code {
        "insufficient_funds" => "Your card has insufficient funds.",
        _ => "Your card was declined.",
    };
    StripeError {
        status: StatusCode::PAYMENT_REQUIRED,
        kind: "card_error",
        code: Some("card_declined"),
        message: message.into(),
        param: None,
        decline_code: Some(decline_code),
    }
}

/// A payment method object for a card. `number` has been checked by the caller.
pub fn card_payment_method(number: &str, exp_month: i64, exp_year: i64, billing: Value) -> Value {
    let known = cards::find(number);
    let digits: String = number.chars().filter(|c| !c.is_whitespace()).collect();
    let last4 = &digits[digits.len() - 4..];
    json!({
        "id": store::new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing,
        "card": {
            "brand": known.map(|c| c.brand).unwrap_or_else(|| cards::brand_of(&digits)),
            "checks": { "address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass" },
            "country": known.map(|c| c.country).unwrap_or("US"),
            "display_brand": known.map(|c| c.brand).unwrap_or_else(|| cards::brand_of(&digits)),
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": &store::new_id("fp")[3..19],
            "funding": known.map(|c| c.funding).unwrap_or("credit"),
            "last4": last4,
            "networks": { "available": [known.map(|c| c.brand).unwrap_or_else(|| cards::brand_of(&digits))], "preferred": null },
            "three_d_secure_usage": { "supported": true },
            "wallet": null,
        },
        "created": now(),
        "customer": null,
        "livemode": false,
        "metadata": {},
        "type": "card",
        // Not a Stripe field: how this card behaves in the sandbox.
        "sandbox_card": digits,
    })
}

fn blank_billing() -> Value {
    json!({ "address": { "city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null },
            "email": null, "name": null, "phone": null, "tax_id": null })
}

/// How a stored payment method's card behaves.
pub fn behavior_of(pm: &Value) -> Behavior {
    pm["sandbox_card"]
        .as_str()
        .and_then(cards::find)
        .map(|c| c.behavior)
        .unwrap_or(Behavior::Succeeds)
}

/// `POST /v1/payment_methods` with `type=card` and `card[number|exp_month|exp_year|cvc]`
/// (the sandbox accepts raw test numbers; they never leave this machine).
pub async fn create(
    State(s): State<Sandbox>,
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
    if cards::find(&number).is_none() && !cards::luhn_valid(&number) {
        return Err(StripeError {
            code: Some("incorrect_number"),
            status: StatusCode::PAYMENT_REQUIRED,
            kind: "card_error",
            ..StripeError::invalid("card[number]", "Your card number is incorrect.")
        });
    }
    let exp_month = card
        .i64("exp_month")?
        .ok_or_else(|| StripeError::missing("card[exp_month]"))?;
    let exp_year = card
        .i64("exp_year")?
        .ok_or_else(|| StripeError::missing("card[exp_year]"))?;
    check_expiry(exp_month, exp_year)?;
    let pm = card_payment_method(&number, exp_month, exp_year, blank_billing());
    s.create(&account, &req, pm, &params).await
}

pub fn check_expiry(month: i64, year: i64) -> Result<(), StripeError> {
    let today = time::OffsetDateTime::now_utc();
    let (y, m) = (i64::from(today.year()), i64::from(u8::from(today.month())));
    if !(1..=12).contains(&month) {
        return Err(StripeError {
            code: Some("invalid_expiry_month"),
            ..StripeError::invalid(
                "card[exp_month]",
                "Your card's expiration month is invalid.",
            )
        });
    }
    if year < y || (year == y && month < m) || year > y + 50 {
        return Err(StripeError {
            code: Some("invalid_expiry_year"),
            ..StripeError::invalid("card[exp_year]", "Your card's expiration year is invalid.")
        });
    }
    Ok(())
}

pub async fn retrieve(
    State(s): State<Sandbox>,
    account: Account,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    match cards::find(&id) {
        // The test ids are not stored objects: each use is a fresh payment method, as on Stripe.
        Some(card) if id.starts_with("pm_card_") => Ok(axum::Json(template(card))),
        _ => s.retrieve(&account, "payment_method", &id, &params).await,
    }
}

fn template(card: &cards::TestCard) -> Value {
    let mut pm = card_payment_method(
        card.number,
        12,
        i64::from(time::OffsetDateTime::now_utc().year()) + 3,
        blank_billing(),
    );
    pm["id"] = json!(card.test_id);
    pm
}

/// Attaches to a customer. A test id makes a new payment method from its card, as Stripe
/// does. Cards that decline are refused here, like Stripe's check when saving a card.
pub async fn attach(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let customer = params.required_str("customer")?;
    let mut tx = s.db.begin().await?;
    store::get(&mut tx, &account, "customer", &customer).await?;
    let mut pm = match cards::find(&id) {
        Some(card) if id.starts_with("pm_card_") => {
            let pm = card_payment_method(
                card.number,
                12,
                i64::from(time::OffsetDateTime::now_utc().year()) + 3,
                blank_billing(),
            );
            store::insert(&mut tx, &account, &pm).await?;
            pm
        }
        _ => store::get(&mut tx, &account, "payment_method", &id).await?,
    };
    if let Behavior::Declined(code) = behavior_of(&pm) {
        return Err(declined(code));
    }
    match pm["customer"].as_str() {
        Some(owner) if owner != customer => {
            return Err(StripeError::invalid(
                "customer",
                "This PaymentMethod is already attached to another customer.",
            ))
        }
        Some(_) => {}
        None => {
            pm["customer"] = json!(customer);
            store::save(&mut tx, &account, &pm).await?;
            store::emit(
                &mut tx,
                &account,
                "payment_method.attached",
                &pm,
                None,
                &req,
            )
            .await?;
        }
    }
    tx.commit().await?;
    s.respond(&account, pm, &params).await
}

pub async fn detach(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let mut tx = s.db.begin().await?;
    let mut pm = store::get(&mut tx, &account, "payment_method", &id).await?;
    let Some(customer) = pm["customer"].as_str().map(str::to_owned) else {
        return Err(StripeError::invalid(
            "payment_method",
            "The payment method is not attached to a customer.",
        ));
    };
    pm["customer"] = Value::Null;
    store::save(&mut tx, &account, &pm).await?;
    // A detached card can no longer be the customer's default.
    let mut c = store::get(&mut tx, &account, "customer", &customer).await?;
    if c["invoice_settings"]["default_payment_method"] == json!(id) {
        let before = c.clone();
        c["invoice_settings"]["default_payment_method"] = Value::Null;
        store::save(&mut tx, &account, &c).await?;
        store::emit(
            &mut tx,
            &account,
            "customer.updated",
            &c,
            Some(store::previous_attributes(&before, &c)),
            &req,
        )
        .await?;
    }
    store::emit(
        &mut tx,
        &account,
        "payment_method.detached",
        &pm,
        Some(json!({ "customer": customer })),
        &req,
    )
    .await?;
    tx.commit().await?;
    s.respond(&account, pm, &params).await
}

/// `GET /v1/payment_methods?customer=…` and `GET /v1/customers/{id}/payment_methods`.
pub async fn list(State(s): State<Sandbox>, account: Account, params: Params) -> ApiResult {
    let customer = params.required_str("customer")?;
    list_for(&s, &account, &customer, &params).await
}

pub async fn list_for_customer(
    State(s): State<Sandbox>,
    account: Account,
    Path(customer): Path<String>,
    params: Params,
) -> ApiResult {
    list_for(&s, &account, &customer, &params).await
}

async fn list_for(s: &Sandbox, account: &Account, customer: &str, params: &Params) -> ApiResult {
    let url = format!("/v1/customers/{customer}/payment_methods");
    let list = store::list(
        &s.db,
        account,
        "payment_method",
        &url,
        &Page::from(params)?,
        json!({ "customer": customer }),
        None,
    )
    .await?;
    s.respond(account, list, params).await
}
