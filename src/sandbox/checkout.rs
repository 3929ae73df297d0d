//! Checkout Sessions (subscription mode) and the hosted Checkout page. The page takes a test
//! card and does what Stripe does on success: customer, saved card as default, the
//! subscription with the session's trial and metadata, and `checkout.session.completed`,
//! then redirects to `success_url`. Not yet: mode=payment, 3-D Secure challenges, tax,
//! promotion codes on the page.

use super::{
    cards::{self, Behavior},
    dashboard::escape,
    http::{Account, ApiResult, Params, StripeError},
    payment_methods::{behavior_of, card_payment_method, check_expiry},
    resources::one_of,
    store::{self, now, RequestInfo},
    subscriptions::{customer_now, recurring_items, subscription_json, NewSubscription},
    Sandbox,
};
use axum::{
    extract::{Path, State},
    http::HeaderMap,
    response::{Html, IntoResponse, Redirect, Response},
    Form,
};
use serde_json::{json, Value};
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
    if mode != "subscription" {
        return Err(StripeError::invalid(
            "mode",
            "The sandbox supports Checkout in subscription mode only, for now.",
        ));
    }
    let success_url = params.required_str("success_url")?;
    let mut tx = s.db.begin().await?;
    let line_items = recurring_items(&mut tx, &account, &params, "line_items").await?;
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
        "mode": "subscription",
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
        "ui_mode": "hosted",
        "url": format!("http://{host}/sandbox/checkout/{id}"),
        // Not Stripe fields: what the page and the completion need to remember.
        "sandbox": {
            "line_items": line_items.iter().map(|(p, q)| json!({ "price": p["id"], "quantity": q })).collect::<Vec<_>>(),
            "trial_period_days": trial_days,
            "subscription_metadata": subscription_data.as_ref().and_then(|d| d.get("metadata").cloned()).unwrap_or(json!({})),
            "customer_update": params.get("customer_update").cloned(),
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
    session["status"] = json!("expired");
    store::save(&mut tx, &account, &session).await?;
    store::emit(
        &mut tx,
        &account,
        "checkout.session.expired",
        &session,
        None,
        &req,
    )
    .await?;
    tx.commit().await?;
    s.respond(&account, session, &params).await
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

/// Submitting the card form.
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
    match complete(&s, &account, &session, &form).await {
        Ok(target) => Redirect::to(&target).into_response(),
        Err(Failure::Card(message)) => render(&s, &account, &session, Some(&message), &form).await,
        Err(Failure::Gone) => gone("This Checkout Session is no longer available."),
        Err(Failure::Internal(e)) => e.into_response(),
    }
}

enum Failure {
    Card(String),
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

async fn complete(
    s: &Sandbox,
    account: &Account,
    session: &Value,
    form: &HashMap<String, String>,
) -> Result<String, Failure> {
    let field = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let number: String = field("card_number")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if cards::find(&number).is_none() && !cards::luhn_valid(&number) {
        return Err(Failure::Card("Your card number is incorrect.".into()));
    }
    let (month, year) = parse_expiry(&field("card_expiry"))
        .ok_or_else(|| Failure::Card("Your card's expiration date is incomplete.".into()))?;
    check_expiry(month, year)?;
    if !(3..=4).contains(&field("card_cvc").len())
        || !field("card_cvc").chars().all(|c| c.is_ascii_digit())
    {
        return Err(Failure::Card(
            "Your card's security code is incomplete.".into(),
        ));
    }
    let email = field("email");
    if session["customer"].is_null() && !email.contains('@') {
        return Err(Failure::Card("Enter a valid email address.".into()));
    }
    let country = field("country");
    if session["billing_address_collection"] == "required"
        && (field("name").is_empty() || country.len() != 2 || field("postal_code").is_empty())
    {
        return Err(Failure::Card("Enter your name and billing address.".into()));
    }

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
    let address = json!({ "city": null, "country": (!country.is_empty()).then_some(&country), "line1": null, "line2": null,
                          "postal_code": (!field("postal_code").is_empty()).then(|| field("postal_code")), "state": null });
    let name = (!field("name").is_empty()).then(|| field("name"));
    let billing = json!({ "address": address, "email": if email.is_empty() { Value::Null } else { json!(email) },
                          "name": name, "phone": null, "tax_id": null });
    let mut pm = card_payment_method(&number, month, year, billing);
    if let Behavior::Declined(code) = behavior_of(&pm) {
        return Err(Failure::Card(
            super::payment_methods::declined(code).message,
        ));
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
    customer["invoice_settings"]["default_payment_method"] = pm["id"].clone();
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

    let mut items = Vec::new();
    for item in session["sandbox"]["line_items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let price = store::get(
            &mut tx,
            account,
            "price",
            item["price"].as_str().unwrap_or_default(),
        )
        .await?;
        items.push((price, item["quantity"].as_i64().unwrap_or(1)));
    }
    let start = customer_now(&mut tx, account, &customer).await?;
    let trial_end = session["sandbox"]["trial_period_days"]
        .as_i64()
        .map(|d| start + d * 86_400);
    let status = match (trial_end, behavior_of(&pm)) {
        (Some(_), _) => "trialing",
        (None, Behavior::Succeeds) => "active",
        (None, Behavior::ChargesFail) => {
            return Err(Failure::Card("Your card was declined.".into()))
        }
        (None, _) => {
            return Err(Failure::Card(
                "This card needs 3-D Secure, which the sandbox does not simulate yet.".into(),
            ))
        }
    };
    let subscription = subscription_json(NewSubscription {
        customer: &customer,
        items,
        now: start,
        trial_end,
        status,
        default_payment_method: None,
        metadata: session["sandbox"]["subscription_metadata"].clone(),
    });
    store::insert(&mut tx, account, &subscription).await?;
    store::emit(
        &mut tx,
        account,
        "customer.subscription.created",
        &subscription,
        None,
        &req,
    )
    .await?;

    session["status"] = json!("complete");
    session["payment_status"] = json!(if trial_end.is_some() {
        "no_payment_required"
    } else {
        "paid"
    });
    session["customer"] = customer["id"].clone();
    session["subscription"] = subscription["id"].clone();
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
    let mut lines = String::new();
    let mut summary = String::new();
    for item in session["sandbox"]["line_items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let price: Option<Value> = sqlx::query_scalar(
            "select data from stripe_sandbox.objects where account = $1 and id = $2",
        )
        .bind(&account.0)
        .bind(item["price"].as_str())
        .fetch_optional(&s.db)
        .await
        .ok()
        .flatten();
        let Some(price) = price else { continue };
        let product: Option<String> = sqlx::query_scalar(
            "select data ->> 'name' from stripe_sandbox.objects where account = $1 and id = $2",
        )
        .bind(&account.0)
        .bind(price["product"].as_str())
        .fetch_optional(&s.db)
        .await
        .ok()
        .flatten();
        let amount = crate::catalog::money::format_money(
            price["unit_amount"].as_i64().unwrap_or(0),
            price["currency"].as_str().unwrap_or("usd"),
        );
        let per = price["recurring"]["interval"].as_str().unwrap_or("month");
        summary = format!("{amount} per {per}");
        lines.push_str(&format!(
            r#"<div class="line" data-testid="line-item"><span>{}</span><span>{amount} / {per}</span></div>"#,
            escape(product.as_deref().unwrap_or("Subscription"))
        ));
    }
    let trial = session["sandbox"]["trial_period_days"]
        .as_i64()
        .map(|d| format!(r#"<p class="trial" data-testid="trial-notice">{d} days free, then {summary}. You will not be charged today.</p>"#))
        .unwrap_or_default();
    let value = |k: &str| escape(form.get(k).map(String::as_str).unwrap_or(""));
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
        .map(|c| format!("<li><code>{}</code> {:?}</li>", c.number, c.behavior))
        .collect();
    let id = escape(session["id"].as_str().unwrap_or_default());
    Html(format!(
        r#"{HEAD}<main><section class="summary">{cancel}<h1>Subscribe</h1>{lines}{trial}</section>
<section class="pay"><form method="post" action="/sandbox/checkout/{id}">{error}{email_field}
<label>Card number<input name="card_number" inputmode="numeric" autocomplete="cc-number" placeholder="1234 1234 1234 1234" required value="{num}"></label>
<div class="row"><label>Expiry<input name="card_expiry" autocomplete="cc-exp" placeholder="MM / YY" required value="{exp}"></label>
<label>CVC<input name="card_cvc" autocomplete="cc-csc" placeholder="CVC" required value="{cvc}"></label></div>
<label>Name on card<input name="name" autocomplete="cc-name" value="{name}"></label>
<div class="row"><label>Country<input name="country" autocomplete="country" placeholder="US" maxlength="2" value="{country}"></label>
<label>Postal code<input name="postal_code" autocomplete="postal-code" value="{postal}"></label></div>
<button type="submit">{button}</button></form>
<details><summary>Test cards</summary><ul class="cards">{cards}</ul><p>Any future expiry and any 3-digit CVC.</p></details></section></main></body></html>"#,
        num = value("card_number"),
        exp = value("card_expiry"),
        cvc = value("card_cvc"),
        name = value("name"),
        country = value("country"),
        postal = value("postal_code"),
        button = if session["sandbox"]["trial_period_days"].is_null() { "Subscribe" } else { "Start trial" },
    ))
    .into_response()
}

const HEAD: &str = r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Checkout · Stripe sandbox</title><style>
body{margin:0;font-family:system-ui,sans-serif;color:#1a1a2e;background:#fff}
main{display:grid;grid-template-columns:1fr;max-width:960px;margin:0 auto;padding:1.5rem;gap:2rem}
@media(min-width:760px){main{grid-template-columns:1fr 1fr}}main.narrow{display:block;max-width:520px}
.summary h1{font-size:1.3rem}.line{display:flex;justify-content:space-between;padding:.6rem 0;border-bottom:1px solid #e3e8ee}
.trial{color:#067647;font-weight:600}.cancel{color:#635bff;text-decoration:none}
form{display:flex;flex-direction:column;gap:.8rem}label{display:flex;flex-direction:column;gap:.25rem;font-size:.9rem;font-weight:600;flex:1}
input{font:inherit;padding:.6rem;border:1px solid #cfd7df;border-radius:6px}input:focus-visible{outline:3px solid #a5a0ff}
.row{display:flex;gap:.8rem}button{font:inherit;font-weight:600;padding:.8rem;border:0;border-radius:6px;background:#635bff;color:#fff;cursor:pointer}
button:focus-visible{outline:3px solid #a5a0ff}.error{color:#b42318;background:#fef3f2;padding:.6rem;border-radius:6px}
.cards{font-size:.85rem;padding-left:1.2rem}
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
