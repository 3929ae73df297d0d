//! `saas-billing register-webhook`: the app's webhook endpoint at Stripe, made by command
//! rather than by Dashboard clicks, so that it always has exactly the events the route
//! handles and the API version the event types were generated for.

use crate::{error::AppError, stripe::Stripe};
use stripe_misc::webhook_endpoint::{
    CreateWebhookEndpoint, CreateWebhookEndpointEnabledEvents, DeleteWebhookEndpoint,
    ListWebhookEndpoint, UpdateWebhookEndpoint, UpdateWebhookEndpointEnabledEvents,
};
use stripe_misc::WebhookEndpoint;

/// Every event type the route acts on (`event::Object::decode`); a unit test there holds
/// the two together. Anything else would only be recorded and ignored.
pub const HANDLED_EVENTS: [&str; 43] = [
    "product.created",
    "product.updated",
    "product.deleted",
    "price.created",
    "price.updated",
    "price.deleted",
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "invoice.created",
    "invoice.finalized",
    "invoice.updated",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "invoice.voided",
    "invoice.marked_uncollectible",
    "payment_method.attached",
    "payment_method.updated",
    "payment_method.automatically_updated",
    "charge.refunded",
    "charge.refund.updated",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
    "billing.meter.created",
    "billing.meter.updated",
    "billing.meter.deactivated",
    "billing.meter.reactivated",
];

/// The version async-stripe's types were generated for: events rendered in any other may
/// not decode.
pub fn api_version() -> String {
    stripe_shared::version::VERSION.as_str().to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Create the endpoint, or bring the existing one up to date; never a second one.
    Ensure,
    /// A second endpoint for the same URL with a new secret, while the old one keeps
    /// delivering (the route verifies against every configured secret, and the ledger makes
    /// each event apply once whichever endpoint brings it).
    Rotate,
    /// Deletes every endpoint for the URL but the newest: the end of a rotation.
    FinishRotation,
}

#[derive(Debug)]
pub enum Registration {
    Created {
        id: String,
        secret: String,
    },
    Updated {
        id: String,
        what: Vec<&'static str>,
    },
    Unchanged {
        id: String,
    },
    Rotating {
        id: String,
        secret: String,
        older: Vec<String>,
    },
    RotationFinished {
        kept: String,
        deleted: Vec<String>,
    },
    /// Nothing is registered for the URL (`--finish-rotation` before any registration).
    Missing,
    /// An existing endpoint renders events in another API version (or is not pinned to
    /// one), which Stripe does not let anyone change: only a new endpoint (a rotation) does.
    WrongVersion {
        id: String,
        version: String,
    },
}

/// The account's endpoints for `url`, newest first.
async fn endpoints_for(stripe: &Stripe, url: &str) -> Result<Vec<WebhookEndpoint>, AppError> {
    // Stripe allows 16 endpoints per account: one page holds them all.
    let mut existing: Vec<WebhookEndpoint> = stripe
        .get(&ListWebhookEndpoint::new().limit(100))
        .await?
        .data
        .into_iter()
        .filter(|e| e.url == url)
        .collect();
    // As Stripe lists them; the stable sort keeps its order within a second.
    existing.sort_by_key(|e| std::cmp::Reverse(e.created));
    Ok(existing)
}

/// What is wrong with the endpoint for `url`, each with what to run; empty when nothing is.
/// The start-up self-check in test and live mode: it warns, it never stops the app.
pub async fn check(stripe: &Stripe, url: &str) -> Result<Vec<String>, AppError> {
    let Some(endpoint) = endpoints_for(stripe, url).await?.into_iter().next() else {
        return Ok(vec![format!(
            "no webhook endpoint at Stripe sends events to {url}: run `saas-billing register-webhook`"
        )]);
    };
    let id = &endpoint.id;
    let mut problems = Vec::new();
    if endpoint.status != "enabled" {
        problems.push(format!(
            "webhook endpoint {id} is {}: run `saas-billing register-webhook` to enable it",
            endpoint.status
        ));
    }
    let all = endpoint.enabled_events.iter().any(|e| e == "*");
    let missing: Vec<&str> = HANDLED_EVENTS
        .into_iter()
        .filter(|e| !all && !endpoint.enabled_events.iter().any(|have| have == e))
        .collect();
    if !missing.is_empty() {
        problems.push(format!(
            "webhook endpoint {id} does not send {} event types the app handles ({}): run `saas-billing register-webhook`",
            missing.len(),
            missing.join(", ")
        ));
    }
    let version = api_version();
    match &endpoint.api_version {
        Some(theirs) if *theirs != version => problems.push(format!(
            "webhook endpoint {id} renders events as API version {theirs}, the app reads {version}: run `saas-billing register-webhook --rotate`"
        )),
        // Unpinned: events come in the account's default version, which may be any.
        None => problems.push(format!(
            "webhook endpoint {id} is not pinned to an API version (the app reads {version}): run `saas-billing register-webhook --rotate`"
        )),
        Some(_) => {}
    }
    Ok(problems)
}

pub async fn register(stripe: &Stripe, url: &str, mode: Mode) -> Result<Registration, AppError> {
    let existing = endpoints_for(stripe, url).await?;
    // One key per run: a retried create can never make two.
    let run = uuid::Uuid::new_v4();
    match (mode, existing.first()) {
        (Mode::Ensure, None) => {
            let (id, secret) = create(stripe, url, &format!("register-webhook-{run}")).await?;
            Ok(Registration::Created { id, secret })
        }
        (Mode::Ensure, Some(newest)) => ensure(stripe, newest, &run).await,
        (Mode::Rotate, _) => {
            let (id, secret) = create(stripe, url, &format!("rotate-webhook-{run}")).await?;
            Ok(Registration::Rotating {
                id,
                secret,
                older: existing.iter().map(|e| e.id.to_string()).collect(),
            })
        }
        (Mode::FinishRotation, None) => Ok(Registration::Missing),
        (Mode::FinishRotation, Some(newest)) => {
            let kept = newest.id.to_string();
            let mut deleted = Vec::new();
            for old in &existing[1..] {
                stripe
                    .post(
                        &DeleteWebhookEndpoint::new(old.id.clone()),
                        &format!("finish-rotation-{}", old.id),
                    )
                    .await?;
                deleted.push(old.id.to_string());
            }
            Ok(Registration::RotationFinished { kept, deleted })
        }
    }
}

async fn create(stripe: &Stripe, url: &str, key: &str) -> Result<(String, String), AppError> {
    let events = HANDLED_EVENTS
        .iter()
        .map(|e| e.parse::<CreateWebhookEndpointEnabledEvents>())
        .collect::<Result<Vec<_>, _>>()
        .unwrap_or_else(|never| match never {});
    let created = stripe
        .post(
            &CreateWebhookEndpoint::new(events, url)
                .api_version(stripe_shared::version::VERSION)
                .description("saas-billing"),
            key,
        )
        .await?;
    let secret = created
        .secret
        .ok_or_else(|| AppError::internal("Stripe created the endpoint without a secret"))?;
    Ok((created.id.to_string(), secret))
}

/// Enabled again and listening to exactly [`HANDLED_EVENTS`].
async fn ensure(
    stripe: &Stripe,
    endpoint: &WebhookEndpoint,
    run: &uuid::Uuid,
) -> Result<Registration, AppError> {
    let id = endpoint.id.to_string();
    if endpoint.api_version.as_deref() != Some(api_version().as_str()) {
        return Ok(Registration::WrongVersion {
            id,
            version: endpoint
                .api_version
                .clone()
                .unwrap_or_else(|| "the account's default (not pinned)".into()),
        });
    }
    let mut what = Vec::new();
    let mut update = UpdateWebhookEndpoint::new(endpoint.id.clone());
    let mut listening: Vec<&str> = endpoint.enabled_events.iter().map(String::as_str).collect();
    listening.sort_unstable();
    let mut wanted = HANDLED_EVENTS.to_vec();
    wanted.sort_unstable();
    if listening != wanted {
        let events = HANDLED_EVENTS
            .iter()
            .map(|e| e.parse::<UpdateWebhookEndpointEnabledEvents>())
            .collect::<Result<Vec<_>, _>>()
            .unwrap_or_else(|never| match never {});
        update = update.enabled_events(events);
        what.push("enabled events");
    }
    if endpoint.status != "enabled" {
        update = update.disabled(false);
        what.push("enabled again");
    }
    if what.is_empty() {
        return Ok(Registration::Unchanged { id });
    }
    stripe
        .post(&update, &format!("update-webhook-{id}-{run}"))
        .await?;
    Ok(Registration::Updated { id, what })
}
