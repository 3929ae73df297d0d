//! What the app does with Stripe once it is listening: in sandbox mode, register its own
//! webhook endpoint and seed the demo catalog; in every mode, sync the catalog.

use super::{
    installation::{self, Setting},
    Stripe,
};
use crate::{catalog, config::StripeMode, error::AppError, state::AppState};
use secrecy::SecretString;
use sqlx::PgPool;
use stripe_misc::webhook_endpoint::{
    CreateWebhookEndpoint, CreateWebhookEndpointEnabledEvents, RetrieveWebhookEndpoint,
    UpdateWebhookEndpoint,
};

/// Two instances starting together must not both register an endpoint.
const BOOTSTRAP_LOCK: i64 = 0x5AA5_B111;

/// The sandbox account this installation uses: one secret key, generated once and kept.
pub async fn sandbox_secret_key(db: &PgPool) -> sqlx::Result<String> {
    let fresh = format!("sk_test_{}", uuid::Uuid::new_v4().simple());
    installation::get_or_init(db, Setting::SandboxSecretKey, &fresh).await
}

pub async fn run(state: &AppState, webhook_url: &str) -> Result<(), AppError> {
    let mut lock = state.db.begin().await?;
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(BOOTSTRAP_LOCK)
        .execute(&mut *lock)
        .await?;
    if state.config.stripe_mode == StripeMode::Sandbox {
        let secret = ensure_sandbox_endpoint(&state.stripe, &state.db, webhook_url).await?;
        state.add_webhook_secret(secret);
        catalog::seed_sandbox_catalog(&state.stripe).await?;
    }
    crate::subscriptions::sync::refresh_missing_access(&state.db, state.config.grace_days).await?;
    let (products, prices) = catalog::sync::sync_catalog(&state.stripe, &state.db)
        .await
        .map_err(|e| AppError::internal(format!("catalog sync: {e}")))?;
    tracing::info!(products, prices, "catalog synced from Stripe");
    if state.config.stripe_mode == StripeMode::Sandbox {
        let back = state.config.url("/settings/billing");
        let id = crate::billing::portal::configure_portal(&state.stripe, &state.db, &back).await?;
        tracing::info!(configuration = %id, "customer portal configured");
    } else {
        self_check(state).await;
    }
    lock.commit().await?;
    Ok(())
}

/// With real Stripe: says (in the log, at start-up) what would keep events from arriving
/// in the shape the app reads, and what to run. The key already worked for the catalog.
async fn self_check(state: &AppState) {
    let url = state.config.url("/api/webhooks/stripe");
    // Stripe cannot reach this machine's own addresses: in local development events come
    // through `stripe listen`, and no endpoint at Stripe is expected.
    let local = match state.config.app_url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if local {
        tracing::info!(%url, "APP_URL is local: webhook events are expected through `stripe listen`");
        return;
    }
    match crate::webhooks::register::check(&state.stripe, &url).await {
        Ok(problems) if problems.is_empty() => {
            tracing::info!(%url, "webhook endpoint checked: enabled, every handled event, the app's API version");
        }
        Ok(problems) => {
            for problem in problems {
                tracing::warn!("{problem}");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not list webhook endpoints to check them (does the key allow it?)")
        }
    }
}

/// Registers (or re-points) the app's endpoint in the sandbox and returns its signing
/// secret. The secret is only shown when an endpoint is created, so it is kept in
/// `app_settings`; if it was lost, the endpoint is recreated.
async fn ensure_sandbox_endpoint(
    stripe: &Stripe,
    db: &PgPool,
    url: &str,
) -> Result<SecretString, AppError> {
    if let (Some(id), Some(secret)) = (
        installation::get(db, Setting::SandboxWebhookEndpoint).await?,
        installation::get(db, Setting::SandboxWebhookSecret).await?,
    ) {
        match stripe.get(&RetrieveWebhookEndpoint::new(id.as_str())).await {
            Ok(endpoint) if endpoint.url == url => return Ok(SecretString::from(secret)),
            Ok(_) => {
                // The app moved (another port): point the endpoint at it.
                stripe
                    .post(
                        &UpdateWebhookEndpoint::new(id.as_str()).url(url),
                        &format!("repoint-{id}-{url}"),
                    )
                    .await?;
                return Ok(SecretString::from(secret));
            }
            Err(stripe::StripeError::Stripe(_, 404)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let endpoint = stripe
        .post(
            &CreateWebhookEndpoint::new(vec![CreateWebhookEndpointEnabledEvents::All], url),
            &format!("app-endpoint-{}", uuid::Uuid::new_v4()),
        )
        .await?;
    let secret = endpoint
        .secret
        .ok_or_else(|| AppError::internal("the created endpoint came without a secret"))?;
    installation::set(
        db,
        &[
            (Setting::SandboxWebhookEndpoint, endpoint.id.as_str()),
            (Setting::SandboxWebhookSecret, secret.as_str()),
        ],
    )
    .await?;
    Ok(SecretString::from(secret))
}
