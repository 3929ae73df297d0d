//! What this installation keeps about its Stripe account in `app_settings`: values Stripe
//! shows once (a webhook secret) or that the app made for itself (its sandbox key, the
//! portal configuration in use). One name per setting, so no query spells them twice.

use sqlx::PgExecutor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// The sandbox account's secret key (sandbox mode), generated once.
    SandboxSecretKey,
    /// The id of the webhook endpoint the app registered in its sandbox.
    SandboxWebhookEndpoint,
    /// That endpoint's signing secret (shown by Stripe only when it is created).
    SandboxWebhookSecret,
    /// The Customer Portal configuration in use.
    PortalConfigurationId,
    /// What that configuration was made from, to tell whether it still matches the catalog.
    PortalConfigurationFingerprint,
}

impl Setting {
    pub const fn name(self) -> &'static str {
        match self {
            Self::SandboxSecretKey => "sandbox_secret_key",
            Self::SandboxWebhookEndpoint => "sandbox_webhook_endpoint",
            Self::SandboxWebhookSecret => "sandbox_webhook_secret",
            Self::PortalConfigurationId => "portal_configuration_id",
            Self::PortalConfigurationFingerprint => "portal_configuration_fingerprint",
        }
    }
}

pub async fn get(db: impl PgExecutor<'_>, setting: Setting) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select value from app_settings where name = $1")
        .bind(setting.name())
        .fetch_optional(db)
        .await
}

/// Sets several settings at once (in one statement, so together or not at all).
pub async fn set(db: impl PgExecutor<'_>, values: &[(Setting, &str)]) -> sqlx::Result<()> {
    let names: Vec<&str> = values.iter().map(|(s, _)| s.name()).collect();
    let values: Vec<&str> = values.iter().map(|(_, v)| *v).collect();
    sqlx::query(
        "insert into app_settings (name, value) select * from unnest($1::text[], $2::text[])
         on conflict (name) do update set value = excluded.value, updated_at = now()",
    )
    .bind(&names)
    .bind(&values)
    .execute(db)
    .await?;
    Ok(())
}

/// The setting's value; `fresh` is stored first when it has none (the first of several
/// instances starting at once wins, and all get its value).
pub async fn get_or_init(db: &sqlx::PgPool, setting: Setting, fresh: &str) -> sqlx::Result<String> {
    sqlx::query(
        "insert into app_settings (name, value) values ($1, $2) on conflict (name) do nothing",
    )
    .bind(setting.name())
    .bind(fresh)
    .execute(db)
    .await?;
    sqlx::query_scalar("select value from app_settings where name = $1")
        .bind(setting.name())
        .fetch_one(db)
        .await
}
