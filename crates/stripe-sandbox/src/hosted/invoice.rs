//! `/sandbox/invoices/{id}`: the hosted invoice (Stripe's `hosted_invoice_url`): its lines,
//! tax, what was paid and what is due, and a card form while it is open.

use super::{
    card_fields, html_page, layout, long_date, read_card, three_d_secure, unavailable, CardValues,
    Form,
};
use crate::{
    engine::{
        cards::{behavior_of, card_payment_method, Behavior},
        checkout::Authentication,
        invoices,
        payment_methods::save_typed_card,
        payments::Outcome,
    },
    http::{RequestInfo, StripeError},
    kind::Kind,
    money, store, Sandbox,
};
use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    Form as PostedForm,
};
use maud::{html, Markup};
use serde_json::{json, Value};

const TITLE: &str = "Invoice";

#[derive(serde::Deserialize)]
pub(super) struct Format {
    format: Option<String>,
}

pub(super) async fn show_invoice(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    Query(f): Query<Format>,
) -> Response {
    match store::find_by_id(&sandbox.db, Kind::Invoice, &id).await {
        Ok(Some((_, invoice))) => {
            let printable = f.format.as_deref() == Some("pdf");
            html_page(
                StatusCode::OK,
                render(&view(&invoice, None, &Form::new(), printable)),
            )
        }
        Ok(None) => not_found(),
        Err(e) => e.into_response(),
    }
}

/// Paying the invoice with a card typed on the page (3-D Secure asks first, as on Checkout).
pub(super) async fn pay_invoice(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    PostedForm(form): PostedForm<Form>,
) -> Response {
    let (account, invoice) = match store::find_by_id(&sandbox.db, Kind::Invoice, &id).await {
        Ok(Some(found)) => found,
        Ok(None) => return not_found(),
        Err(e) => return e.into_response(),
    };
    let retry = |message: &str| {
        html_page(
            StatusCode::OK,
            render(&view(&invoice, Some(message), &form, false)),
        )
    };
    if invoice["status"] != "open" {
        return retry("This invoice is no longer open.");
    }
    let card = match read_card(&form) {
        Ok(card) => card,
        Err(message) => return retry(&message),
    };
    let mut pm = card_payment_method(
        &card.number,
        card.exp_month,
        card.exp_year,
        json!({ "address": null, "email": null, "name": null, "phone": null, "tax_id": null }),
    );
    let authenticated = match (behavior_of(&pm), three_d_secure::answer(&form)) {
        (Behavior::Declined(code), _) => return retry(&StripeError::card_declined(code).message),
        (Behavior::RequiresAuthentication, Authentication::Completed) => true,
        (Behavior::RequiresAuthentication, Authentication::Failed) => {
            return retry("We are unable to authenticate your payment method.")
        }
        (Behavior::RequiresAuthentication, Authentication::NotAsked) => {
            return three_d_secure::challenge(&format!("/sandbox/invoices/{id}"), &form)
        }
        _ => false,
    };
    let req = RequestInfo::from_page();
    let result = async {
        let mut tx = sandbox.db.begin().await?;
        save_typed_card(&mut tx, &account, &req, &mut pm, &invoice["customer"]).await?;
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
    unavailable(
        TITLE,
        "Invoice not found",
        "This invoice link is not valid.",
    )
}

struct InvoiceView<'a> {
    id: String,
    number: String,
    date: String,
    status: String,
    lines: Vec<(String, String)>,
    tax: Option<String>,
    total: String,
    paid: String,
    due: String,
    /// The card form, while the invoice is open (not on the printable copy).
    payable: bool,
    error: Option<&'a str>,
    form: &'a Form,
}

fn view<'a>(
    invoice: &Value,
    error: Option<&'a str>,
    form: &'a Form,
    printable: bool,
) -> InvoiceView<'a> {
    let currency = invoice["currency"].as_str().unwrap_or("usd");
    let money = |v: &Value| money::display(v.as_i64().unwrap_or(0), currency);
    let tax = invoice["total_taxes"][0]["amount"].as_i64().unwrap_or(0);
    let status = invoice["status"].as_str().unwrap_or_default().to_owned();
    InvoiceView {
        id: invoice["id"].as_str().unwrap_or_default().to_owned(),
        number: invoice["number"].as_str().unwrap_or_default().to_owned(),
        date: long_date(invoice["created"].as_i64().unwrap_or(0)),
        lines: invoice["lines"]["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                (
                    l["description"].as_str().unwrap_or_default().to_owned(),
                    money(&l["amount"]),
                )
            })
            .collect(),
        tax: (tax > 0).then(|| money(&json!(tax))),
        total: money(&invoice["total"]),
        paid: money(&invoice["amount_paid"]),
        due: money(&invoice["amount_remaining"]),
        payable: status == "open" && !printable,
        status,
        error,
        form,
    }
}

fn render(view: &InvoiceView) -> Markup {
    let body = html! {
        main.checkout {
            section.summary {
                h1 { "Invoice " (view.number) }
                p.muted { (view.date) " · " span data-testid="invoice-status" { (view.status) } }
                @for (description, amount) in &view.lines {
                    div.line { span { (description) } span { (amount) } }
                }
                @if let Some(tax) = &view.tax {
                    div.line { span { "Tax" } span { (tax) } }
                }
                div.line.total { span { "Total" } span { (view.total) } }
                div.line { span { "Amount paid" } span { (view.paid) } }
                div.line { span { "Amount due" } span data-testid="invoice-due" { (view.due) } }
            }
            @if view.payable {
                section.pay {
                    h2 { "Pay " (view.due) }
                    form.stack method="post" action=(format!("/sandbox/invoices/{}", view.id)) {
                        @if let Some(error) = view.error {
                            p.error role="alert" data-testid="invoice-error" { (error) }
                        }
                        (card_fields(&CardValues::from_form(view.form)))
                        button type="submit" { "Pay " (view.due) }
                    }
                }
            }
        }
    };
    layout(TITLE, None, body)
}
