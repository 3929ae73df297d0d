//! Opening a Checkout Session for a subscription, one user at a time: whoever already has
//! access goes to billing settings instead; the free trial is given once per user; a new
//! session expires the user's older open ones, so two tabs can never both be completed.

use super::repo;
use crate::{
    accounts::User,
    billing::customer::ensure_customer,
    config::StripeMode,
    error::{AppError, Message},
    state::AppState,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionAutomaticTax, CreateCheckoutSessionCustomerUpdate,
    CreateCheckoutSessionCustomerUpdateAddress, CreateCheckoutSessionCustomerUpdateName,
    CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData, ExpireCheckoutSession,
};

/// Where to send the user next: Stripe's hosted page, or billing settings when they already
/// have access.
pub async fn subscription(
    state: &AppState,
    user: &User,
    price_id: &str,
) -> Result<String, AppError> {
    if !repo::recurring_price_on_sale(&state.db, price_id).await? {
        return Err(AppError::BadRequest(Message::PlanUnavailable));
    }
    if state.config.requires_confirmed_email() && user.email_verified_at.is_none() {
        // Billing email must reach its owner: a fresh link, and a clear word.
        crate::accounts::send_confirmation(&state.db, &state.config, user).await?;
        return Err(AppError::BadRequest(Message::ConfirmEmailFirst));
    }
    // One checkout of this user's at a time, until its session is recorded: the access
    // check below and the session made after it cannot interleave with another tab's.
    let mut lock = state.db.begin().await?;
    sqlx::query("select pg_advisory_xact_lock(hashtextextended('checkout:' || $1::text, 0))")
        .bind(user.id)
        .execute(&mut *lock)
        .await?;
    if crate::subscriptions::has_access(&state.db, user.id, state.config.grace_days).await? {
        return Ok("/settings/billing".to_owned());
    }
    for open in repo::open_sessions(&mut *lock, user.id).await? {
        // Completed or expired already: Stripe says so with a 4xx, and either way it is no
        // longer open.
        if let Err(e) = state
            .stripe
            .post(
                &ExpireCheckoutSession::new(open.as_str()),
                &format!("expire-{open}"),
            )
            .await
        {
            if !matches!(e, stripe::StripeError::Stripe(_, status) if (400..500).contains(&status))
            {
                return Err(e.into());
            }
        }
        repo::close_session(&mut *lock, &open).await?;
    }
    let clocks =
        state.config.stripe_mode == StripeMode::Sandbox && state.config.sandbox_test_clocks;
    let customer = ensure_customer(&state.db, &state.stripe, user, clocks).await?;
    let trial = crate::subscriptions::trial_left(&state.db, &state.config, user.id)
        .await?
        .then_some(state.config.trial_days);
    let user_meta = [("user_id".to_owned(), user.id.to_string())];
    let create = CreateCheckoutSession::new()
        .mode(stripe_shared::CheckoutSessionMode::Subscription)
        .customer(customer)
        .line_items(vec![CreateCheckoutSessionLineItems {
            price: Some(price_id.to_owned()),
            quantity: Some(1),
            ..CreateCheckoutSessionLineItems::new()
        }])
        .subscription_data(CreateCheckoutSessionSubscriptionData {
            trial_period_days: trial,
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
        "checkout-{}-{price_id}-{}",
        user.id,
        uuid::Uuid::new_v4().simple()
    );
    let session = state.stripe.post(&create, &key).await?;
    repo::record_session(&mut *lock, session.id.as_str(), user.id).await?;
    lock.commit().await?;
    session
        .url
        .ok_or_else(|| AppError::internal("checkout session without a url"))
}
