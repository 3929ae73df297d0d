//! A small, deterministic tax table by billing country, standing in for Stripe Tax: enough
//! to show a tax line on Checkout and invoices and to test that automatic tax is asked for.
//! Rates are in basis points; a country not listed is not taxed.

use serde_json::Value;

pub const RATES: &[(&str, i64)] = &[
    ("AU", 1000),
    ("CA", 500),
    ("DE", 1900),
    ("FR", 2000),
    ("GB", 2000),
    ("IE", 2300),
    ("NL", 2100),
    ("US", 725),
];

pub fn rate_for(country: &str) -> i64 {
    RATES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(country))
        .map(|(_, r)| *r)
        .unwrap_or(0)
}

/// Tax on `subtotal` for the customer's billing country, rounded half up like Stripe.
pub fn amount(customer: &Value, subtotal: i64) -> i64 {
    let rate = customer["address"]["country"]
        .as_str()
        .map(rate_for)
        .unwrap_or(0);
    on(subtotal, rate)
}

pub fn on(subtotal: i64, rate_bps: i64) -> i64 {
    (subtotal * rate_bps + 5_000) / 10_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taxes_round_half_up_and_unknown_countries_pay_none() {
        assert_eq!(on(2900, 2000), 580);
        assert_eq!(on(2900, 725), 210); // 210.25
        assert_eq!(on(1000, 725), 73); // 72.5 rounds up
        assert_eq!(rate_for("de"), 1900);
        assert_eq!(rate_for("ZZ"), 0);
    }
}
