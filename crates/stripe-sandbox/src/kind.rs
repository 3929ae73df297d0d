//! The kinds of object the sandbox keeps, named as Stripe names them in `object`. The lower
//! layers own this list: what each kind is called, which events Stripe sends for it, and
//! which of its fields never leave the sandbox.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Charge,
    CheckoutSession,
    Coupon,
    Customer,
    Dispute,
    Invoice,
    Meter,
    PaymentIntent,
    PaymentMethod,
    PortalConfiguration,
    PortalSession,
    Price,
    Product,
    PromotionCode,
    Refund,
    Subscription,
    TestClock,
    WebhookEndpoint,
}

/// What happened to an object through the generic create, update and delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Deleted,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
        }
    }
}

impl Kind {
    /// Stripe's `object` value for this kind.
    pub const fn object(self) -> &'static str {
        match self {
            Self::Charge => "charge",
            Self::CheckoutSession => "checkout.session",
            Self::Coupon => "coupon",
            Self::Customer => "customer",
            Self::Dispute => "dispute",
            Self::Invoice => "invoice",
            Self::Meter => "billing.meter",
            Self::PaymentIntent => "payment_intent",
            Self::PaymentMethod => "payment_method",
            Self::PortalConfiguration => "billing_portal.configuration",
            Self::PortalSession => "billing_portal.session",
            Self::Price => "price",
            Self::Product => "product",
            Self::PromotionCode => "promotion_code",
            Self::Refund => "refund",
            Self::Subscription => "subscription",
            Self::TestClock => "test_helpers.test_clock",
            Self::WebhookEndpoint => "webhook_endpoint",
        }
    }

    /// The event Stripe sends when the generic API creates, updates or deletes an object of
    /// this kind, if any. Stripe sends none for webhook endpoints, and for payment methods
    /// only `.updated` (attach and detach have their own events).
    pub fn event(self, action: Action) -> Option<String> {
        if self == Self::Subscription {
            return Some(format!("customer.subscription.{}", action.as_str()));
        }
        if self == Self::Dispute {
            // Created and closed have events of their own (`engine::disputes`).
            return (action == Action::Updated).then(|| "charge.dispute.updated".to_owned());
        }
        let sent = match self {
            Self::Product | Self::Price | Self::Customer | Self::Coupon => true,
            // Deactivation and reactivation have events of their own (`api::meters`).
            Self::Meter => action != Action::Deleted,
            Self::PromotionCode | Self::PortalConfiguration => action != Action::Deleted,
            Self::TestClock | Self::PortalSession => action == Action::Created,
            Self::PaymentMethod => action == Action::Updated,
            _ => false,
        };
        sent.then(|| format!("{}.{}", self.object(), action.as_str()))
    }

    /// Fields the sandbox keeps for itself (which test card; what a session must remember)
    /// or that Stripe shows only once (a webhook endpoint's secret, on create). They never
    /// appear in responses or events.
    pub const fn private_fields(self) -> &'static [&'static str] {
        match self {
            Self::WebhookEndpoint => &["secret"],
            Self::PaymentMethod => &["sandbox_card"],
            Self::CheckoutSession | Self::Subscription | Self::PortalSession => &["sandbox"],
            _ => &[],
        }
    }

    /// Includable fields: left out of responses and events unless `expand[]` names them.
    pub const fn includable_fields(self) -> &'static [&'static str] {
        match self {
            Self::Invoice => &["payments"],
            Self::CheckoutSession => &["line_items"],
            Self::Price => &["tiers"],
            _ => &[],
        }
    }

    /// Stripe keeps a deleted object of this kind retrievable as `{"deleted": true}`.
    pub const fn leaves_a_stub(self) -> bool {
        matches!(self, Self::Customer)
    }

    const ALL: [Kind; 18] = [
        Self::Charge,
        Self::CheckoutSession,
        Self::Coupon,
        Self::Customer,
        Self::Dispute,
        Self::Invoice,
        Self::Meter,
        Self::PaymentIntent,
        Self::PaymentMethod,
        Self::PortalConfiguration,
        Self::PortalSession,
        Self::Price,
        Self::Product,
        Self::PromotionCode,
        Self::Refund,
        Self::Subscription,
        Self::TestClock,
        Self::WebhookEndpoint,
    ];

    pub fn from_object(object: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.object() == object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_follow_stripe() {
        assert_eq!(
            Kind::Subscription.event(Action::Created).as_deref(),
            Some("customer.subscription.created")
        );
        assert_eq!(
            Kind::Product.event(Action::Deleted).as_deref(),
            Some("product.deleted")
        );
        assert_eq!(Kind::PromotionCode.event(Action::Deleted), None);
        assert_eq!(Kind::WebhookEndpoint.event(Action::Created), None);
        assert_eq!(
            Kind::TestClock.event(Action::Created).as_deref(),
            Some("test_helpers.test_clock.created")
        );
    }

    #[test]
    fn every_kind_round_trips_through_its_object_name() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_object(kind.object()), Some(kind));
        }
        assert_eq!(Kind::from_object("plan"), None);
    }
}
