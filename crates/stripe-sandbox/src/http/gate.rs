//! The dashboard's gate. The dashboard shows every account's customers and events and moves
//! their clocks, so it asks for the token the server printed at start-up (like Jupyter's).
//! `?token=…` once sets a cookie and drops the token from the address; the cookie is enough
//! after that. The hosted Checkout, Portal and invoice pages are not gated: like Stripe's,
//! their unguessable URLs are their key.

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::Next,
    response::{Html, IntoResponse, Redirect, Response},
};
use maud::{html, DOCTYPE};
use std::sync::Arc;

const COOKIE: &str = "sandbox_token";

/// What the gate checks against: the token, and whether its cookie must be `Secure`.
#[derive(Clone)]
pub struct DashboardGate {
    token: Arc<str>,
    secure: bool,
}

impl DashboardGate {
    pub fn new(token: &str, secure: bool) -> Self {
        Self {
            token: token.into(),
            secure,
        }
    }

    /// Compares in constant time: how long a wrong guess takes tells nothing.
    fn accepts(&self, given: &str) -> bool {
        let (a, b) = (self.token.as_bytes(), given.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Lets a request through with the token in its cookie; trades `?token=` for the cookie;
/// refuses everything else with a page that says what to do.
pub async fn require_dashboard_token(
    State(gate): State<DashboardGate>,
    req: Request,
    next: Next,
) -> Response {
    let uri = req.uri().clone();
    let mut rest = Vec::new();
    let mut offered = None;
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        if k == "token" {
            offered = Some(v.into_owned());
        } else {
            rest.push((k.into_owned(), v.into_owned()));
        }
    }
    if let Some(offered) = offered {
        if !gate.accepts(&offered) {
            return refused();
        }
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&rest)
            .finish();
        let target = if query.is_empty() {
            uri.path().to_owned()
        } else {
            format!("{}?{query}", uri.path())
        };
        let secure = if gate.secure { "; Secure" } else { "" };
        let cookie = format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{secure}",
            gate.token
        );
        let mut res = Redirect::to(&target).into_response();
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            res.headers_mut().insert(header::SET_COOKIE, value);
        }
        return res;
    }
    let has_cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| name == COOKIE && gate.accepts(value));
    if has_cookie {
        next.run(req).await
    } else {
        refused()
    }
}

fn refused() -> Response {
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Token needed · Stripe sandbox" }
                link rel="stylesheet" href="/sandbox/assets/sandbox.css";
            }
            body {
                main.narrow {
                    h1 { "This page needs the sandbox's token" }
                    p { "The sandbox's dashboard and the dev mailbox show every test customer and email. Open the link the server printed when it started (it ends in " code { "?token=…" } "), or set " code { "SANDBOX_TOKEN" } " and add " code { "?token=" } " with it to this address." }
                }
            }
        }
    };
    (StatusCode::UNAUTHORIZED, Html(body.into_string())).into_response()
}

#[cfg(test)]
mod tests {
    use super::DashboardGate;

    #[test]
    fn the_token_must_match_exactly() {
        let gate = DashboardGate::new("0123456789abcdef", false);
        assert!(gate.accepts("0123456789abcdef"));
        for wrong in [
            "",
            "0123456789abcde",
            "0123456789abcdef0",
            "0123456789abcdeF",
        ] {
            assert!(!gate.accepts(wrong), "{wrong:?}");
        }
    }
}
