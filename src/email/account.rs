//! Email about the account itself: confirm the address, and "someone tried to sign up with
//! your address" (what a taken address gets instead of a second account).

use super::message::Message;

/// The link that confirms an address (single-use, for a day).
pub fn confirm_address(link: String) -> Message {
    Message {
        kind: "verify_email",
        subject: "Confirm your email address".to_owned(),
        paragraphs: vec![
            "Open this link to confirm this is your address. Billing email, receipts and license keys go only to confirmed addresses.".to_owned(),
            "The link works once, for 24 hours. If you did not sign up, ignore this email.".to_owned(),
        ],
        link: Some(("Confirm my email", link)),
    }
}

/// For the owner of an address someone used to sign up again.
pub fn address_taken(login_link: String) -> Message {
    Message {
        kind: "signup_address_taken",
        subject: "Someone tried to sign up with your email".to_owned(),
        paragraphs: vec![
            "Somebody tried to create an account with this email address, which already has one.".to_owned(),
            "If it was you, log in instead. If it was not, you need not do anything: nothing changed.".to_owned(),
        ],
        link: Some(("Log in", login_link)),
    }
}
