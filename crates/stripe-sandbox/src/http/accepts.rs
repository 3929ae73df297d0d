//! The sandbox never silently ignores a parameter. Each API route declares the parameters it
//! implements ([`Accepts`], a list of paths); anything else in a request is refused with
//! Stripe's `400 parameter_unknown`, before the handler runs. Stripe refuses parameters it
//! does not have the same way; one it has but the sandbox does not implement is refused too,
//! rather than accepted and dropped (a dropped `discounts` would charge full price).
//!
//! A path is dotted segments: a key, `*` (any key: `metadata.*`) or `#` (any index of a list:
//! `line_items.#.price`).

use super::{Params, StripeError};
use axum::Extension;
use serde_json::Value;

/// The parameters a route implements: its own, and whether it is a list (which takes
/// Stripe's paging parameters too).
#[derive(Debug, Clone, Copy)]
pub struct Accepts(pub &'static [&'static str], pub bool);

/// Marks a request as an API call: its route must declare what it accepts.
#[derive(Debug, Clone, Copy)]
pub struct ApiCall;

/// Parameters every route takes.
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

/// Checks every parameter of `params` against `accepts`.
pub fn check(params: &Params, accepts: Option<Accepts>, api_call: bool) -> Result<(), StripeError> {
    let Some(Accepts(paths, list)) = accepts else {
        if api_call {
            return Err(StripeError::internal(
                "this route does not declare the parameters it implements",
            ));
        }
        return Ok(());
    };
    let mut leaves = Vec::new();
    collect(
        &Value::Object(params.0.clone()),
        &mut Vec::new(),
        &mut leaves,
    );
    for leaf in leaves {
        let paging = if list { PAGING } else { &[] };
        let known = paths
            .iter()
            .chain(EVERYWHERE)
            .chain(paging)
            .any(|pattern| matches(pattern, &leaf));
        if !known {
            let param = bracketed(&leaf);
            return Err(StripeError {
                code: Some("parameter_unknown"),
                ..StripeError::invalid(
                    &param,
                    format!(
                        "Received unknown parameter: {param}. (The sandbox refuses every parameter it does not implement on this endpoint, rather than ignore it.)"
                    ),
                )
            });
        }
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
        assert!(check(&ok, Some(SPEC), true).is_ok());
        assert!(
            check(&with("metadata="), Some(SPEC), true).is_ok(),
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
            let err = check(&with(raw), Some(SPEC), true).unwrap_err();
            assert_eq!(err.code, Some("parameter_unknown"), "{raw}");
            assert_eq!(err.param.as_deref(), Some(param), "{raw}");
        }
    }

    #[test]
    fn only_lists_take_the_paging_parameters() {
        let paged = with("limit=3&starting_after=cus_1&ending_before=cus_9&customer=cus_2");
        let list = Accepts(&["customer"], true);
        assert!(check(&paged, Some(list), true).is_ok());
        let not_a_list = Accepts(&["customer"], false);
        let err = check(&paged, Some(not_a_list), true).unwrap_err();
        assert_eq!(err.code, Some("parameter_unknown"));
    }

    #[test]
    fn an_api_route_without_a_declaration_is_a_sandbox_bug() {
        assert!(check(&with("a=1"), None, true).is_err());
        assert!(
            check(&with("a=1"), None, false).is_ok(),
            "hosted pages are not API routes"
        );
    }
}
