//! What a subscription entitles its user to, as a pure function of the subscription and the
//! time. Every page and API asks this, never the raw status.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionState {
    pub status: String,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub past_due_since: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entitlement {
    /// Full access.
    Full,
    /// A payment failed: access continues until `until` (the grace period) while the card
    /// is retried or updated.
    Grace {
        until: i64,
    },
    None,
}

impl Entitlement {
    pub fn has_access(self) -> bool {
        !matches!(self, Self::None)
    }
}

/// Until when `sub` gives access if nothing about it changes (unix seconds, exclusive;
/// `i64::MAX` for open-ended), or `None` when it gives none. The one rule: [`entitlement`]
/// reads it at a given time, and the metering stores it (`subscriptions.access_until`) so
/// its one statement can check access without the rule in SQL.
pub fn access_until(sub: &SubscriptionState, grace_secs: i64) -> Option<i64> {
    match sub.status.as_str() {
        // Cancelled at period end: access runs out with the period, not before.
        "active" | "trialing" => match (sub.cancel_at_period_end, sub.current_period_end) {
            (true, Some(end)) => Some(end),
            _ => Some(i64::MAX),
        },
        // A failed payment: the grace period from the first failure.
        "past_due" => sub
            .past_due_since
            .map(|since| since.saturating_add(grace_secs)),
        // canceled, unpaid, incomplete, incomplete_expired, paused, and anything new.
        _ => None,
    }
}

pub fn entitlement(sub: &SubscriptionState, now: i64, grace_secs: i64) -> Entitlement {
    match access_until(sub, grace_secs) {
        Some(until) if now < until && sub.status == "past_due" => Entitlement::Grace { until },
        Some(until) if now < until => Entitlement::Full,
        _ => Entitlement::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn sub(status: &str) -> SubscriptionState {
        SubscriptionState {
            status: status.into(),
            current_period_end: Some(100 * DAY),
            cancel_at_period_end: false,
            past_due_since: None,
        }
    }

    #[test]
    fn the_entitlement_table() {
        let now = 50 * DAY;
        assert_eq!(entitlement(&sub("active"), now, 3 * DAY), Entitlement::Full);
        assert_eq!(
            entitlement(&sub("trialing"), now, 3 * DAY),
            Entitlement::Full
        );
        for none in [
            "canceled",
            "unpaid",
            "incomplete",
            "incomplete_expired",
            "paused",
            "something_new",
        ] {
            assert_eq!(
                entitlement(&sub(none), now, 3 * DAY),
                Entitlement::None,
                "{none}"
            );
        }
    }

    #[test]
    fn cancel_at_period_end_keeps_access_until_the_period_ends() {
        let ending = SubscriptionState {
            cancel_at_period_end: true,
            ..sub("active")
        };
        assert_eq!(entitlement(&ending, 100 * DAY - 1, 0), Entitlement::Full);
        assert_eq!(entitlement(&ending, 100 * DAY, 0), Entitlement::None);
    }

    #[test]
    fn past_due_keeps_access_for_the_grace_period_only() {
        let failing = SubscriptionState {
            past_due_since: Some(10 * DAY),
            ..sub("past_due")
        };
        assert_eq!(
            entitlement(&failing, 12 * DAY, 3 * DAY),
            Entitlement::Grace { until: 13 * DAY }
        );
        assert_eq!(entitlement(&failing, 13 * DAY, 3 * DAY), Entitlement::None);
        assert!(
            !entitlement(&sub("past_due"), 0, 3 * DAY).has_access(),
            "no recorded start: no grace"
        );
    }
}
