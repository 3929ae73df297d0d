//! Subscribing: the server function that sends the user to Stripe Checkout, and the success
//! page that grants nothing itself and waits for the webhook.

mod pages;
#[cfg(feature = "ssr")]
mod repo;

pub use pages::CheckoutSuccessPage;

use crate::error::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Creates a Checkout Session for `price_id` and redirects to it. The user comes from the
/// session; the price must be on sale. Someone who already has access goes to billing
/// settings instead of buying a second subscription.
#[server(prefix = "/api", endpoint = "checkout")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn start_subscription_checkout(price_id: String) -> Result<(), ApiError> {
    use crate::{billing::customer::ensure_customer, error::AppError};
    use stripe_checkout::checkout_session::{
        CreateCheckoutSession, CreateCheckoutSessionAutomaticTax,
        CreateCheckoutSessionCustomerUpdate, CreateCheckoutSessionCustomerUpdateAddress,
        CreateCheckoutSessionCustomerUpdateName, CreateCheckoutSessionLineItems,
        CreateCheckoutSessionSubscriptionData,
    };
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    if !repo::recurring_price_on_sale(&state.db, &price_id)
        .await
        .map_err(AppError::from)?
    {
        return Err(AppError::BadRequest("That plan is not available.".into()).into());
    }
    if crate::subscriptions::has_access(&state.db, user.id, state.config.grace_days).await? {
        leptos_axum::redirect("/settings/billing");
        return Ok(());
    }
    let clocks = state.config.stripe_mode == crate::config::StripeMode::Sandbox
        && state.config.sandbox_test_clocks;
    let customer = ensure_customer(&state.db, &state.stripe, &user, clocks).await?;
    let user_meta = [("user_id".to_owned(), user.id.to_string())];
    let create = CreateCheckoutSession::new()
        .mode(stripe_shared::CheckoutSessionMode::Subscription)
        .customer(customer)
        .line_items(vec![CreateCheckoutSessionLineItems {
            price: Some(price_id.clone()),
            quantity: Some(1),
            ..CreateCheckoutSessionLineItems::new()
        }])
        .subscription_data(CreateCheckoutSessionSubscriptionData {
            trial_period_days: Some(state.config.trial_days),
            metadata: Some(user_meta.clone().into()),
            ..CreateCheckoutSessionSubscriptionData::new()
        })
        .metadata(user_meta)
        .automatic_tax(CreateCheckoutSessionAutomaticTax::new(true))
        .allow_promotion_codes(true)
        .billing_address_collection(
            stripe_shared::CheckoutSessionBillingAddressCollection::Required,
        )
        .customer_update(CreateCheckoutSessionCustomerUpdate {
            address: Some(CreateCheckoutSessionCustomerUpdateAddress::Auto),
            name: Some(CreateCheckoutSessionCustomerUpdateName::Auto),
            shipping: None,
        })
        .success_url(
            state
                .config
                .url("/checkout/success?session_id={CHECKOUT_SESSION_ID}"),
        )
        .cancel_url(state.config.url("/pricing"));
    // One key per click: a retry of this request reuses it, a new click makes a new session.
    let key = format!(
        "checkout-{}-{}-{}",
        user.id,
        price_id,
        uuid::Uuid::new_v4().simple()
    );
    let session = state
        .stripe
        .post(&create, &key)
        .await
        .map_err(AppError::from)?;
    let url = session
        .url
        .ok_or_else(|| AppError::internal("checkout session without a url"))?;
    leptos_axum::redirect(&url);
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckoutProgress {
    /// Paid or trial started at Stripe; our webhook has not stored it yet.
    Finishing,
    Done {
        product: String,
    },
    /// Unknown, someone else's, or not completed: all look the same.
    NotFound,
}

#[server(prefix = "/api", endpoint = "checkout/poll")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn poll_checkout(session_id: String) -> Result<CheckoutProgress, ApiError> {
    use stripe_checkout::checkout_session::RetrieveCheckoutSession;
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    if !session_id.starts_with("cs_") || session_id.len() > 255 {
        return Ok(CheckoutProgress::NotFound);
    }
    let Ok(session) = state
        .stripe
        .get(&RetrieveCheckoutSession::new(session_id.as_str()))
        .await
    else {
        return Ok(CheckoutProgress::NotFound);
    };
    let mine = session
        .metadata
        .as_ref()
        .and_then(|m| m.get("user_id"))
        .is_some_and(|u| *u == user.id.to_string());
    let complete = session
        .status
        .as_ref()
        .is_some_and(|s| s.as_str() == "complete");
    let Some(subscription) = session
        .subscription
        .as_ref()
        .map(|s| s.id().as_str().to_owned())
        .filter(|_| mine && complete)
    else {
        return Ok(CheckoutProgress::NotFound);
    };
    let stored = repo::stored_subscription_product(&state.db, &subscription)
        .await
        .map_err(crate::error::AppError::from)?;
    Ok(match stored {
        Some(product) => CheckoutProgress::Done {
            product: product.unwrap_or_else(|| "your plan".into()),
        },
        None => CheckoutProgress::Finishing,
    })
}
