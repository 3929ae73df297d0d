//! The Customer Portal: its configuration, kept in code (`configure-portal`), and sessions
//! for the signed-in user's own customer only.

use crate::{
    error::AppError,
    stripe::{
        installation::{self, Setting},
        Stripe,
    },
};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use stripe_billing::billing_portal_configuration::{
    CreateBillingPortalConfiguration, CreateBillingPortalConfigurationBusinessProfile,
    CreateBillingPortalConfigurationFeatures,
    CreateBillingPortalConfigurationFeaturesSubscriptionCancel,
    CreateBillingPortalConfigurationFeaturesSubscriptionCancelCancellationReason,
    CreateBillingPortalConfigurationFeaturesSubscriptionCancelCancellationReasonOptions as Reason,
    CreateBillingPortalConfigurationFeaturesSubscriptionCancelMode,
    CreateBillingPortalConfigurationFeaturesSubscriptionUpdate,
    CreateBillingPortalConfigurationFeaturesSubscriptionUpdateDefaultAllowedUpdates,
    CreateBillingPortalConfigurationFeaturesSubscriptionUpdateProrationBehavior, InvoiceListParam,
    PaymentMethodUpdateParam, RetrieveBillingPortalConfiguration, SubscriptionUpdateProductParam,
};

const HEADLINE: &str = "saas-billing: manage your plan, card and invoices";

/// Creates the portal configuration the catalog calls for, or keeps the stored one if it
/// already matches: switching among the catalog's recurring prices with prorations,
/// cancelling at period end with reasons, card updates and invoice history. Stripe's
/// configurations are cheap and immutable enough in practice that "changed" means "new";
/// the id in use is stored in `app_settings`, never hard-coded. Returns that id.
pub async fn configure_portal(
    stripe: &Stripe,
    db: &PgPool,
    return_url: &str,
) -> Result<String, AppError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select product_id, id from prices where active and kind = 'recurring' and usage_type = 'licensed'
           and product_id in (select id from products where active and offered) order by product_id, id",
    )
    .fetch_all(db)
    .await?;
    let mut products: Vec<SubscriptionUpdateProductParam> = Vec::new();
    for (product, price) in &rows {
        match products.iter_mut().find(|p| &p.product == product) {
            Some(p) => p.prices.push(price.clone()),
            None => products.push(SubscriptionUpdateProductParam::new(
                vec![price.clone()],
                product.as_str(),
            )),
        }
    }
    let fingerprint = {
        let mut h = Sha256::new();
        h.update(format!("{HEADLINE}|{return_url}|{rows:?}"));
        hex::encode(h.finalize())
    };
    let stored = (
        installation::get(db, Setting::PortalConfigurationId).await?,
        installation::get(db, Setting::PortalConfigurationFingerprint).await?,
    );
    if let (Some(id), Some(fp)) = &stored {
        if *fp == fingerprint {
            match stripe
                .get(&RetrieveBillingPortalConfiguration::new(id.as_str()))
                .await
            {
                Ok(config) if config.active => return Ok(id.clone()),
                Ok(_) | Err(stripe::StripeError::Stripe(_, 404)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let mut features = CreateBillingPortalConfigurationFeatures::new();
    let mut update =
        CreateBillingPortalConfigurationFeaturesSubscriptionUpdate::new(!products.is_empty());
    update.default_allowed_updates = Some(vec![
        CreateBillingPortalConfigurationFeaturesSubscriptionUpdateDefaultAllowedUpdates::Price,
    ]);
    update.proration_behavior = Some(CreateBillingPortalConfigurationFeaturesSubscriptionUpdateProrationBehavior::CreateProrations);
    update.products = Some(products);
    features.subscription_update = Some(update);
    let mut cancel = CreateBillingPortalConfigurationFeaturesSubscriptionCancel::new(true);
    cancel.mode = Some(CreateBillingPortalConfigurationFeaturesSubscriptionCancelMode::AtPeriodEnd);
    cancel.cancellation_reason = Some(
        CreateBillingPortalConfigurationFeaturesSubscriptionCancelCancellationReason::new(
            true,
            vec![
                Reason::TooExpensive,
                Reason::MissingFeatures,
                Reason::SwitchedService,
                Reason::Unused,
                Reason::Other,
            ],
        ),
    );
    features.subscription_cancel = Some(cancel);
    features.payment_method_update = Some(PaymentMethodUpdateParam::new(true));
    features.invoice_history = Some(InvoiceListParam::new(true));
    let mut profile = CreateBillingPortalConfigurationBusinessProfile::new();
    profile.headline = Some(HEADLINE.into());
    let create = CreateBillingPortalConfiguration::new(features)
        .business_profile(profile)
        .default_return_url(return_url);
    let config = stripe
        .post(&create, &format!("portal-configuration-{fingerprint}"))
        .await?;
    installation::set(
        db,
        &[
            (Setting::PortalConfigurationId, config.id.as_str()),
            (
                Setting::PortalConfigurationFingerprint,
                fingerprint.as_str(),
            ),
        ],
    )
    .await?;
    Ok(config.id.as_str().to_owned())
}

/// A portal session for `customer` with our configuration.
pub async fn portal_url(
    stripe: &Stripe,
    db: &PgPool,
    customer: &str,
    return_url: &str,
) -> Result<String, AppError> {
    use stripe_billing::billing_portal_session::CreateBillingPortalSession;
    let configuration = installation::get(db, Setting::PortalConfigurationId).await?;
    let mut create = CreateBillingPortalSession::new()
        .customer(customer)
        .return_url(return_url);
    if let Some(id) = configuration {
        create = create.configuration(id);
    }
    let session = stripe
        .post(
            &create,
            &format!("portal-{customer}-{}", uuid::Uuid::new_v4().simple()),
        )
        .await?;
    Ok(session.url)
}
