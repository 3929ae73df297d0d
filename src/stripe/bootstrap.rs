//! What the app does with Stripe once it is listening: in sandbox mode, register its own
//! webhook endpoint and seed the demo catalog; in every mode, sync the catalog.

use super::Stripe;
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
    sqlx::query("insert into app_settings (name, value) values ('sandbox_secret_key', $1) on conflict (name) do nothing")
        .bind(&fresh)
        .execute(db)
        .await?;
    sqlx::query_scalar("select value from app_settings where name = 'sandbox_secret_key'")
        .fetch_one(db)
        .await
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
    let (products, prices) = catalog::sync::sync_catalog(&state.stripe, &state.db)
        .await
        .map_err(|e| AppError::internal(format!("catalog sync: {e}")))?;
    tracing::info!(products, prices, "catalog synced from Stripe");
    if state.config.stripe_mode == StripeMode::Sandbox {
        let back = format!(
            "{}/settings/billing",
            state.config.app_url.as_str().trim_end_matches('/')
        );
        let id = crate::billing::portal::configure_portal(&state.stripe, &state.db, &back).await?;
        tracing::info!(configuration = %id, "customer portal configured");
    }
    lock.commit().await?;
    Ok(())
}

/// Registers (or re-points) the app's endpoint in the sandbox and returns its signing
/// secret. The secret is only shown when an endpoint is created, so it is kept in
/// `app_settings`; if it was lost, the endpoint is recreated.
async fn ensure_sandbox_endpoint(
    stripe: &Stripe,
    db: &PgPool,
    url: &str,
) -> Result<SecretString, AppError> {
    let stored: Vec<(String, String)> = sqlx::query_as(
        "select name, value from app_settings where name in ('sandbox_webhook_endpoint', 'sandbox_webhook_secret')",
    )
    .fetch_all(db)
    .await?;
    let get = |n: &str| {
        stored
            .iter()
            .find(|(name, _)| name == n)
            .map(|(_, v)| v.clone())
    };
    if let (Some(id), Some(secret)) = (
        get("sandbox_webhook_endpoint"),
        get("sandbox_webhook_secret"),
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
    sqlx::query(
        "insert into app_settings (name, value) values ('sandbox_webhook_endpoint', $1), ('sandbox_webhook_secret', $2)
         on conflict (name) do update set value = excluded.value, updated_at = now()",
    )
    .bind(endpoint.id.as_str())
    .bind(&secret)
    .execute(db)
    .await?;
    Ok(SecretString::from(secret))
}
