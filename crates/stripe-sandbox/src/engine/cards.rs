//! Stripe's test cards, by number and by their `pm_card_*` test ids, how each behaves, and
//! the card payment method objects made from them.

use crate::{
    http::StripeError,
    ids::{new_id, now},
};
use serde_json::{json, Value};

/// What happens when a card is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    Succeeds,
    /// Declined at once, even when only saved: `card_declined` with this decline code.
    Declined(&'static str),
    /// Saves fine; every later charge is declined (`4000 0000 0000 0341`).
    ChargesFail,
    /// Needs 3-D Secure for on-session payments (`4000 0025 0000 3155`).
    RequiresAuthentication,
    /// Charges succeed, then each is disputed as fraudulent (`4000 0000 0000 0259`).
    Disputed,
}

impl Behavior {
    /// What the hosted pages tell a tester the card does.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Succeeds => "succeeds",
            Self::Declined("insufficient_funds") => "declined: insufficient funds",
            Self::Declined(_) => "declined",
            Self::ChargesFail => "saves, then every charge fails (for dunning)",
            Self::RequiresAuthentication => "asks for 3-D Secure",
            Self::Disputed => "succeeds, then the charge is disputed as fraudulent",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestCard {
    pub number: &'static str,
    pub test_id: &'static str,
    pub brand: &'static str,
    pub funding: &'static str,
    pub country: &'static str,
    pub behavior: Behavior,
}

impl TestCard {
    /// "4242 4242 4242 4242", as printed on a card.
    pub fn grouped(&self) -> String {
        let digits: Vec<&str> = (0..self.number.len())
            .step_by(4)
            .map(|i| &self.number[i..(i + 4).min(self.number.len())])
            .collect();
        digits.join(" ")
    }
}

pub const CARDS: &[TestCard] = &[
    TestCard {
        number: "4242424242424242",
        test_id: "pm_card_visa",
        brand: "visa",
        funding: "credit",
        country: "US",
        behavior: Behavior::Succeeds,
    },
    TestCard {
        number: "5555555555554444",
        test_id: "pm_card_mastercard",
        brand: "mastercard",
        funding: "credit",
        country: "US",
        behavior: Behavior::Succeeds,
    },
    TestCard {
        number: "4000000000000002",
        test_id: "pm_card_chargeDeclined",
        brand: "visa",
        funding: "credit",
        country: "US",
        behavior: Behavior::Declined("generic_decline"),
    },
    TestCard {
        number: "4000000000009995",
        test_id: "pm_card_chargeDeclinedInsufficientFunds",
        brand: "visa",
        funding: "credit",
        country: "US",
        behavior: Behavior::Declined("insufficient_funds"),
    },
    TestCard {
        number: "4000000000000341",
        test_id: "pm_card_chargeCustomerFail",
        brand: "visa",
        funding: "credit",
        country: "US",
        behavior: Behavior::ChargesFail,
    },
    TestCard {
        number: "4000002500003155",
        test_id: "pm_card_authenticationRequired",
        brand: "visa",
        funding: "credit",
        country: "US",
        behavior: Behavior::RequiresAuthentication,
    },
    TestCard {
        number: "4000000000000259",
        test_id: "pm_card_createDispute",
        brand: "visa",
        funding: "credit",
        country: "US",
        behavior: Behavior::Disputed,
    },
];

/// A card by number (spaces allowed) or test id.
pub fn test_card(number_or_id: &str) -> Option<&'static TestCard> {
    let digits: String = number_or_id
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    CARDS
        .iter()
        .find(|c| c.number == digits || c.test_id == number_or_id)
}

/// Any other number that passes the Luhn check behaves like 4242: Stripe's test mode
/// accepts "any valid card number".
pub fn luhn_valid(number: &str) -> bool {
    let digits: Vec<u32> = number
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_digit(10))
        .collect::<Option<_>>()
        .unwrap_or_default();
    if !(12..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

pub fn brand_of(number: &str) -> &'static str {
    match number.chars().next() {
        Some('4') => "visa",
        Some('5') | Some('2') => "mastercard",
        Some('3') => "amex",
        Some('6') => "discover",
        _ => "unknown",
    }
}

/// A payment method object for a card. `number` has been checked by the caller.
pub fn card_payment_method(number: &str, exp_month: i64, exp_year: i64, billing: Value) -> Value {
    let known = test_card(number);
    let digits: String = number.chars().filter(|c| !c.is_whitespace()).collect();
    let last4 = &digits[digits.len() - 4..];
    json!({
        "id": new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": billing,
        "card": {
            "brand": known.map(|c| c.brand).unwrap_or_else(|| brand_of(&digits)),
            "checks": { "address_line1_check": null, "address_postal_code_check": null, "cvc_check": "pass" },
            "country": known.map(|c| c.country).unwrap_or("US"),
            "display_brand": known.map(|c| c.brand).unwrap_or_else(|| brand_of(&digits)),
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": &new_id("fp")[3..19],
            "funding": known.map(|c| c.funding).unwrap_or("credit"),
            "last4": last4,
            "networks": { "available": [known.map(|c| c.brand).unwrap_or_else(|| brand_of(&digits))], "preferred": null },
            "three_d_secure_usage": { "supported": true },
            "wallet": null,
        },
        "created": now(),
        "customer": null,
        "livemode": false,
        "metadata": {},
        "type": "card",
        // Not a Stripe field: how this card behaves in the sandbox.
        "sandbox_card": digits,
    })
}

pub fn blank_billing() -> Value {
    json!({ "address": { "city": null, "country": null, "line1": null, "line2": null, "postal_code": null, "state": null },
            "email": null, "name": null, "phone": null, "tax_id": null })
}

/// How a stored payment method's card behaves.
pub fn behavior_of(pm: &Value) -> Behavior {
    pm["sandbox_card"]
        .as_str()
        .and_then(test_card)
        .map(|c| c.behavior)
        .unwrap_or(Behavior::Succeeds)
}

pub fn check_expiry(month: i64, year: i64) -> Result<(), StripeError> {
    let today = time::OffsetDateTime::now_utc();
    let (y, m) = (i64::from(today.year()), i64::from(u8::from(today.month())));
    if !(1..=12).contains(&month) {
        return Err(StripeError {
            code: Some("invalid_expiry_month"),
            ..StripeError::invalid(
                "card[exp_month]",
                "Your card's expiration month is invalid.",
            )
        });
    }
    if year < y || (year == y && month < m) || year > y + 50 {
        return Err(StripeError {
            code: Some("invalid_expiry_year"),
            ..StripeError::invalid("card[exp_year]", "Your card's expiration year is invalid.")
        });
    }
    Ok(())
}

/// A new payment method made from a test card (expiring in three years), as Stripe makes
/// one each time a test id such as `pm_card_visa` is used.
pub fn fresh_from_test_card(card: &TestCard) -> Value {
    card_payment_method(
        card.number,
        12,
        i64::from(time::OffsetDateTime::now_utc().year()) + 3,
        blank_billing(),
    )
}

/// What retrieving a test id shows: the card it stands for, under the test id itself.
pub fn test_card_template(card: &TestCard) -> Value {
    let mut pm = fresh_from_test_card(card);
    pm["id"] = json!(card.test_id);
    pm
}

/// The test card a `pm_card_*` id names, if `id` is one.
pub fn test_id(id: &str) -> Option<&'static TestCard> {
    test_card(id).filter(|_| id.starts_with("pm_card_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cards_by_number_or_test_id() {
        assert_eq!(
            test_card("4242 4242 4242 4242").map(|c| c.test_id),
            Some("pm_card_visa")
        );
        assert_eq!(
            test_card("pm_card_chargeDeclined").map(|c| c.behavior),
            Some(Behavior::Declined("generic_decline"))
        );
        assert_eq!(
            test_card("4000000000000341").map(|c| c.test_id),
            Some("pm_card_chargeCustomerFail")
        );
        assert_eq!(
            test_card("pm_card_visa").map(|c| c.grouped()).as_deref(),
            Some("4242 4242 4242 4242")
        );
        assert_eq!(
            test_card("4000000000009995").map(|c| c.behavior.describe()),
            Some("declined: insufficient funds")
        );
        assert!(test_card("1234").is_none());
    }

    #[test]
    fn luhn() {
        assert!(CARDS.iter().all(|c| luhn_valid(c.number)));
        assert!(luhn_valid("4012 8888 8888 1881"));
        assert!(!luhn_valid("4242424242424241"));
        assert!(!luhn_valid("42424242"));
        assert!(!luhn_valid("4242abcd42424242"));
    }
}
