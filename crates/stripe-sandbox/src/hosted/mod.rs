//! The pages a browser sees: hosted Checkout, the Customer Portal, hosted invoices, the
//! 3-D Secure challenge, and the dashboard. Each page loads what it shows, builds a view
//! model, and renders it through maud, whose templates escape every value they print: no
//! page assembles HTML from strings.

mod checkout;
mod dashboard;
mod invoice;
mod portal;
mod three_d_secure;

use crate::{engine::cards, engine::checkout::TypedCard, Sandbox};
use axum::{
    http::{header, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
    Router,
};
use maud::{html, Markup, DOCTYPE};
use std::collections::HashMap;

/// A posted HTML form, field by field.
pub(crate) type Form = HashMap<String, String>;

const STYLESHEET: &str = "/sandbox/assets/sandbox.css";

pub fn router(sandbox: &Sandbox) -> Router<Sandbox> {
    // The dashboard sees every account: behind the token. The hosted pages' unguessable
    // URLs are their key, as on Stripe.
    let dashboard = Router::new()
        .route("/sandbox", get(dashboard::show_dashboard))
        .route("/sandbox/events/{id}/resend", post(dashboard::resend_event))
        .route(
            "/sandbox/clocks/{id}/advance",
            post(dashboard::advance_clock),
        )
        .route(
            "/sandbox/disputes/{id}/close",
            post(dashboard::close_dispute),
        )
        .route(
            "/sandbox/charges/{id}/refund",
            post(dashboard::refund_charge),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            sandbox.dashboard_gate(),
            crate::http::require_dashboard_token,
        ));
    Router::new()
        .merge(dashboard)
        .route(
            "/sandbox/checkout/{id}",
            get(checkout::show_checkout).post(checkout::submit_checkout),
        )
        .route(
            "/sandbox/portal/{id}",
            get(portal::show_portal).post(portal::submit_portal),
        )
        .route(
            "/sandbox/invoices/{id}",
            get(invoice::show_invoice).post(invoice::pay_invoice),
        )
        .route(STYLESHEET, get(stylesheet))
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("sandbox.css"),
    )
        .into_response()
}

/// The document around every page: one stylesheet, no script.
fn layout(title: &str, body_class: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Stripe sandbox" }
                // No icon, and no request for one: a browser would ask `/favicon.ico`,
                // which neither the app nor a standalone sandbox serves (a 404 in the console).
                link rel="icon" href="data:,";
                link rel="stylesheet" href=(STYLESHEET);
            }
            body class=[body_class] { (body) }
        }
    }
}

fn html_page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

/// A page for a link that leads nowhere (unknown, completed or expired).
fn unavailable(title: &str, heading: &str, message: &str) -> Response {
    html_page(
        StatusCode::NOT_FOUND,
        layout(
            title,
            None,
            html! { main.narrow { h1 { (heading) } p { (message) } } },
        ),
    )
}

/// What a customer typed into a card form, kept to show the form again after an error.
#[derive(Default)]
struct CardValues<'a> {
    number: &'a str,
    expiry: &'a str,
    cvc: &'a str,
}

impl<'a> CardValues<'a> {
    fn from_form(form: &'a Form) -> Self {
        let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        Self {
            number: get("card_number"),
            expiry: get("card_expiry"),
            cvc: get("card_cvc"),
        }
    }
}

/// The card fields every hosted form shares, named as Stripe's card element names them.
fn card_fields(values: &CardValues) -> Markup {
    html! {
        label { "Card number"
            input name="card_number" inputmode="numeric" autocomplete="cc-number"
                placeholder="1234 1234 1234 1234" required value=(values.number);
        }
        div.row {
            label { "Expiry"
                input name="card_expiry" autocomplete="cc-exp" placeholder="MM / YY" required
                    value=(values.expiry);
            }
            label { "CVC"
                input name="card_cvc" autocomplete="cc-csc" placeholder="CVC" required
                    inputmode="numeric" value=(values.cvc);
            }
        }
    }
}

/// The test cards, for whoever is testing.
fn test_cards() -> Markup {
    html! {
        details {
            summary { "Test cards" }
            ul.cards {
                @for card in cards::CARDS {
                    li { code { (card.grouped()) } " " (card.behavior.describe()) }
                }
            }
            p { "Any future expiry and any 3-digit CVC." }
        }
    }
}

/// The card fields of a payment form, checked like Stripe's card element: a number that
/// passes Luhn (or is a test card), a future expiry, and a 3–4 digit CVC.
fn read_card(form: &Form) -> Result<TypedCard, String> {
    let field = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let number: String = field("card_number")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if cards::test_card(&number).is_none() && !cards::luhn_valid(&number) {
        return Err("Your card number is incorrect.".into());
    }
    let (exp_month, exp_year) = parse_expiry(&field("card_expiry"))
        .ok_or_else(|| "Your card's expiration date is incomplete.".to_owned())?;
    cards::check_expiry(exp_month, exp_year).map_err(|e| e.message)?;
    let cvc = field("card_cvc");
    if !(3..=4).contains(&cvc.len()) || !cvc.chars().all(|c| c.is_ascii_digit()) {
        return Err("Your card's security code is incomplete.".into());
    }
    Ok(TypedCard {
        number,
        exp_month,
        exp_year,
    })
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

/// `March 5, 2027`, as Stripe's pages write dates.
fn long_date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[month repr:long] [day padding:none], [year]"
            ))
            .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_accepts_the_usual_spellings() {
        assert_eq!(parse_expiry("12 / 34"), Some((12, 2034)));
        assert_eq!(parse_expiry("12/2034"), Some((12, 2034)));
        assert_eq!(parse_expiry("1234"), Some((12, 2034)));
        assert_eq!(parse_expiry("12"), None);
    }

    #[test]
    fn values_are_escaped_by_construction() {
        let values = CardValues {
            number: r#""><script>alert(1)</script>"#,
            ..CardValues::default()
        };
        let html = card_fields(&values).into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&quot;&gt;&lt;script&gt;"), "{html}");
    }
}
