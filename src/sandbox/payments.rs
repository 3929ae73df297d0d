//! Payment intents, charges and refunds (read and refund through the API), and the hosted
//! invoice page where a customer pays an open invoice, as Stripe's `hosted_invoice_url`.

use super::{
    cards::Behavior,
    checkout::{read_card, HEAD},
    dashboard::escape,
    http::{Account, ApiResult, Page, Params, StripeError},
    invoices::{self, Outcome},
    payment_methods::{behavior_of, card_payment_method},
    store::{self, now, RequestInfo},
    Sandbox,
};
use axum::{
    extract::{Path, Query, State},
    response::{Html, IntoResponse, Redirect, Response},
    Form,
};
use serde_json::{json, Value};
use std::collections::HashMap;

/// `GET /v1/payment_intents`, `/v1/charges`, `/v1/refunds`: newest first, by `customer`
/// (refunds by `charge` or `payment_intent`).
pub async fn list(
    s: &Sandbox,
    account: &Account,
    object: &str,
    url: &str,
    params: &Params,
) -> ApiResult {
    let mut filter = json!({});
    for key in ["customer", "charge", "payment_intent"] {
        if let Some(v) = params.str(key) {
            filter[key] = json!(v);
        }
    }
    let list = store::list(
        &s.db,
        account,
        object,
        url,
        &Page::from(params)?,
        filter,
        None,
    )
    .await?;
    s.respond(account, list, params).await
}

pub async fn list_payment_intents(
    State(s): State<Sandbox>,
    account: Account,
    params: Params,
) -> ApiResult {
    list(
        &s,
        &account,
        "payment_intent",
        "/v1/payment_intents",
        &params,
    )
    .await
}

pub async fn list_charges(State(s): State<Sandbox>, account: Account, params: Params) -> ApiResult {
    list(&s, &account, "charge", "/v1/charges", &params).await
}

pub async fn list_refunds(State(s): State<Sandbox>, account: Account, params: Params) -> ApiResult {
    list(&s, &account, "refund", "/v1/refunds", &params).await
}

/// `POST /v1/refunds` with `charge` or `payment_intent`, an optional `amount` (default: what
/// is left) and `reason`. Emits `refund.created` and `charge.refunded`.
pub async fn create_refund(
    State(s): State<Sandbox>,
    account: Account,
    req: RequestInfo,
    params: Params,
) -> ApiResult {
    let mut tx = s.db.begin().await?;
    let charge_id = match (params.str("charge"), params.str("payment_intent")) {
        (Some(charge), _) => charge,
        (None, Some(pi)) => {
            let pi = store::get(&mut tx, &account, "payment_intent", &pi).await?;
            pi["latest_charge"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| {
                    StripeError::invalid(
                        "payment_intent",
                        "This PaymentIntent has no successful charge to refund.",
                    )
                })?
        }
        (None, None) => return Err(StripeError::missing("charge")),
    };
    let before = store::get(&mut tx, &account, "charge", &charge_id).await?;
    if before["paid"] != json!(true) {
        return Err(StripeError::invalid(
            "charge",
            "This charge did not succeed and cannot be refunded.",
        ));
    }
    let captured = before["amount_captured"].as_i64().unwrap_or(0);
    let refunded = before["amount_refunded"].as_i64().unwrap_or(0);
    let left = captured - refunded;
    let amount = params.i64("amount")?.unwrap_or(left);
    if left == 0 {
        return Err(StripeError {
            code: Some("charge_already_refunded"),
            ..StripeError::invalid(
                "charge",
                format!("Charge {charge_id} has already been refunded."),
            )
        });
    }
    if amount < 1 || amount > left {
        return Err(StripeError::invalid(
            "amount",
            format!("Refund amount must be between 1 and {left}, what is left of the charge."),
        ));
    }
    let reason = super::resources::one_of(
        &params,
        "reason",
        &["duplicate", "fraudulent", "requested_by_customer"],
    )?;
    let mut refund = json!({
        "id": store::new_id("re"), "object": "refund", "amount": amount, "balance_transaction": null,
        "charge": charge_id, "created": now(), "currency": before["currency"], "customer": before["customer"],
        "description": null, "destination_details": null, "failure_balance_transaction": null,
        "failure_reason": null, "instructions_email": null, "metadata": {}, "next_action": null,
        "payment_intent": before["payment_intent"], "pending_reason": null, "reason": reason,
        "receipt_number": null, "source_transfer_reversal": null, "status": "succeeded",
        "transfer_reversal": null,
    });
    params.metadata_into(&mut refund)?;
    let mut charge = before.clone();
    charge["amount_refunded"] = json!(refunded + amount);
    charge["refunded"] = json!(refunded + amount == captured);
    store::insert(&mut tx, &account, &refund).await?;
    store::save(&mut tx, &account, &charge).await?;
    store::emit(&mut tx, &account, "refund.created", &refund, None, &req).await?;
    let prev = store::previous_attributes(&before, &charge);
    store::emit(
        &mut tx,
        &account,
        "charge.refunded",
        &charge,
        Some(prev),
        &req,
    )
    .await?;
    tx.commit().await?;
    s.respond(&account, refund, &params).await
}

/// The invoice and its account, by id alone (the page has no API key).
async fn find(s: &Sandbox, id: &str) -> Result<Option<(Account, Value)>, StripeError> {
    let row: Option<(String, Value)> = sqlx::query_as(
        "select account, data from stripe_sandbox.objects where object = 'invoice' and id = $1",
    )
    .bind(id)
    .fetch_optional(&s.db)
    .await?;
    Ok(row.map(|(a, d)| (Account(a), d)))
}

#[derive(serde::Deserialize)]
pub struct Format {
    format: Option<String>,
}

/// `GET /sandbox/invoices/{id}`: the hosted invoice: lines, totals, status, and a card form
/// while it is open.
pub async fn page(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    Query(f): Query<Format>,
) -> Response {
    match find(&s, &id).await {
        Ok(Some((_, invoice))) => render(
            &invoice,
            None,
            &HashMap::new(),
            f.format.as_deref() == Some("pdf"),
        ),
        Ok(None) => not_found(),
        Err(e) => e.into_response(),
    }
}

/// Paying the invoice with a card typed on the page (3-D Secure asks first, as on Checkout).
pub async fn pay(
    State(s): State<Sandbox>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (account, invoice) = match find(&s, &id).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(e) => return e.into_response(),
    };
    let retry = |message: &str| render(&invoice, Some(message), &form, false);
    if invoice["status"] != "open" {
        return retry("This invoice is no longer open.");
    }
    let (number, month, year) = match read_card(&form) {
        Ok(card) => card,
        Err(message) => return retry(&message),
    };
    let mut pm = card_payment_method(
        &number,
        month,
        year,
        json!({ "address": null, "email": null, "name": null, "phone": null, "tax_id": null }),
    );
    let authenticated = match (
        behavior_of(&pm),
        form.get("three_d_secure").map(String::as_str),
    ) {
        (Behavior::Declined(code), _) => {
            return retry(&super::payment_methods::declined(code).message)
        }
        (Behavior::RequiresAuthentication, Some("complete")) => true,
        (Behavior::RequiresAuthentication, Some("fail")) => {
            return retry("We are unable to authenticate your payment method.")
        }
        (Behavior::RequiresAuthentication, _) => {
            return super::checkout::challenge(&format!("/sandbox/invoices/{}", escape(&id)), &form)
        }
        _ => false,
    };
    let req = RequestInfo {
        id: Some(store::new_id("req")),
        idempotency_key: None,
    };
    let result = async {
        let mut tx = s.db.begin().await?;
        pm["customer"] = invoice["customer"].clone();
        store::insert(&mut tx, &account, &pm).await?;
        store::emit(
            &mut tx,
            &account,
            "payment_method.attached",
            &pm,
            None,
            &req,
        )
        .await?;
        let (_, outcome) = invoices::settle(
            &mut tx,
            &account,
            &req,
            &id,
            pm["id"].as_str(),
            authenticated,
        )
        .await?;
        // A failed attempt is a fact too: its events stay.
        tx.commit().await?;
        Ok::<_, StripeError>(outcome)
    }
    .await;
    match result {
        Ok(Outcome::Paid) => Redirect::to(&format!("/sandbox/invoices/{id}")).into_response(),
        Ok(Outcome::Failed { message, .. }) => retry(&message),
        Ok(Outcome::RequiresAction) => retry("This card needs authentication."),
        Err(e) if e.status.is_client_error() => retry(&e.message),
        Err(e) => e.into_response(),
    }
}

fn not_found() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        Html(format!("{HEAD}<main class=\"narrow\"><h1>Invoice not found</h1><p>This invoice link is not valid.</p></main></body></html>")),
    )
        .into_response()
}

fn render(
    invoice: &Value,
    error: Option<&str>,
    form: &HashMap<String, String>,
    pdf: bool,
) -> Response {
    let currency = invoice["currency"].as_str().unwrap_or("usd");
    let money = |v: &Value| crate::catalog::money::format_money(v.as_i64().unwrap_or(0), currency);
    let lines: String = invoice["lines"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            format!(
                r#"<div class="line"><span>{}</span><span>{}</span></div>"#,
                escape(l["description"].as_str().unwrap_or_default()),
                money(&l["amount"])
            )
        })
        .collect();
    let tax = invoice["total_taxes"][0]["amount"].as_i64().unwrap_or(0);
    let tax_line = if tax > 0 {
        format!(
            r#"<div class="line"><span>Tax</span><span>{}</span></div>"#,
            money(&json!(tax))
        )
    } else {
        String::new()
    };
    let status = invoice["status"].as_str().unwrap_or_default();
    let id = escape(invoice["id"].as_str().unwrap_or_default());
    let value = |k: &str| escape(form.get(k).map(String::as_str).unwrap_or(""));
    let error = error
        .map(|e| {
            format!(
                r#"<p class="error" role="alert" data-testid="invoice-error">{}</p>"#,
                escape(e)
            )
        })
        .unwrap_or_default();
    let action = if status == "open" && !pdf {
        format!(
            r#"<section class="pay"><h2>Pay {due}</h2><form method="post" action="/sandbox/invoices/{id}">{error}
<label>Card number<input name="card_number" inputmode="numeric" autocomplete="cc-number" required value="{num}"></label>
<div class="row"><label>Expiry<input name="card_expiry" autocomplete="cc-exp" placeholder="MM / YY" required value="{exp}"></label>
<label>CVC<input name="card_cvc" autocomplete="cc-csc" required value="{cvc}"></label></div>
<button type="submit">Pay {due}</button></form></section>"#,
            due = money(&invoice["amount_remaining"]),
            num = value("card_number"),
            exp = value("card_expiry"),
            cvc = value("card_cvc"),
        )
    } else {
        String::new()
    };
    let date = time::OffsetDateTime::from_unix_timestamp(invoice["created"].as_i64().unwrap_or(0))
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[month repr:long] [day padding:none], [year]"
            ))
            .ok()
        })
        .unwrap_or_default();
    Html(format!(
        r#"{HEAD}<main><section class="summary"><h1>Invoice {number}</h1><p class="muted">{date} · <span data-testid="invoice-status">{status}</span></p>{lines}{tax_line}
<div class="line total"><span>Total</span><span>{total}</span></div><div class="line"><span>Amount paid</span><span>{paid}</span></div>
<div class="line"><span>Amount due</span><span data-testid="invoice-due">{due}</span></div></section>{action}</main></body></html>"#,
        number = escape(invoice["number"].as_str().unwrap_or_default()),
        total = money(&invoice["total"]),
        paid = money(&invoice["amount_paid"]),
        due = money(&invoice["amount_remaining"]),
    ))
    .into_response()
}
