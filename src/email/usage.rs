//! Email about usage: the one warning a period gets when it passes 80% of its limit.

use super::message::Message;

pub fn nearing_limit(used: i64, limit: i64, overage: bool, dashboard: &str) -> Message {
    let after = if overage {
        "Past the limit, reports keep working and each one is billed with your next invoice."
    } else {
        "At the limit, reports stop until your next billing period starts."
    };
    Message {
        kind: "usage_warning",
        subject: "You have used 80% of this period's reports".to_owned(),
        paragraphs: vec![
            format!(
                "You have run {used} of the {limit} reports your plan allows this billing period."
            ),
            after.to_owned(),
            "Your dashboard shows your usage day by day and what the period costs so far."
                .to_owned(),
        ],
        link: Some(("See your usage", dashboard.to_owned())),
    }
}
