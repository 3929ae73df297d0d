//! The bank's 3-D Secure page, shown before a payment that asks for authentication (test
//! card 4000 0025 0000 3155) on Checkout and on the hosted invoice page. Completing or
//! failing sends the payment form back with the customer's answer.

use super::{html_page, layout, Form};
use crate::engine::checkout::Authentication;
use axum::{http::StatusCode, response::Response};
use maud::html;

const ANSWER: &str = "three_d_secure";

/// What the customer answered on the challenge, if they have seen it.
pub(super) fn answer(form: &Form) -> Authentication {
    match form.get(ANSWER).map(String::as_str) {
        Some("complete") => Authentication::Completed,
        Some("fail") => Authentication::Failed,
        _ => Authentication::NotAsked,
    }
}

/// The challenge, posting `form` back to `action` with the answer added.
pub(super) fn challenge(action: &str, form: &Form) -> Response {
    let mut carried: Vec<(&String, &String)> = form
        .iter()
        .filter(|(k, _)| k.as_str() != ANSWER && k.as_str() != "action")
        .collect();
    carried.sort();
    let button = |answer: &str, label: &str| {
        html! {
            form.stack method="post" action=(action) {
                @for (name, value) in &carried {
                    input type="hidden" name=(name) value=(value);
                }
                input type="hidden" name=(ANSWER) value=(answer);
                button type="submit" data-testid=(format!("3ds-{answer}")) { (label) }
            }
        }
    };
    html_page(
        StatusCode::OK,
        layout(
            "3-D Secure",
            None,
            html! {
                main.narrow {
                    h1 { "3-D Secure test payment" }
                    p data-testid="3ds-challenge" {
                        "Your bank asks you to confirm this payment. This is a test page: choose what the customer does."
                    }
                    div.row {
                        (button("complete", "Complete authentication"))
                        (button("fail", "Fail authentication"))
                    }
                }
            },
        ),
    )
}
