//! Opening a Checkout Session, one user at a time: for a subscription (whoever already has
//! access goes to billing settings instead; the free trial is given once per user) or for a
//! one-time purchase. A new session expires the user's older open ones, so two tabs can never
//! both be completed.

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
    CreateCheckoutSessionInvoiceCreation, CreateCheckoutSessionLineItems,
    CreateCheckoutSessionPaymentIntentData, CreateCheckoutSessionSubscriptionData,
    ExpireCheckoutSession, ListCheckoutSession,
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
    confirmed_email(state, user).await?;
    let lease = lease_checkout(state, user).await?;
    if crate::subscriptions::has_access(state, user.id).await? {
        return Ok("/settings/billing".to_owned());
    }
    let customer = customer_of(state, user).await?;
    expire_open_sessions(state, user, &customer).await?;
    let trial = crate::subscriptions::trial_left(&state.db, &state.config, user.id)
        .await?
        .then_some(state.config.trial_days);
    let user_meta = [("user_id".to_owned(), user.id.to_string())];
    let mut items = vec![one_of(price_id)];
    // The plan's usage rides along as a metered item (no quantity: the meter says).
    if let Some(metered) = repo::metered_companion(&state.db, price_id).await? {
        items.push(CreateCheckoutSessionLineItems {
            price: Some(metered),
            ..CreateCheckoutSessionLineItems::new()
        });
    }
    let create = hosted_checkout(state, customer, items)
        .mode(stripe_shared::CheckoutSessionMode::Subscription)
        .subscription_data(CreateCheckoutSessionSubscriptionData {
            trial_period_days: trial,
            metadata: Some(user_meta.clone().into()),
            ..CreateCheckoutSessionSubscriptionData::new()
        })
        .metadata(user_meta);
    open_session(state, lease, user, price_id, &create).await
}

/// A one-time purchase of a licensed product: Stripe's hosted page in payment mode, with a
/// receipt (an invoice) and the user and product named in the session, so the webhook can
/// create the order and the license.
pub async fn purchase(state: &AppState, user: &User, price_id: &str) -> Result<String, AppError> {
    let Some(product_id) = repo::licensed_price_on_sale(&state.db, price_id).await? else {
        return Err(AppError::BadRequest(Message::PlanUnavailable));
    };
    confirmed_email(state, user).await?;
    let lease = lease_checkout(state, user).await?;
    let customer = customer_of(state, user).await?;
    expire_open_sessions(state, user, &customer).await?;
    let meta = std::collections::HashMap::from([
        ("user_id".to_owned(), user.id.to_string()),
        ("product_id".to_owned(), product_id),
        ("price_id".to_owned(), price_id.to_owned()),
    ]);
    let create = hosted_checkout(state, customer, vec![one_of(price_id)])
        .mode(stripe_shared::CheckoutSessionMode::Payment)
        .invoice_creation(CreateCheckoutSessionInvoiceCreation::new(true))
        .payment_intent_data(CreateCheckoutSessionPaymentIntentData {
            metadata: Some(meta.clone()),
            ..CreateCheckoutSessionPaymentIntentData::new()
        })
        .metadata(meta);
    open_session(state, lease, user, price_id, &create).await
}

/// Billing email must reach its owner: with real Stripe, a confirmed address first (a fresh
/// link goes out, and the answer says so).
async fn confirmed_email(state: &AppState, user: &User) -> Result<(), AppError> {
    if state.config.requires_confirmed_email() && user.email_verified_at.is_none() {
        crate::accounts::send_confirmation(&state.db, &state.config, user).await?;
        return Err(AppError::BadRequest(Message::ConfirmEmailFirst));
    }
    Ok(())
}

/// One checkout of this user's at a time, until its session is recorded: the checks made
/// under the lease and the session made after them cannot interleave with another tab's.
/// A lease rather than a lock in an open transaction: no pooled connection is held while
/// Stripe is called. Another tab's checkout is waited for, briefly.
async fn lease_checkout(state: &AppState, user: &User) -> Result<repo::CheckoutLease, AppError> {
    // Longer than any request may run (it is dropped, and the lease released, at the
    // timeout): a live holder never loses it.
    let ttl = state.config.request_timeout + std::time::Duration::from_secs(5);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(lease) = repo::try_lease(&state.db, user.id, ttl).await? {
            return Ok(lease);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(AppError::BadRequest(Message::CheckoutInProgress));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Expires the user's older open sessions, so two tabs can never both be completed: those
/// the app recorded, and those Stripe made whose answer never reached the app (the
/// connection dropped after the work was done, and every retry failed too).
async fn expire_open_sessions(
    state: &AppState,
    user: &User,
    customer: &str,
) -> Result<(), AppError> {
    let mut open = repo::open_sessions(&state.db, user.id).await?;
    let listed = state
        .stripe
        .get(
            &ListCheckoutSession::new()
                .customer(customer)
                .status(stripe_shared::CheckoutSessionStatus::Open)
                .limit(100),
        )
        .await?;
    for session in listed.data {
        let id = session.id.to_string();
        if !open.contains(&id) {
            open.push(id);
        }
    }
    for open in open {
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
        repo::close_session(&state.db, &open).await?;
    }
    Ok(())
}

async fn customer_of(state: &AppState, user: &User) -> Result<String, AppError> {
    let clocks =
        state.config.stripe_mode == StripeMode::Sandbox && state.config.sandbox_test_clocks;
    ensure_customer(&state.db, &state.stripe, user, clocks).await
}

/// One of `price`.
fn one_of(price_id: &str) -> CreateCheckoutSessionLineItems {
    CreateCheckoutSessionLineItems {
        price: Some(price_id.to_owned()),
        quantity: Some(1),
        ..CreateCheckoutSessionLineItems::new()
    }
}

/// What every Checkout of the app asks for: the items, tax, promotion codes, a billing
/// address kept on the customer, and the way back.
fn hosted_checkout(
    state: &AppState,
    customer: String,
    items: Vec<CreateCheckoutSessionLineItems>,
) -> CreateCheckoutSession {
    CreateCheckoutSession::new()
        .customer(customer)
        .line_items(items)
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
        .cancel_url(state.config.url("/pricing"))
}

/// Creates the session, records it under the user's lease, and returns its hosted URL.
async fn open_session(
    state: &AppState,
    lease: repo::CheckoutLease,
    user: &User,
    price_id: &str,
    create: &CreateCheckoutSession,
) -> Result<String, AppError> {
    // One key per click: a retry of this request reuses it, a new click makes a new session.
    let key = format!(
        "checkout-{}-{price_id}-{}",
        user.id,
        uuid::Uuid::new_v4().simple()
    );
    let session = state.stripe.post(create, &key).await?;
    repo::record_session(&state.db, session.id.as_str(), user.id).await?;
    drop(lease);
    session
        .url
        .ok_or_else(|| AppError::internal("checkout session without a url"))
}
