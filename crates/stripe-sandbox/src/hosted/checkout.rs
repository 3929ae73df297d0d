//! `/sandbox/checkout/{id}`: the hosted Checkout page. It shows the line items, the trial,
//! the promotion code, the tax for the billing country and the total due today; it takes a
//! test card and hands the rest to `engine::checkout`.

use super::{
    card_fields, html_page, layout, read_card, test_cards, three_d_secure, unavailable, CardValues,
    Form,
};
use crate::{
    engine::{
        catalog::product_name,
        checkout::{self, Failure, Payer},
        coupons::{discount_amount, redeemable},
        tax,
    },
    http::{Account, StripeError},
    kind::Kind,
    money, store, Sandbox,
};
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    Form as PostedForm,
};
use maud::{html, Markup};
use serde_json::{json, Value};

const TITLE: &str = "Checkout";

pub(super) async fn show_checkout(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
) -> Response {
    match store::find_by_id(&sandbox.db, Kind::CheckoutSession, &id).await {
        Ok(Some((account, session))) => {
            respond(&sandbox, &account, &session, None, &Form::new()).await
        }
        Ok(None) => invalid_link(),
        Err(e) => e.into_response(),
    }
}

/// The card form, the promotion code's Apply button, and the 3-D Secure page all post here.
pub(super) async fn submit_checkout(
    State(sandbox): State<Sandbox>,
    Path(id): Path<String>,
    PostedForm(form): PostedForm<Form>,
) -> Response {
    let (account, session) = match store::find_by_id(&sandbox.db, Kind::CheckoutSession, &id).await
    {
        Ok(Some(found)) => found,
        Ok(None) => return invalid_link(),
        Err(e) => return e.into_response(),
    };
    if form.get("action").map(String::as_str) == Some("apply") {
        return respond(&sandbox, &account, &session, None, &form).await;
    }
    let card = match read_card(&form) {
        Ok(card) => card,
        Err(message) => return respond(&sandbox, &account, &session, Some(&message), &form).await,
    };
    let field = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let payer = Payer {
        card,
        email: field("email"),
        name: field("name"),
        country: field("country"),
        postal_code: field("postal_code"),
        promotion_code: field("promotion_code"),
        authentication: three_d_secure::answer(&form),
    };
    match checkout::complete(&sandbox.db, &sandbox.public_url, &account, &session, payer).await {
        Ok(target) => Redirect::to(&target).into_response(),
        Err(Failure::Card(message)) => {
            respond(&sandbox, &account, &session, Some(&message), &form).await
        }
        Err(Failure::Challenge) => {
            three_d_secure::challenge(&format!("/sandbox/checkout/{id}"), &form)
        }
        Err(Failure::Gone) => no_longer_available(),
        Err(Failure::Internal(e)) => e.into_response(),
    }
}

fn invalid_link() -> Response {
    unavailable(
        TITLE,
        "Checkout unavailable",
        "This checkout link is not valid.",
    )
}

fn no_longer_available() -> Response {
    unavailable(
        TITLE,
        "Checkout unavailable",
        "This Checkout Session is no longer available: it was completed or it expired.",
    )
}

/// One item in the order summary.
struct LineView {
    name: String,
    quantity: i64,
    amount: String,
}

enum TaxLine {
    Off,
    NeedsAddress,
    Rate {
        country: String,
        percent: f64,
        amount: String,
    },
}

enum PromoState {
    None,
    Applied(String),
    Invalid,
}

/// Everything the page shows, worked out before any HTML is written.
struct CheckoutView<'a> {
    id: String,
    subscription_mode: bool,
    cancel_url: Option<String>,
    lines: Vec<LineView>,
    trial: Option<String>,
    discount: Option<String>,
    tax: TaxLine,
    total_due: String,
    promo_field: Option<(String, PromoState)>,
    ask_email: bool,
    address_required: bool,
    error: Option<&'a str>,
    form: &'a Form,
}

async fn respond(
    sandbox: &Sandbox,
    account: &Account,
    session: &Value,
    error: Option<&str>,
    form: &Form,
) -> Response {
    if !checkout::is_open(session) {
        return no_longer_available();
    }
    match load(sandbox, account, session, error, form).await {
        Ok(view) => html_page(StatusCode::OK, render(&view)),
        Err(e) => e.into_response(),
    }
}

async fn load<'a>(
    sandbox: &Sandbox,
    account: &Account,
    session: &Value,
    error: Option<&'a str>,
    form: &'a Form,
) -> Result<CheckoutView<'a>, StripeError> {
    let mut conn = sandbox.db.acquire().await?;
    let items = checkout::session_items(&mut conn, account, session).await?;
    let currency = session["currency"].as_str().unwrap_or("usd").to_owned();
    let money = |amount: i64| money::display(amount, &currency);
    let mut lines = Vec::new();
    let mut per_period = String::new();
    for (price, quantity) in &items {
        let per = price["recurring"]["interval"]
            .as_str()
            .map(|i| format!(" / {i}"))
            .unwrap_or_default();
        let name = product_name(&mut conn, account, price).await?;
        if crate::engine::invoices::is_metered(price) {
            // Nothing today: usage is billed at the end of each period.
            lines.push(LineView {
                name: format!("{name} usage"),
                quantity: 1,
                amount: format!("Billed by usage{per}"),
            });
            continue;
        }
        let amount = format!(
            "{}{per}",
            money(price["unit_amount"].as_i64().unwrap_or(0) * quantity)
        );
        per_period = amount.clone();
        lines.push(LineView {
            name,
            quantity: *quantity,
            amount,
        });
    }
    drop(conn);
    let trial_days = session["sandbox"]["trial_period_days"].as_i64();
    // Totals for what the customer typed so far: the discount once a code is applied, the
    // tax once a country is known.
    let subtotal = session["amount_subtotal"].as_i64().unwrap_or(0);
    let code = form
        .get("promotion_code")
        .map(|c| c.trim().to_owned())
        .unwrap_or_default();
    // A discount the merchant set on the session applies from the start, with no code field.
    let (discount, promo) = if let Some((_, coupon)) = checkout::preset_discount(session) {
        (discount_amount(&coupon, subtotal), PromoState::None)
    } else {
        match redeemable(&sandbox.db, account, &code, subtotal).await {
            Ok(Some((promo, coupon))) => (
                discount_amount(&coupon, subtotal),
                PromoState::Applied(promo["code"].as_str().unwrap_or_default().to_owned()),
            ),
            Ok(None) => (0, PromoState::None),
            Err(_) => (0, PromoState::Invalid),
        }
    };
    let country = form
        .get("country")
        .map(|c| c.trim().to_ascii_uppercase())
        .unwrap_or_default();
    let tax_on = session["automatic_tax"]["enabled"] == json!(true);
    let rate = tax::rate_for(&country);
    let tax_amount = if tax_on {
        tax::on(subtotal - discount, rate)
    } else {
        0
    };
    let tax = match (tax_on, country.is_empty()) {
        (false, _) => TaxLine::Off,
        (true, true) => TaxLine::NeedsAddress,
        (true, false) => TaxLine::Rate {
            country,
            percent: rate as f64 / 100.0,
            amount: money(tax_amount),
        },
    };
    let due_today = if trial_days.is_some() {
        0
    } else {
        subtotal - discount + tax_amount
    };
    Ok(CheckoutView {
        id: session["id"].as_str().unwrap_or_default().to_owned(),
        subscription_mode: session["mode"] == "subscription",
        cancel_url: session["cancel_url"].as_str().map(str::to_owned),
        lines,
        trial: trial_days
            .map(|d| format!("{d} days free, then {per_period}. You will not be charged today.")),
        discount: (discount > 0).then(|| money(discount)),
        tax,
        total_due: money(due_today),
        promo_field: (session["allow_promotion_codes"] == json!(true)).then_some((code, promo)),
        ask_email: session["customer"].is_null(),
        address_required: session["billing_address_collection"] == "required",
        error,
        form,
    })
}

fn render(view: &CheckoutView) -> Markup {
    let value = |k: &str| view.form.get(k).map(String::as_str).unwrap_or("");
    let (heading, button) = match (view.subscription_mode, &view.trial) {
        (true, Some(_)) => ("Subscribe", "Start trial"),
        (true, None) => ("Subscribe", "Subscribe"),
        (false, _) => ("Pay", "Pay"),
    };
    let body = html! {
        main.checkout {
            section.summary {
                @if let Some(url) = &view.cancel_url {
                    a.back href=(url) { "← Back" }
                }
                h1 { (heading) }
                @for line in &view.lines {
                    div.line data-testid="line-item" {
                        span {
                            (line.name)
                            @if line.quantity > 1 { " × " (line.quantity) }
                        }
                        span { (line.amount) }
                    }
                }
                @if let Some(trial) = &view.trial {
                    p.trial data-testid="trial-notice" { (trial) }
                }
                @if let Some(discount) = &view.discount {
                    div.line data-testid="discount-line" { span { "Discount" } span { "−" (discount) } }
                }
                @match &view.tax {
                    TaxLine::Off => {}
                    TaxLine::NeedsAddress => {
                        div.line.muted data-testid="tax-line" { span { "Tax" } span { "Enter address to calculate" } }
                    }
                    TaxLine::Rate { country, percent, amount } => {
                        div.line data-testid="tax-line" {
                            span { "Tax (" (country) ", " (percent) "%)" }
                            span { (amount) }
                        }
                    }
                }
                div.line.total data-testid="total-due" { span { "Total due today" } span { (view.total_due) } }
            }
            section.pay {
                form.stack method="post" action=(format!("/sandbox/checkout/{}", view.id)) {
                    @if let Some(error) = view.error {
                        p.error role="alert" data-testid="checkout-error" { (error) }
                    }
                    @if view.ask_email {
                        label { "Email"
                            input name="email" type="email" autocomplete="email" required value=(value("email"));
                        }
                    }
                    (card_fields(&CardValues::from_form(view.form)))
                    label { "Name on card"
                        input name="name" autocomplete="cc-name" required[view.address_required] value=(value("name"));
                    }
                    div.row {
                        label { "Country"
                            input name="country" autocomplete="country" placeholder="US" maxlength="2"
                                required[view.address_required] value=(value("country"));
                        }
                        label { "Postal code"
                            input name="postal_code" autocomplete="postal-code"
                                required[view.address_required] value=(value("postal_code"));
                        }
                    }
                    @if let Some((code, state)) = &view.promo_field {
                        div.row.promo {
                            label { "Promotion code"
                                input name="promotion_code" autocomplete="off" value=(code);
                            }
                            button.secondary type="submit" name="action" value="apply" formnovalidate { "Apply" }
                        }
                        @match state {
                            PromoState::None => {}
                            PromoState::Applied(code) => {
                                p.ok role="status" data-testid="promo-applied" { "Code " (code) " applied" }
                            }
                            PromoState::Invalid => {
                                p.error role="alert" data-testid="promo-error" { "This code is invalid." }
                            }
                        }
                    }
                    button type="submit" { (button) }
                }
                (test_cards())
            }
        }
    };
    layout(TITLE, None, body)
}
