//! Email about licenses: the key after a purchase, and a word when a license stops working.

use super::message::Message;

/// After a one-time purchase: the key itself (the only email that carries it in full).
pub fn purchased(product: &str, key: &str, licenses_link: &str) -> Message {
    Message {
        kind: "license_purchased",
        subject: format!("Your {product} license key"),
        paragraphs: vec![
            format!("Thank you for buying {product}. Your license key is:"),
            key.to_owned(),
            "Enter it in the app to activate it. Your licenses, their activations and receipts are always on your licenses page.".to_owned(),
        ],
        link: Some(("See your licenses", licenses_link.to_owned())),
    }
}

/// A license revoked (`reason`: refunded, dispute lost).
pub fn revoked(product: &str, masked_key: &str, reason: &str, app_url: &str) -> Message {
    Message {
        kind: "license_revoked",
        subject: format!("Your {product} license was revoked"),
        paragraphs: vec![
            format!("Your {product} license ({masked_key}) was revoked: {reason}. It no longer activates or verifies."),
            "If you think this is a mistake, reply to this email.".to_owned(),
        ],
        link: Some(("See your licenses", format!("{app_url}/licenses"))),
    }
}

/// A license suspended (a disputed payment, or a subscription past its grace period).
pub fn suspended(product: &str, masked_key: &str, app_url: &str) -> Message {
    Message {
        kind: "license_suspended",
        subject: format!("Your {product} license is suspended"),
        paragraphs: vec![
            format!("Your {product} license ({masked_key}) is suspended until its payment is settled. It does not verify meanwhile."),
            "Once the payment is settled it works again by itself; you do not need a new key.".to_owned(),
        ],
        link: Some(("See your licenses", format!("{app_url}/licenses"))),
    }
}
