//! Stripe's test cards, by number and by their `pm_card_*` test ids, and how each behaves.

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
    pub fn last4(&self) -> &'static str {
        &self.number[self.number.len() - 4..]
    }

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
];

/// A card by number (spaces allowed) or test id.
pub fn find(number_or_id: &str) -> Option<&'static TestCard> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_cards_by_number_or_test_id() {
        assert_eq!(
            find("4242 4242 4242 4242").map(|c| c.test_id),
            Some("pm_card_visa")
        );
        assert_eq!(
            find("pm_card_chargeDeclined").map(|c| c.behavior),
            Some(Behavior::Declined("generic_decline"))
        );
        assert_eq!(find("4000000000000341").map(|c| c.last4()), Some("0341"));
        assert_eq!(
            find("pm_card_visa").map(|c| c.grouped()).as_deref(),
            Some("4242 4242 4242 4242")
        );
        assert_eq!(
            find("4000000000009995").map(|c| c.behavior.describe()),
            Some("declined: insufficient funds")
        );
        assert!(find("1234").is_none());
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
