//! Checkout Sessions (subscription mode) and the hosted Checkout page. The page takes a test
//! card and does what Stripe does on success: customer, saved card as default, the
//! subscription with the session's trial and metadata, and `checkout.session.completed`,
//! then redirects to `success_url`. Payment mode charges once (a payment intent and a
//! charge, an invoice when `invoice_creation` asks for one). 4000 0025 0000 3155 gets a 3-D
//! Secure challenge page; a tax line follows the billing country; promotion codes apply.

use super::{
    cards::{self, Behavior},
    dashboard::escape,
    http::{Account, ApiResult, Params, StripeError},
    invoices::{self, charge_outcome, Line, Outcome},
    payment_methods::{behavior_of, card_payment_method, check_expiry},
    resources::one_of,
    store::{self, now, RequestInfo},
    subscriptions::{
        customer_now, priced_items, start as start_subscription, subscription_json, NewSubscription,
    },
    Sandbox,
};
use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::{Html, IntoResponse, Redirect, Response},
    Form,
};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;

pub const OBJECT: &str = "checkout.session";

pub async fn create(
    State(s): State<Sandbox>,
    account: Account,
    headers: HeaderMap,
    params: Params,
) -> ApiResult {
    let mode = one_of(&params, "mode", &["subscription", "payment", "setup"])?
        .ok_or_else(|| StripeError::missing("mode"))?;
    if mode == "setup" {
        return Err(StripeError::invalid(
            "mode",
            "The sandbox supports Checkout in subscription and payment modes.",
        ));
    }
    let success_url = params.required_str("success_url")?;
    let mut tx = s.db.begin().await?;
    let line_items = priced_items(
        &mut tx,
        &account,
        &params,
        "line_items",
        mode == "subscription",
    )
    .await?;
    if mode == "payment" && params.object("subscription_data").is_some() {
        return Err(StripeError::invalid(
            "subscription_data",
            "subscription_data can only be used in subscription mode.",
        ));
    }
    let invoice_creation = params
        .object("invoice_creation")
        .map(|i| i.bool("enabled"))
        .transpose()?
        .flatten()
        .unwrap_or(false);
    let customer = match params.str("customer") {
        Some(id) => Some(store::get(&mut tx, &account, "customer", &id).await?),
        None => None,
    };
    let created = now();
    let expires_at = params.i64("expires_at")?.unwrap_or(created + 24 * 3600);
    if !(created + 30 * 60..=created + 24 * 3600).contains(&expires_at) {
        return Err(StripeError::invalid(
            "expires_at",
            "expires_at must be between 30 minutes and 24 hours from now.",
        ));
    }
    let subscription_data = params.object("subscription_data");
    let trial_days = subscription_data
        .as_ref()
        .map(|d| d.i64("trial_period_days"))
        .transpose()?
        .flatten();
    let subtotal: i64 = line_items
        .iter()
        .map(|(p, q)| p["unit_amount"].as_i64().unwrap_or(0) * q)
        .sum();
    let id = store::new_id("cs_test");
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let mut session = json!({
        "id": id,
        "object": OBJECT,
        "after_expiration": null,
        "allow_promotion_codes": params.bool("allow_promotion_codes")?,
        "amount_subtotal": subtotal,
        "amount_total": subtotal,
        "automatic_tax": { "enabled": params.object("automatic_tax").map(|a| a.bool("enabled")).transpose()?.flatten().unwrap_or(false),
                           "liability": null, "provider": null, "status": null },
        "billing_address_collection": one_of(&params, "billing_address_collection", &["auto", "required"])?,
        "cancel_url": params.str("cancel_url"),
        "client_reference_id": params.str("client_reference_id"),
        "created": created,
        "currency": line_items[0].0["currency"],
        "custom_fields": [],
        "custom_text": { "after_submit": null, "shipping_address": null, "submit": null, "terms_of_service_acceptance": null },
        "customer": customer.as_ref().map(|c| c["id"].clone()),
        "customer_details": null,
        "customer_email": params.str("customer_email"),
        "expires_at": expires_at,
        "invoice": null,
        "livemode": false,
        "locale": null,
        "metadata": {},
        "mode": mode,
        "payment_intent": null,
        "payment_link": null,
        "payment_method_collection": "always",
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "shipping_options": [],
        "status": "open",
        "subscription": null,
        "success_url": success_url,
        "total_details": { "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 },
        "ui_mode": "hosted_page",
        "url": format!("http://{host}/sandbox/checkout/{id}"),
        // Not Stripe fields: what the page and the completion need to remember.
        "sandbox": {
            "line_items": line_items.iter().map(|(p, q)| json!({ "price": p["id"], "quantity": q })).collect::<Vec<_>>(),
            "trial_period_days": trial_days,
            "subscription_metadata": subscription_data.as_ref().and_then(|d| d.get("metadata").cloned()).unwrap_or(json!({})),
            "customer_update": params.get("customer_update").cloned(),
            "invoice_creation": invoice_creation,
            "payment_intent_metadata": params.object("payment_intent_data").and_then(|d| d.get("metadata").cloned()),
        },
    });
    params.metadata_into(&mut session)?;
    store::insert(&mut tx, &account, &session).await?;
    tx.commit().await?;
    s.respond(&account, session, &params).await
}

pub async fn expire(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult {
    let mut tx = s.db.begin().await?;
    let mut session = store::get(&mut tx, &account, OBJECT, &id).await?;
    if session["status"] != "open" {
        return Err(StripeError::invalid(
            "session",
            "Only an open Checkout Session can be expired.",
        ));
    }
    mark_expired(&mut tx, &account, &mut session, &req).await?;
    tx.commit().await?;
    s.respond(&account, session, &params).await
}

/// Expired sessions lose their `url` (Stripe shows it only while the session is open).
async fn mark_expired(
    conn: &mut PgConnection,
    account: &Account,
    session: &mut Value,
    req: &RequestInfo,
) -> Result<(), StripeError> {
    session["status"] = json!("expired");
    session["url"] = Value::Null;
    store::save(conn, account, session).await?;
    store::emit(
        conn,
        account,
        "checkout.session.expired",
        session,
        None,
        req,
    )
    .await?;
    Ok(())
}

/// Stripe expires an open session at its `expires_at` by itself, with
/// `checkout.session.expired`; the delivery worker calls this every few seconds. `SKIP
/// LOCKED` lets several instances share the sweep without expiring a session twice.
pub async fn expire_overdue(db: &PgPool) -> Result<usize, StripeError> {
    let mut tx = db.begin().await?;
    let due: Vec<(String, Value)> = sqlx::query_as(
        // Literal predicates, so that the partial index (migration 0008) always applies.
        "select account, data from stripe_sandbox.objects
         where object = 'checkout.session' and data ->> 'status' = 'open'
           and (data ->> 'expires_at')::bigint < extract(epoch from now())::bigint
         limit 100 for update skip locked",
    )
    .fetch_all(&mut *tx)
    .await?;
    // Nobody asked for it: the event's `request` is empty, as on Stripe.
    let req = RequestInfo {
        id: None,
        idempotency_key: None,
    };
    for (account, mut session) in due.iter().cloned() {
        mark_expired(&mut tx, &Account(account), &mut session, &req).await?;
    }
    tx.commit().await?;
    Ok(due.len())
}

/// The session and its account, found by id alone (the page has no API key).
async fn find(s: &Sandbox, id: &str) -> Result<Option<(Account, Value)>, StripeError> {
    let row: Option<(String, Value)> = sqlx::query_as(
        "select account, data from stripe_sandbox.objects where object = $1 and id = $2",
    )
    .bind(OBJECT)
    .bind(id)
    .fetch_optional(&s.db)
    .await?;
    Ok(row.map(|(a, d)| (Account(a), d)))
}

pub async fn page(State(s): State<Sandbox>, Path(id): Path<String>) -> Response {
    match find(&s, &id).await {
        Ok(Some((account, session))) => render(&s, &account, &session, None, &HashMap::new()).await,
        Ok(None) => gone("This checkout link is not valid."),
        Err(e) => e.into_response(),
    }
}

/// Submitting the card form (or the promotion code's Apply button, or the 3-D Secure page).
pub async fn pay(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (account, session) = match find(&s, &id).await {
        Ok(Some(found)) => found,
        Ok(None) => return gone("This checkout link is not valid."),
        Err(e) => return e.into_response(),
    };
    if form.get("action").map(String::as_str) == Some("apply") {
        return render(&s, &account, &session, None, &form).await;
    }
    match complete(&s, &account, &session, &form).await {
        Ok(target) => Redirect::to(&target).into_response(),
        Err(Failure::Card(message)) => render(&s, &account, &session, Some(&message), &form).await,
        Err(Failure::Challenge) => challenge(&format!("/sandbox/checkout/{}", escape(&id)), &form),
        Err(Failure::Gone) => gone("This Checkout Session is no longer available."),
        Err(Failure::Internal(e)) => e.into_response(),
    }
}

enum Failure {
    Card(String),
    /// The card asks for 3-D Secure: show the bank's challenge before anything is stored.
    Challenge,
    Gone,
    Internal(StripeError),
}

impl From<StripeError> for Failure {
    fn from(e: StripeError) -> Self {
        if e.kind == "card_error" || e.status == axum::http::StatusCode::BAD_REQUEST {
            Failure::Card(e.message)
        } else {
            Failure::Internal(e)
        }
    }
}

impl From<sqlx::Error> for Failure {
    fn from(e: sqlx::Error) -> Self {
        Failure::Internal(e.into())
    }
}

/// The promotion code typed on the page, checked like Stripe: it exists, is active and not
/// expired, its coupon is valid, and the order meets its minimum. Returns the coupon.
async fn promotion(
    s: &Sandbox,
    account: &Account,
    code: &str,
    subtotal: i64,
) -> Result<Option<(Value, Value)>, Failure> {
    if code.is_empty() {
        return Ok(None);
    }
    let invalid = || Failure::Card("This code is invalid.".into());
    let promo: Option<Value> = sqlx::query_scalar(
        "select data from stripe_sandbox.objects where account = $1 and object = 'promotion_code'
           and (data ->> 'active')::boolean and lower(data ->> 'code') = lower($2)",
    )
    .bind(&account.0)
    .bind(code)
    .fetch_optional(&s.db)
    .await?;
    let promo = promo.ok_or_else(invalid)?;
    if promo["expires_at"].as_i64().is_some_and(|t| t <= now())
        || promo["restrictions"]["minimum_amount"]
            .as_i64()
            .is_some_and(|m| subtotal < m)
    {
        return Err(invalid());
    }
    let mut conn = s.db.acquire().await?;
    let coupon = store::get(
        &mut conn,
        account,
        "coupon",
        promo["promotion"]["coupon"].as_str().unwrap_or_default(),
    )
    .await
    .map_err(|_| invalid())?;
    if coupon["valid"] != json!(true) {
        return Err(invalid());
    }
    Ok(Some((promo, coupon)))
}

/// The session's items with their prices, from the sandbox's notes.
async fn session_items(
    conn: &mut PgConnection,
    account: &Account,
    session: &Value,
) -> Result<Vec<(Value, i64)>, StripeError> {
    let mut items = Vec::new();
    for item in session["sandbox"]["line_items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let price = store::get(
            conn,
            account,
            "price",
            item["price"].as_str().unwrap_or_default(),
        )
        .await?;
        items.push((price, item["quantity"].as_i64().unwrap_or(1)));
    }
    Ok(items)
}

async fn complete(
    s: &Sandbox,
    account: &Account,
    session: &Value,
    form: &HashMap<String, String>,
) -> Result<String, Failure> {
    let field = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let (number, month, year) = read_card(form).map_err(Failure::Card)?;
    let email = field("email");
    if session["customer"].is_null() && !email.contains('@') {
        return Err(Failure::Card("Enter a valid email address.".into()));
    }
    let country = field("country").to_ascii_uppercase();
    if session["billing_address_collection"] == "required"
        && (field("name").is_empty() || country.len() != 2 || field("postal_code").is_empty())
    {
        return Err(Failure::Card("Enter your name and billing address.".into()));
    }
    let promo = if session["allow_promotion_codes"] == json!(true) {
        promotion(
            s,
            account,
            &field("promotion_code"),
            session["amount_subtotal"].as_i64().unwrap_or(0),
        )
        .await?
    } else {
        None
    };
    let address = json!({ "city": null, "country": (!country.is_empty()).then_some(&country), "line1": null, "line2": null,
                          "postal_code": (!field("postal_code").is_empty()).then(|| field("postal_code")), "state": null });
    let name = (!field("name").is_empty()).then(|| field("name"));
    let billing = json!({ "address": address, "email": if email.is_empty() { Value::Null } else { json!(email) },
                          "name": name, "phone": null, "tax_id": null });
    let mut pm = card_payment_method(&number, month, year, billing);
    let authenticated = match (behavior_of(&pm), field("three_d_secure").as_str()) {
        (Behavior::Declined(code), _) => {
            return Err(Failure::Card(super::payment_methods::declined(code).message))
        }
        (Behavior::RequiresAuthentication, "complete") => true,
        (Behavior::RequiresAuthentication, "fail") => {
            return Err(Failure::Card(
                "We are unable to authenticate your payment method. Please choose a different payment method and try again.".into(),
            ))
        }
        (Behavior::RequiresAuthentication, _) => return Err(Failure::Challenge),
        _ => false,
    };

    let req = RequestInfo {
        id: Some(store::new_id("req")),
        idempotency_key: None,
    };
    let mut tx = s.db.begin().await?;
    let mut session = store::get(
        &mut tx,
        account,
        OBJECT,
        session["id"].as_str().unwrap_or_default(),
    )
    .await?;
    if session["status"] != "open" || session["expires_at"].as_i64().unwrap_or(0) < now() {
        return Err(Failure::Gone);
    }
    let subscription_mode = session["mode"] == "subscription";
    let trial_days = session["sandbox"]["trial_period_days"].as_i64();
    // A card that cannot be charged fails now, unless a trial means no charge today.
    if !(subscription_mode && trial_days.is_some()) {
        if let Outcome::Failed { message, .. } = charge_outcome(Some(&pm), authenticated) {
            return Err(Failure::Card(message));
        }
    }

    // The customer: the session's, or a new one from what was typed.
    let mut customer = match session["customer"].as_str() {
        Some(id) => store::get(&mut tx, account, "customer", id).await?,
        None => {
            let mut c = super::customers::customer_json();
            c["email"] = json!(email);
            c["name"] = json!(name);
            store::insert(&mut tx, account, &c).await?;
            store::emit(&mut tx, account, "customer.created", &c, None, &req).await?;
            c
        }
    };
    pm["customer"] = customer["id"].clone();
    store::insert(&mut tx, account, &pm).await?;
    store::emit(&mut tx, account, "payment_method.attached", &pm, None, &req).await?;
    let before = customer.clone();
    if subscription_mode {
        customer["invoice_settings"]["default_payment_method"] = pm["id"].clone();
    }
    let update = &session["sandbox"]["customer_update"];
    if update["address"] == "auto" || session["customer"].is_null() {
        customer["address"] = address.clone();
    }
    if (update["name"] == "auto" || session["customer"].is_null()) && name.is_some() {
        customer["name"] = json!(name);
    }
    store::save(&mut tx, account, &customer).await?;
    store::emit(
        &mut tx,
        account,
        "customer.updated",
        &customer,
        Some(store::previous_attributes(&before, &customer)),
        &req,
    )
    .await?;

    let items = session_items(&mut tx, account, &session).await?;
    let subtotal = session["amount_subtotal"].as_i64().unwrap_or(0);
    let discount = promo
        .as_ref()
        .map(|(_, c)| invoices::discount_amount(c, subtotal))
        .unwrap_or(0);
    let automatic_tax = session["automatic_tax"]["enabled"] == json!(true);
    let tax = if automatic_tax {
        super::tax::amount(&customer, subtotal - discount)
    } else {
        0
    };
    let start = customer_now(&mut tx, account, &customer).await?;
    if subscription_mode {
        let trial_end = trial_days.map(|d| start + d * 86_400);
        let mut subscription = subscription_json(NewSubscription {
            customer: &customer,
            items,
            now: start,
            trial_end,
            status: if trial_end.is_some() {
                "trialing"
            } else {
                "active"
            },
            default_payment_method: None,
            metadata: session["sandbox"]["subscription_metadata"].clone(),
        });
        subscription["automatic_tax"]["enabled"] = json!(automatic_tax);
        if let Some((promo, coupon)) = &promo {
            subscription["sandbox"]["coupon"] = coupon.clone();
            subscription["sandbox"]["promotion_code"] = promo["id"].clone();
        }
        let subscription = start_subscription(
            &mut tx,
            account,
            &req,
            &s.public_url,
            &mut customer,
            subscription,
            Some(&pm),
            authenticated,
        )
        .await?;
        session["subscription"] = subscription["id"].clone();
        session["invoice"] = subscription["latest_invoice"].clone();
        let paid_now = trial_end.is_none();
        session["payment_status"] = json!(if paid_now {
            "paid"
        } else {
            "no_payment_required"
        });
        if !paid_now {
            session["amount_total"] = json!(0);
        }
    } else {
        let lines: Vec<Line> = items
            .iter()
            .map(|(price, q)| Line {
                description: price["nickname"].as_str().unwrap_or("Purchase").to_owned(),
                amount: price["unit_amount"].as_i64().unwrap_or(0) * q,
                price: Some(price.clone()),
                quantity: *q,
                period: (start, start),
                proration: false,
                subscription_item: None,
            })
            .collect();
        let currency = session["currency"].clone();
        let outcome = charge_outcome(Some(&pm), authenticated);
        let mut pi = invoices::attempt_payment(
            &mut tx,
            account,
            &req,
            &customer,
            Some(&pm),
            subtotal - discount + tax,
            &currency,
            "Checkout payment",
            &outcome,
            start,
        )
        .await?;
        if let Some(meta) = session["sandbox"]["payment_intent_metadata"].as_object() {
            pi["metadata"] = Value::Object(meta.clone());
            store::save(&mut tx, account, &pi).await?;
        }
        session["payment_intent"] = pi["id"].clone();
        session["payment_status"] = json!("paid");
        if session["sandbox"]["invoice_creation"] == json!(true) {
            // A post-payment invoice, paid already: a receipt the customer can keep.
            let mut invoice = invoices::invoice_json(
                &s.public_url,
                &customer,
                None,
                &lines,
                "manual",
                tax,
                start,
            );
            invoice["status"] = json!("paid");
            invoice["amount_paid"] = invoice["amount_due"].clone();
            invoice["amount_remaining"] = json!(0);
            invoice["attempted"] = json!(true);
            invoice["status_transitions"]["paid_at"] = json!(start);
            store::insert(&mut tx, account, &invoice).await?;
            store::emit(&mut tx, account, "invoice.created", &invoice, None, &req).await?;
            store::emit(&mut tx, account, "invoice.finalized", &invoice, None, &req).await?;
            store::emit(&mut tx, account, "invoice.paid", &invoice, None, &req).await?;
            session["invoice"] = invoice["id"].clone();
        }
    }
    if session["payment_status"] == "paid" {
        session["amount_total"] = json!(subtotal - discount + tax);
        session["total_details"] =
            json!({ "amount_discount": discount, "amount_shipping": 0, "amount_tax": tax });
    }
    if let Some((promo, _)) = &promo {
        session["discounts"] = json!([{ "coupon": null, "promotion_code": promo["id"] }]);
    }
    session["status"] = json!("complete");
    session["customer"] = customer["id"].clone();
    session["customer_details"] = json!({ "address": address, "email": customer["email"], "name": customer["name"],
                                          "phone": null, "tax_exempt": "none", "tax_ids": [] });
    store::save(&mut tx, account, &session).await?;
    store::emit(
        &mut tx,
        account,
        "checkout.session.completed",
        &session,
        None,
        &req,
    )
    .await?;
    tx.commit().await?;
    let success = session["success_url"].as_str().unwrap_or("/");
    Ok(success.replace(
        "{CHECKOUT_SESSION_ID}",
        session["id"].as_str().unwrap_or_default(),
    ))
}

/// The card fields of a payment form, checked like Stripe's card element: a number that
/// passes Luhn (or is a test card), a future expiry, and a 3–4 digit CVC.
pub fn read_card(form: &HashMap<String, String>) -> Result<(String, i64, i64), String> {
    let field = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let number: String = field("card_number")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if cards::find(&number).is_none() && !cards::luhn_valid(&number) {
        return Err("Your card number is incorrect.".into());
    }
    let (month, year) = parse_expiry(&field("card_expiry"))
        .ok_or_else(|| "Your card's expiration date is incomplete.".to_owned())?;
    check_expiry(month, year).map_err(|e| e.message)?;
    let cvc = field("card_cvc");
    if !(3..=4).contains(&cvc.len()) || !cvc.chars().all(|c| c.is_ascii_digit()) {
        return Err("Your card's security code is incomplete.".into());
    }
    Ok((number, month, year))
}

/// The bank's 3-D Secure page: Complete or Fail sends the form back with the answer.
pub fn challenge(action: &str, form: &HashMap<String, String>) -> Response {
    let hidden: String = form
        .iter()
        .filter(|(k, _)| k.as_str() != "three_d_secure" && k.as_str() != "action")
        .map(|(k, v)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                escape(k),
                escape(v)
            )
        })
        .collect();
    let button = |answer: &str, label: &str| {
        format!(
            r#"<form method="post" action="{action}">{hidden}<input type="hidden" name="three_d_secure" value="{answer}"><button type="submit" data-testid="3ds-{answer}">{label}</button></form>"#
        )
    };
    Html(format!(
        r#"{HEAD}<main class="narrow"><h1>3-D Secure test payment</h1><p data-testid="3ds-challenge">Your bank asks you to confirm this payment. This is a test page: choose what the customer does.</p><div class="row">{}{}</div></main></body></html>"#,
        button("complete", "Complete authentication"),
        button("fail", "Fail authentication"),
    ))
    .into_response()
}

fn parse_expiry(raw: &str) -> Option<(i64, i64)> {
    let digits: String = raw.chars().filter(|c| c.is_ascii_digit()).collect();
    match digits.len() {
        4 => Some((
            digits[..2].parse().ok()?,
            2000 + digits[2..].parse::<i64>().ok()?,
        )),
        6 => Some((digits[..2].parse().ok()?, digits[2..].parse().ok()?)),
        _ => None,
    }
}

fn gone(message: &str) -> Response {
    (axum::http::StatusCode::NOT_FOUND, Html(format!("{HEAD}<main class=\"narrow\"><h1>Checkout unavailable</h1><p>{}</p></main></body></html>", escape(message))))
        .into_response()
}

async fn render(
    s: &Sandbox,
    account: &Account,
    session: &Value,
    error: Option<&str>,
    form: &HashMap<String, String>,
) -> Response {
    if session["status"] != "open" || session["expires_at"].as_i64().unwrap_or(0) < now() {
        return gone(
            "This Checkout Session is no longer available: it was completed or it expired.",
        );
    }
    let items = match s.db.acquire().await {
        Ok(mut conn) => match session_items(&mut conn, account, session).await {
            Ok(items) => items,
            Err(e) => return e.into_response(),
        },
        Err(e) => return StripeError::from(e).into_response(),
    };
    let currency = session["currency"].as_str().unwrap_or("usd").to_owned();
    let money = |amount: i64| crate::catalog::money::format_money(amount, &currency);
    let subscription_mode = session["mode"] == "subscription";
    let mut lines = String::new();
    let mut summary = String::new();
    for (price, quantity) in &items {
        let name = match s.db.acquire().await {
            Ok(mut conn) => super::lifecycle::product_name(&mut conn, account, price)
                .await
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        let amount = money(price["unit_amount"].as_i64().unwrap_or(0) * quantity);
        let per = price["recurring"]["interval"]
            .as_str()
            .map(|i| format!(" / {i}"))
            .unwrap_or_default();
        summary = format!("{amount}{per}");
        let qty = if *quantity > 1 {
            format!(" × {quantity}")
        } else {
            String::new()
        };
        lines.push_str(&format!(
            r#"<div class="line" data-testid="line-item"><span>{}{qty}</span><span>{amount}{per}</span></div>"#,
            escape(&name)
        ));
    }
    let trial_days = session["sandbox"]["trial_period_days"].as_i64();
    let trial = trial_days
        .map(|d| format!(r#"<p class="trial" data-testid="trial-notice">{d} days free, then {summary}. You will not be charged today.</p>"#))
        .unwrap_or_default();
    let value = |k: &str| escape(form.get(k).map(String::as_str).unwrap_or(""));
    // Totals for what the customer typed so far: the discount once a code is applied, the
    // tax once a country is known.
    let subtotal = session["amount_subtotal"].as_i64().unwrap_or(0);
    let code = form
        .get("promotion_code")
        .map(|c| c.trim().to_owned())
        .unwrap_or_default();
    let (discount, promo_note) = match promotion(s, account, &code, subtotal).await {
        Ok(Some((promo, coupon))) => (
            invoices::discount_amount(&coupon, subtotal),
            format!(
                r#"<p class="promo-ok" data-testid="promo-applied">Code {} applied</p>"#,
                escape(promo["code"].as_str().unwrap_or_default())
            ),
        ),
        Ok(None) => (0, String::new()),
        Err(_) => (
            0,
            r#"<p class="error" data-testid="promo-error">This code is invalid.</p>"#.to_owned(),
        ),
    };
    let country = form
        .get("country")
        .map(|c| c.trim().to_ascii_uppercase())
        .unwrap_or_default();
    let tax_on = session["automatic_tax"]["enabled"] == json!(true);
    let rate = super::tax::rate_for(&country);
    let tax = if tax_on {
        super::tax::on(subtotal - discount, rate)
    } else {
        0
    };
    let tax_line = match (tax_on, country.is_empty()) {
        (false, _) => String::new(),
        (true, true) => r#"<div class="line muted" data-testid="tax-line"><span>Tax</span><span>Enter address to calculate</span></div>"#.to_owned(),
        (true, false) => format!(
            r#"<div class="line" data-testid="tax-line"><span>Tax ({country}, {}%)</span><span>{}</span></div>"#,
            rate as f64 / 100.0,
            money(tax)
        ),
    };
    let discount_line = if discount > 0 {
        format!(
            r#"<div class="line" data-testid="discount-line"><span>Discount</span><span>−{}</span></div>"#,
            money(discount)
        )
    } else {
        String::new()
    };
    let due_today = if trial_days.is_some() {
        0
    } else {
        subtotal - discount + tax
    };
    let total_line = format!(
        r#"<div class="line total" data-testid="total-due"><span>Total due today</span><span>{}</span></div>"#,
        money(due_today)
    );
    let promo_field = if session["allow_promotion_codes"] == json!(true) {
        format!(
            r#"<div class="row promo"><label>Promotion code<input name="promotion_code" autocomplete="off" value="{}"></label><button type="submit" name="action" value="apply" formnovalidate class="secondary">Apply</button></div>{promo_note}"#,
            escape(&code)
        )
    } else {
        String::new()
    };
    let email_field = if session["customer"].is_null() {
        format!(
            r#"<label>Email<input name="email" type="email" autocomplete="email" required value="{}"></label>"#,
            value("email")
        )
    } else {
        String::new()
    };
    let error = error
        .map(|e| {
            format!(
                r#"<p class="error" role="alert" data-testid="checkout-error">{}</p>"#,
                escape(e)
            )
        })
        .unwrap_or_default();
    let cancel = session["cancel_url"]
        .as_str()
        .map(|u| format!(r#"<a class="cancel" href="{}">← Back</a>"#, escape(u)))
        .unwrap_or_default();
    let cards: String = cards::CARDS
        .iter()
        .map(|c| {
            format!(
                "<li><code>{}</code> {}</li>",
                c.grouped(),
                c.behavior.describe()
            )
        })
        .collect();
    let id = escape(session["id"].as_str().unwrap_or_default());
    let address_required = if session["billing_address_collection"] == "required" {
        "required"
    } else {
        ""
    };
    let (heading, button) = match (subscription_mode, trial_days) {
        (true, Some(_)) => ("Subscribe", "Start trial"),
        (true, None) => ("Subscribe", "Subscribe"),
        (false, _) => ("Pay", "Pay"),
    };
    Html(format!(
        r#"{HEAD}<main><section class="summary">{cancel}<h1>{heading}</h1>{lines}{trial}{discount_line}{tax_line}{total_line}</section>
<section class="pay"><form method="post" action="/sandbox/checkout/{id}">{error}{email_field}
<label>Card number<input name="card_number" inputmode="numeric" autocomplete="cc-number" placeholder="1234 1234 1234 1234" required value="{num}"></label>
<div class="row"><label>Expiry<input name="card_expiry" autocomplete="cc-exp" placeholder="MM / YY" required value="{exp}"></label>
<label>CVC<input name="card_cvc" autocomplete="cc-csc" placeholder="CVC" required value="{cvc}"></label></div>
<label>Name on card<input name="name" autocomplete="cc-name" {address_required} value="{name}"></label>
<div class="row"><label>Country<input name="country" autocomplete="country" placeholder="US" maxlength="2" {address_required} value="{country}"></label>
<label>Postal code<input name="postal_code" autocomplete="postal-code" {address_required} value="{postal}"></label></div>
{promo_field}
<button type="submit">{button}</button></form>
<details><summary>Test cards</summary><ul class="cards">{cards}</ul><p>Any future expiry and any 3-digit CVC.</p></details></section></main></body></html>"#,
        num = value("card_number"),
        exp = value("card_expiry"),
        cvc = value("card_cvc"),
        name = value("name"),
        country = value("country"),
        postal = value("postal_code"),
    ))
    .into_response()
}

pub const HEAD: &str = r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Checkout · Stripe sandbox</title><style>
body{margin:0;font-family:system-ui,sans-serif;color:#1a1a2e;background:#fff}
main{display:grid;grid-template-columns:minmax(0,1fr);max-width:960px;margin:0 auto;padding:1.5rem;gap:2rem}
@media(min-width:760px){main{grid-template-columns:minmax(0,1fr) minmax(0,1fr)}}main.narrow{display:block;max-width:520px}
.summary h1{font-size:1.3rem}.line{display:flex;justify-content:space-between;padding:.6rem 0;border-bottom:1px solid #e3e8ee}
.trial{color:#067647;font-weight:600}.cancel{color:#635bff;text-decoration:none}
form{display:flex;flex-direction:column;gap:.8rem}label{display:flex;flex-direction:column;gap:.25rem;font-size:.9rem;font-weight:600;flex:1;min-width:0}
input{font:inherit;padding:.6rem;border:1px solid #cfd7df;border-radius:6px;min-width:0;width:100%;box-sizing:border-box}input:focus-visible{outline:3px solid #a5a0ff}
.row{display:flex;gap:.8rem}button{font:inherit;font-weight:600;padding:.8rem;border:0;border-radius:6px;background:#635bff;color:#fff;cursor:pointer}
button:focus-visible{outline:3px solid #a5a0ff}.error{color:#b42318;background:#fef3f2;padding:.6rem;border-radius:6px}
.cards{font-size:.85rem;padding-left:1.2rem}.total{font-weight:700}.muted{color:#697386}.promo{align-items:flex-end}
button.secondary{background:#e3e8ee;color:#1a1a2e}.promo-ok{color:#067647}
</style></head><body>"#;

#[cfg(test)]
mod tests {
    #[test]
    fn expiry_accepts_the_usual_spellings() {
        assert_eq!(super::parse_expiry("12 / 34"), Some((12, 2034)));
        assert_eq!(super::parse_expiry("12/2034"), Some((12, 2034)));
        assert_eq!(super::parse_expiry("1234"), Some((12, 2034)));
        assert_eq!(super::parse_expiry("12"), None);
    }
}
