//! The demo catalog for sandbox mode, so a fresh checkout of the app never shows an empty
//! pricing page. With a real Stripe key the catalog comes from Stripe alone.

use crate::stripe::Stripe;
use stripe_product::{
    price::{CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval},
    product::{CreateProduct, Features, ListProduct, RetrieveProduct},
};

struct DemoPlan {
    key: &'static str,
    /// Reports included each month, the price of each one more (cents), the monthly cap, and
    /// whether the cap is soft (usage past it is billed).
    reports: (i64, i64, i64, bool),
    name: &'static str,
    description: &'static str,
    features: &'static [&'static str],
    highlighted: bool,
    monthly: i64,
    yearly: i64,
}

const PLANS: &[DemoPlan] = &[
    DemoPlan {
        key: "starter",
        reports: (100, 10, 200, false),
        name: "Starter",
        description: "For side projects and trying things out.",
        features: &["1 project", "1,000 API calls / month", "Email support"],
        highlighted: false,
        monthly: 900,
        yearly: 9000,
    },
    DemoPlan {
        key: "pro",
        reports: (1_000, 5, 5_000, false),
        name: "Pro",
        description: "For professionals shipping real products.",
        features: &[
            "10 projects",
            "50,000 API calls / month",
            "Priority email support",
            "Usage analytics",
        ],
        highlighted: true,
        monthly: 2900,
        yearly: 29000,
    },
    DemoPlan {
        key: "team",
        reports: (10_000, 2, 20_000, true),
        name: "Team",
        description: "For teams that need room to grow.",
        features: &[
            "Unlimited projects",
            "500,000 API calls / month",
            "Shared workspaces",
            "Phone support",
        ],
        highlighted: false,
        monthly: 9900,
        yearly: 99000,
    },
];

/// The event the "Reports" meter counts: each report run reports one.
pub const REPORT_EVENT: &str = "report_run";

/// The demo's product sold once, with a license key.
const LIFETIME: (&str, &str, &str, i64) = (
    "prod_desktop_lifetime",
    "Desktop app",
    "A lifetime license for the desktop app: pay once, use it for good.",
    4900,
);

/// Creates the demo catalog in the sandbox through the Stripe API, as a merchant would in
/// Stripe's dashboard, when the sandbox account has no products yet. The app then learns it
/// like any catalog: from the sync and the `product.*` / `price.*` webhooks. Ids and
/// idempotency keys are fixed, so instances starting together create it once.
pub async fn seed_sandbox_catalog(stripe: &Stripe) -> Result<(), stripe::StripeError> {
    if stripe
        .get(&ListProduct::new().limit(1))
        .await?
        .data
        .is_empty()
    {
        seed_plans(stripe).await?;
    }
    // Installations seeded before licenses, metering and the promotion existed get them too.
    seed_lifetime_license(stripe).await?;
    seed_promotion(stripe).await?;
    seed_usage(stripe).await
}

/// The code a customer types on the demo's hosted Checkout: 20% off the first payment.
pub const DEMO_PROMOTION_CODE: &str = "LAUNCH20";

/// A coupon and its customer-facing promotion code, so the demo shows a discount end to end.
async fn seed_promotion(stripe: &Stripe) -> Result<(), stripe::StripeError> {
    use stripe_product::{
        coupon::{CreateCoupon, RetrieveCoupon},
        promotion_code::{
            CreatePromotionCode, CreatePromotionCodePromotion, CreatePromotionCodePromotionType,
            ListPromotionCode,
        },
    };
    let coupon = "launch-20";
    match stripe.get(&RetrieveCoupon::new(coupon)).await {
        Ok(_) => {}
        Err(stripe::StripeError::Stripe(_, 404)) => {
            let create = CreateCoupon::new()
                .id(coupon)
                .name("Launch offer")
                .percent_off(20.0)
                .duration(stripe_shared::CouponDuration::Once);
            stripe.post(&create, "seed-coupon-launch-20").await?;
        }
        Err(e) => return Err(e),
    }
    let existing = stripe
        .get(&ListPromotionCode::new().code(DEMO_PROMOTION_CODE).limit(1))
        .await?;
    if existing.data.is_empty() {
        let promotion = CreatePromotionCodePromotion {
            coupon: Some(coupon.to_owned()),
            ..CreatePromotionCodePromotion::new(CreatePromotionCodePromotionType::Coupon)
        };
        let create = CreatePromotionCode::new(promotion).code(DEMO_PROMOTION_CODE);
        stripe.post(&create, "seed-promotion-code-launch20").await?;
    }
    Ok(())
}

/// The "Reports" meter and, for each plan and billing period, a metered price: the plan's
/// reports included, then a price per report, with the plan's cap in the price's metadata.
async fn seed_usage(stripe: &Stripe) -> Result<(), stripe::StripeError> {
    use stripe_billing::billing_meter::{
        CreateBillingMeter, CreateBillingMeterDefaultAggregation,
        CreateBillingMeterDefaultAggregationFormula, ListBillingMeter,
    };
    use stripe_product::price::{
        CreatePriceRecurringUsageType, CreatePriceTiers, CreatePriceTiersUpTo, ListPrice,
    };
    use stripe_shared::{PriceBillingScheme, PriceTiersMode};
    let meters = stripe.get(&ListBillingMeter::new().limit(100)).await?.data;
    let meter = match meters.into_iter().find(|m| m.event_name == REPORT_EVENT) {
        Some(m) => m.id.as_str().to_owned(),
        None => {
            let create = CreateBillingMeter::new(
                CreateBillingMeterDefaultAggregation::new(
                    CreateBillingMeterDefaultAggregationFormula::Sum,
                ),
                "Reports",
                REPORT_EVENT,
            );
            let made = stripe.post(&create, "seed-meter-reports").await?;
            made.id.as_str().to_owned()
        }
    };
    for plan in PLANS {
        let (included, each, cap, soft) = plan.reports;
        for (interval, periods) in [
            (CreatePriceRecurringInterval::Month, 1),
            (CreatePriceRecurringInterval::Year, 12),
        ] {
            let lookup_key = format!("{}_{}ly_reports", plan.key, interval.as_str());
            let known = stripe
                .get(&ListPrice::new().lookup_keys(vec![lookup_key.clone()]))
                .await?;
            if !known.data.is_empty() {
                continue;
            }
            let mut recurring = CreatePriceRecurring::new(interval);
            recurring.usage_type = Some(CreatePriceRecurringUsageType::Metered);
            recurring.meter = Some(meter.clone());
            let mut metadata = vec![("report_limit".to_owned(), (cap * periods).to_string())];
            if soft {
                metadata.push(("report_overage".to_owned(), "true".to_owned()));
            }
            let included = CreatePriceTiers {
                unit_amount: Some(0),
                ..CreatePriceTiers::new(CreatePriceTiersUpTo::I64(included * periods))
            };
            let beyond = CreatePriceTiers {
                unit_amount: Some(each),
                ..CreatePriceTiers::new(CreatePriceTiersUpTo::Inf)
            };
            let create = CreatePrice::new(stripe_types::Currency::USD)
                .product(format!("prod_{}", plan.key))
                .nickname("Reports")
                .recurring(recurring)
                .billing_scheme(PriceBillingScheme::Tiered)
                .tiers_mode(PriceTiersMode::Graduated)
                .tiers(vec![included, beyond])
                .lookup_key(lookup_key.clone())
                .metadata(
                    metadata
                        .into_iter()
                        .collect::<std::collections::HashMap<_, _>>(),
                );
            stripe
                .post(&create, &format!("seed-price-{lookup_key}"))
                .await?;
        }
    }
    Ok(())
}

async fn seed_plans(stripe: &Stripe) -> Result<(), stripe::StripeError> {
    for (order, plan) in PLANS.iter().enumerate() {
        let product_id = format!("prod_{}", plan.key);
        let create = CreateProduct::new(plan.name)
            .id(product_id.clone())
            .description(plan.description)
            .marketing_features(
                plan.features
                    .iter()
                    .map(|f| Features::new(*f))
                    .collect::<Vec<_>>(),
            )
            .metadata([
                ("pricing_page".to_owned(), "true".to_owned()),
                ("highlight".to_owned(), plan.highlighted.to_string()),
                ("sort_order".to_owned(), order.to_string()),
            ]);
        stripe
            .post(&create, &format!("seed-product-{}", plan.key))
            .await?;
        for (interval, amount) in [
            (CreatePriceRecurringInterval::Month, plan.monthly),
            (CreatePriceRecurringInterval::Year, plan.yearly),
        ] {
            let lookup_key = format!("{}_{}ly", plan.key, interval.as_str());
            let create = CreatePrice::new(stripe_types::Currency::USD)
                .product(product_id.clone())
                .unit_amount(amount)
                .recurring(CreatePriceRecurring::new(interval))
                .lookup_key(lookup_key.clone());
            stripe
                .post(&create, &format!("seed-price-{lookup_key}"))
                .await?;
        }
    }
    tracing::info!("seeded the demo catalog into the sandbox");
    Ok(())
}

/// "Desktop app": a one-time price, a perpetual license on up to three machines.
async fn seed_lifetime_license(stripe: &Stripe) -> Result<(), stripe::StripeError> {
    let (id, name, description, amount) = LIFETIME;
    match stripe.get(&RetrieveProduct::new(id)).await {
        Ok(_) => return Ok(()),
        Err(stripe::StripeError::Stripe(_, 404)) => {}
        Err(e) => return Err(e),
    }
    let create = CreateProduct::new(name)
        .id(id)
        .description(description)
        .marketing_features(vec![
            Features::new("Every 1.x update"),
            Features::new("Works offline"),
        ])
        .metadata([
            ("pricing_page".to_owned(), "true".to_owned()),
            ("license".to_owned(), "perpetual".to_owned()),
            ("max_activations".to_owned(), "3".to_owned()),
        ]);
    stripe
        .post(&create, "seed-product-desktop-lifetime")
        .await?;
    let create = CreatePrice::new(stripe_types::Currency::USD)
        .product(id)
        .unit_amount(amount)
        .lookup_key("desktop_lifetime");
    stripe.post(&create, "seed-price-desktop-lifetime").await?;
    Ok(())
}
