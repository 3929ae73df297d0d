//! The sandbox never silently ignores a parameter. Each API route declares the parameters it
//! implements ([`Accepts`], a list of paths); anything else in a request is refused with a
//! `400 parameter_unknown` before the handler runs. Two cases, told apart by Stripe's own
//! parameter table (`stripe_params.txt`, generated from Stripe's OpenAPI spec by
//! `scripts/stripe-params.mjs`): a parameter Stripe does not have gets Stripe's exact answer;
//! one Stripe has but the sandbox does not implement says so, rather than being accepted and
//! dropped (a dropped `discounts` would charge full price). A declared parameter Stripe does
//! not have on that endpoint is refused too: the sandbox must never accept what Stripe would
//! not.
//!
//! A path is dotted segments: a key, `*` (any key: `metadata.*`) or `#` (any index of a list:
//! `line_items.#.price`).

use super::{Params, StripeError};
use axum::{extract::MatchedPath, http::Method, Extension};
use serde_json::Value;
use std::{collections::HashMap, sync::LazyLock};

/// The parameters a route implements: its own, and whether it is a list (which takes
/// Stripe's paging parameters too).
#[derive(Debug, Clone, Copy)]
pub struct Accepts(pub &'static [&'static str], pub bool);

/// Marks a request as an API call: its route must declare what it accepts.
#[derive(Debug, Clone, Copy)]
pub struct ApiCall;

/// Parameters every route takes (Stripe expands on any request, whatever its spec lists).
const EVERYWHERE: &[&str] = &["expand.#"];

/// Parameters every list takes.
const PAGING: &[&str] = &["limit", "starting_after", "ending_before"];

/// The layer that declares `paths` for a route: `post(handler).layer(accepts(&[…]))`.
pub fn accepts(paths: &'static [&'static str]) -> Extension<Accepts> {
    Extension(Accepts(paths, false))
}

/// [`accepts`] for a list: `paths` (its filters) and the paging parameters.
pub fn lists(paths: &'static [&'static str]) -> Extension<Accepts> {
    Extension(Accepts(paths, true))
}

/// Stripe's parameters per endpoint (`POST /v1/customers/{}`), for the resources the sandbox
/// serves.
static STRIPE: LazyLock<HashMap<&'static str, Vec<&'static str>>> =
    LazyLock::new(|| parse_table(include_str!("stripe_params.txt")));

fn parse_table(text: &'static str) -> HashMap<&'static str, Vec<&'static str>> {
    let mut table = HashMap::new();
    let mut current = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some(param) = line.strip_prefix("  ") {
            if let Some(endpoint) = current {
                table.entry(endpoint).or_insert_with(Vec::new).push(param);
            }
        } else if !line.is_empty() {
            current = Some(line);
            table.entry(line).or_insert_with(Vec::new);
        }
    }
    table
}

/// The endpoint a request was routed to, as Stripe's table names it: the route's template
/// under `/v1` (wherever the API is mounted) with each path parameter as `{}`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    method: Method,
    path: String,
}

impl Endpoint {
    pub fn new(method: &Method, matched: Option<&MatchedPath>) -> Option<Self> {
        Some(Self::at(method, matched?.as_str()))
    }

    fn at(method: &Method, matched: &str) -> Self {
        let inner = matched.rsplit_once("/v1").map_or(matched, |(_, rest)| rest);
        let mut path = String::from("/v1");
        for segment in inner.split('/').filter(|s| !s.is_empty()) {
            path.push('/');
            path.push_str(if segment.starts_with('{') {
                "{}"
            } else {
                segment
            });
        }
        Self {
            method: method.clone(),
            path,
        }
    }

    /// Stripe's parameters for this endpoint, if the table has it.
    fn stripe(&self) -> Option<&'static [&'static str]> {
        STRIPE
            .get(format!("{} {}", self.method, self.path).as_str())
            .map(Vec::as_slice)
    }
}

/// Checks every parameter of `params` against `accepts` and Stripe's table for `endpoint`.
pub fn check(
    params: &Params,
    accepts: Option<Accepts>,
    api_call: bool,
    endpoint: Option<&Endpoint>,
) -> Result<(), StripeError> {
    let Some(Accepts(paths, list)) = accepts else {
        if api_call {
            return Err(StripeError::internal(
                "this route does not declare the parameters it implements",
            ));
        }
        return Ok(());
    };
    let stripe = endpoint.and_then(Endpoint::stripe);
    if api_call && stripe.is_none() {
        return Err(StripeError::internal(
            "this route is not one of Stripe's endpoints in stripe_params.txt",
        ));
    }
    let mut leaves = Vec::new();
    collect(
        &Value::Object(params.0.clone()),
        &mut Vec::new(),
        &mut leaves,
    );
    for leaf in leaves {
        let paging = if list { PAGING } else { &[] };
        let named = |patterns: &[&str]| patterns.iter().any(|p| matches(p, &leaf));
        let stripe_has = stripe.is_none_or(named);
        let implemented = named(EVERYWHERE) || (stripe_has && (named(paths) || named(paging)));
        if implemented {
            continue;
        }
        let param = bracketed(&leaf);
        let message = if stripe_has && stripe.is_some() {
            format!(
                "The sandbox does not implement `{param}` on this endpoint. Stripe has it; the sandbox refuses it rather than ignore it."
            )
        } else {
            format!("Received unknown parameter: {param}")
        };
        return Err(StripeError {
            code: Some("parameter_unknown"),
            ..StripeError::invalid(&param, message)
        });
    }
    Ok(())
}

/// Every leaf's path. An empty hash or list counts as a leaf at its own path.
fn collect(value: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(map) if !map.is_empty() => walk(map.iter(), path, out),
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                collect(item, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn walk<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Value)>,
    path: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    for (key, value) in entries {
        path.push(key.clone());
        collect(value, path, out);
        path.pop();
    }
}

/// Whether `pattern` names `leaf`, or a hash or list above it (`metadata` matches
/// `metadata=` clearing it, and `metadata.*` matches each key).
fn matches(pattern: &str, leaf: &[String]) -> bool {
    let segments: Vec<&str> = pattern.split('.').collect();
    if segments.len() < leaf.len() {
        return false;
    }
    // A leaf shorter than the pattern: the parameter was sent empty (`metadata=`), which
    // its pattern's prefix allows.
    segments.iter().zip(leaf).all(|(s, k)| match *s {
        "*" => true,
        "#" => k.parse::<usize>().is_ok(),
        s => s == k,
    })
}

/// `line_items[0][price]`, as a client wrote it.
fn bracketed(leaf: &[String]) -> String {
    let mut out = leaf.first().cloned().unwrap_or_default();
    for k in &leaf[1..] {
        out.push('[');
        out.push_str(k);
        out.push(']');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(raw: &str) -> Params {
        Params::parse(raw).unwrap()
    }

    const SPEC: Accepts = Accepts(
        &[
            "mode",
            "metadata.*",
            "line_items.#.price",
            "line_items.#.quantity",
        ],
        false,
    );

    #[test]
    fn what_a_route_declares_passes_and_nothing_else() {
        let ok = with("mode=payment&metadata[a]=1&line_items[0][price]=p&line_items[1][quantity]=2&expand[]=x");
        assert!(check(&ok, Some(SPEC), true, Some(&create())).is_ok());
        assert!(
            check(&with("metadata="), Some(SPEC), true, Some(&create())).is_ok(),
            "clearing metadata"
        );
        for (raw, param) in [
            ("discounts[0][coupon]=c", "discounts[0][coupon]"),
            (
                "line_items[0][price_data][currency]=usd",
                "line_items[0][price_data][currency]",
            ),
            ("modes=x", "modes"),
        ] {
            let err = check(&with(raw), Some(SPEC), true, Some(&create())).unwrap_err();
            assert_eq!(err.code, Some("parameter_unknown"), "{raw}");
            assert_eq!(err.param.as_deref(), Some(param), "{raw}");
        }
    }

    #[test]
    fn only_lists_take_the_paging_parameters() {
        let paged = with("limit=3&starting_after=cus_1&ending_before=cus_9&customer=cus_2");
        let list = Accepts(&["customer"], true);
        assert!(check(&paged, Some(list), true, Some(&list_sessions())).is_ok());
        let not_a_list = Accepts(&["customer"], false);
        let err = check(&paged, Some(not_a_list), true, Some(&list_sessions())).unwrap_err();
        assert_eq!(err.code, Some("parameter_unknown"));
    }

    fn create() -> Endpoint {
        Endpoint::at(&Method::POST, "/sandbox/v1/checkout/sessions")
    }

    fn list_sessions() -> Endpoint {
        Endpoint::at(&Method::GET, "/checkout/sessions")
    }

    #[test]
    fn endpoints_are_named_as_in_stripes_table_wherever_the_api_is_mounted() {
        for (matched, path) in [
            ("/v1/customers/{id}", "/v1/customers/{}"),
            (
                "/sandbox/v1/customers/{id}/payment_methods",
                "/v1/customers/{}/payment_methods",
            ),
            (
                "/billing/meters/{meter}/event_summaries",
                "/v1/billing/meters/{}/event_summaries",
            ),
        ] {
            let endpoint = Endpoint::at(&Method::GET, matched);
            assert_eq!(endpoint.path, path);
            assert!(endpoint.stripe().is_some(), "{path} is in Stripe's table");
        }
        let table = &STRIPE["POST /v1/customers"];
        assert!(table.contains(&"email") && table.contains(&"metadata.*"));
    }

    #[test]
    fn stripes_parameters_the_sandbox_lacks_are_named_as_such_and_others_get_stripes_answer() {
        let unimplemented = check(
            &with("discounts[0][coupon]=c"),
            Some(SPEC),
            true,
            Some(&create()),
        )
        .unwrap_err();
        assert_eq!(unimplemented.code, Some("parameter_unknown"));
        assert!(
            unimplemented
                .message
                .contains("does not implement `discounts[0][coupon]`"),
            "{}",
            unimplemented.message
        );
        let unknown = check(
            &with("line_items[0][colour]=red"),
            Some(SPEC),
            true,
            Some(&create()),
        )
        .unwrap_err();
        assert_eq!(
            unknown.message,
            "Received unknown parameter: line_items[0][colour]"
        );
        assert_eq!(unknown.param.as_deref(), Some("line_items[0][colour]"));
    }

    #[test]
    fn a_declared_parameter_stripe_does_not_have_is_refused_as_stripe_would() {
        let careless = Accepts(&["mode", "colour"], false);
        let err = check(&with("colour=red"), Some(careless), true, Some(&create())).unwrap_err();
        assert_eq!(err.message, "Received unknown parameter: colour");
        // `expand` goes everywhere, even where Stripe's spec leaves it out (deletions).
        let delete = Endpoint::at(&Method::DELETE, "/v1/coupons/{id}");
        assert!(check(
            &with("expand[]=x"),
            Some(Accepts(&[], false)),
            true,
            Some(&delete)
        )
        .is_ok());
    }

    #[test]
    fn an_api_route_stripe_does_not_have_is_a_sandbox_bug() {
        let invented = Endpoint::at(&Method::POST, "/v1/sandbox_only");
        let err = check(&with(""), Some(Accepts(&[], false)), true, Some(&invented)).unwrap_err();
        assert_eq!(err.kind, "api_error");
    }

    #[test]
    fn an_api_route_without_a_declaration_is_a_sandbox_bug() {
        assert!(check(&with("a=1"), None, true, None).is_err());
        assert!(
            check(&with("a=1"), None, false, None).is_ok(),
            "hosted pages are not API routes"
        );
    }
}
