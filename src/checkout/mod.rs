//! Subscribing: the server function that sends the user to Stripe Checkout, and the success
//! page that grants nothing itself and waits for the webhook.

mod pages;
#[cfg(feature = "ssr")]
mod repo;
#[cfg(feature = "ssr")]
mod start;

pub use pages::CheckoutSuccessPage;

use crate::error::ApiError;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// Creates a Checkout Session for `price_id` and redirects to it. The user comes from the
/// session; the price must be one the app offers. Someone who already has access goes to
/// billing settings instead of buying a second subscription.
#[server(prefix = "/api", endpoint = "checkout")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn start_subscription_checkout(price_id: String) -> Result<(), ApiError> {
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    let next = start::subscription(&state, &user, &price_id).await?;
    leptos_axum::redirect(&next);
    Ok(())
}

/// Creates a Checkout Session in payment mode for `price_id` (a one-time price of a licensed
/// product the app offers) and redirects to it. The user comes from the session.
#[server(prefix = "/api", endpoint = "checkout/purchase")]
#[cfg_attr(feature = "ssr", tracing::instrument(skip_all, fields(user_id)))]
pub async fn start_purchase_checkout(price_id: String) -> Result<(), ApiError> {
    let state = crate::state::AppState::get()?;
    let user = crate::accounts::require_user(&state.db).await?;
    let next = start::purchase(&state, &user, &price_id).await?;
    leptos_axum::redirect(&next);
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CheckoutProgress {
    /// Paid or trial started at Stripe; our webhook has not stored it yet. Says whether a
    /// subscription or a purchase is on its way, so the page can name it.
    Finishing { subscription: bool },
    /// The subscription is stored; `trial_ends` (a date for people) when it began with a
    /// free trial.
    Done {
        product: String,
        trial_ends: Option<String>,
    },
    /// A one-time purchase, recorded: its license key, when the product has one.
    Purchased {
        product: String,
        key: Option<String>,
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
    if !(mine && complete) {
        return Ok(CheckoutProgress::NotFound);
    }
    if session.mode == stripe_shared::CheckoutSessionMode::Payment {
        let stored = repo::stored_purchase(&state.db, session.id.as_str())
            .await
            .map_err(crate::error::AppError::from)?;
        return Ok(match stored {
            Some((product, key)) => CheckoutProgress::Purchased {
                product: product.unwrap_or_else(|| "your purchase".into()),
                key,
            },
            None => CheckoutProgress::Finishing {
                subscription: false,
            },
        });
    }
    let Some(subscription) = session
        .subscription
        .as_ref()
        .map(|s| s.id().as_str().to_owned())
    else {
        return Ok(CheckoutProgress::NotFound);
    };
    let stored = repo::stored_subscription_product(&state.db, &subscription)
        .await
        .map_err(crate::error::AppError::from)?;
    Ok(match stored {
        Some((product, trial_end)) => CheckoutProgress::Done {
            product: product.unwrap_or_else(|| "your plan".into()),
            trial_ends: trial_end.map(crate::ui::format::long_date),
        },
        None => CheckoutProgress::Finishing { subscription: true },
    })
}
