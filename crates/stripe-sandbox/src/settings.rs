//! The sandbox's knobs: webhook retries, the chaos that reliability tests turn on, and what
//! a stranger may reach.

use std::time::Duration;

/// Which accounts may have webhooks delivered to loopback, private and link-local
/// addresses. Anything else would make the sandbox a port scanner of the network it runs in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PrivateWebhooks {
    /// None: every delivery goes to a public address (the safe default).
    #[default]
    Refused,
    /// Only the accounts of these secret keys (an app embedding the sandbox: its own account,
    /// delivering to itself on loopback).
    ForKeys(Vec<String>),
    /// Every account: a sandbox only reachable from this machine, where the developer's app
    /// listens on loopback too.
    Allowed,
}

/// What happens to a subscription once every retry of a failed renewal has failed: the
/// account setting Stripe keeps under Billing → Revenue recovery (not in the API).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AfterFailedRetries {
    /// Cancel the subscription (Stripe's default).
    #[default]
    Cancel,
    /// Mark it `unpaid`: the invoice stays open, no more attempts, no access.
    Unpaid,
    /// Leave it `past_due`.
    PastDue,
}

/// Delivery and chaos knobs, from the environment (all off or Stripe-like by default).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Waits between delivery attempts (`SANDBOX_WEBHOOK_RETRY_SECONDS`, comma-separated).
    pub retry_schedule: Vec<Duration>,
    pub delivery_timeout: Duration,
    pub poll_interval: Duration,
    /// Probability of delivering an event twice (`SANDBOX_CHAOS_DUPLICATE`).
    pub chaos_duplicate: f64,
    /// Delay before each delivery (`SANDBOX_CHAOS_DELAY_MS`).
    pub chaos_delay: Duration,
    /// Hold new deliveries this long, then send them newest first (`SANDBOX_CHAOS_REORDER_MS`):
    /// Stripe does not promise order, and this makes disorder happen on purpose.
    pub chaos_reorder: Duration,
    /// Probability that an API request fails with a 500, a 429 or a dropped connection
    /// (`SANDBOX_FAULT_RATE`).
    pub fault_rate: f64,
    /// The token the dashboard (events, clocks, resend) asks for (`SANDBOX_TOKEN`; random by
    /// default): printed at start-up, then kept in a cookie, like Jupyter's.
    pub dashboard_token: String,
    pub private_webhooks: PrivateWebhooks,
    /// When set, the hosted pages only send customers back to this origin
    /// (`scheme://host:port`): a sandbox inside an app must not be an open redirect on the
    /// app's own origin.
    pub redirect_origin: Option<String>,
    /// `SANDBOX_AFTER_FAILED_RETRIES`: `cancel`, `unpaid` or `past_due`.
    pub after_failed_retries: AfterFailedRetries,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            // Test mode retries for a few hours; so do we.
            retry_schedule: [60, 300, 1800, 3600, 7200]
                .map(Duration::from_secs)
                .to_vec(),
            delivery_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(250),
            chaos_duplicate: 0.0,
            chaos_delay: Duration::ZERO,
            chaos_reorder: Duration::ZERO,
            fault_rate: 0.0,
            dashboard_token: random_token(),
            private_webhooks: PrivateWebhooks::default(),
            redirect_origin: None,
            after_failed_retries: AfterFailedRetries::default(),
        }
    }
}

impl Settings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut s = Self::default();
        if let Some(raw) = get("SANDBOX_WEBHOOK_RETRY_SECONDS") {
            s.retry_schedule = raw
                .split(',')
                .map(|p| p.trim().parse::<f64>().map(Duration::from_secs_f64))
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    "SANDBOX_WEBHOOK_RETRY_SECONDS must be comma-separated seconds".to_owned()
                })?;
        }
        let probability = |name: &str| -> Result<f64, String> {
            match get(name) {
                None => Ok(0.0),
                Some(raw) => match raw.trim().parse::<f64>() {
                    Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
                    _ => Err(format!("{name} must be a probability between 0 and 1")),
                },
            }
        };
        s.chaos_duplicate = probability("SANDBOX_CHAOS_DUPLICATE")?;
        s.fault_rate = probability("SANDBOX_FAULT_RATE")?;
        if let Some(ms) = get("SANDBOX_CHAOS_REORDER_MS") {
            s.chaos_reorder = Duration::from_millis(
                ms.trim()
                    .parse()
                    .map_err(|_| "SANDBOX_CHAOS_REORDER_MS must be milliseconds")?,
            );
        }
        if let Some(token) = get("SANDBOX_TOKEN") {
            if token.len() < 16 {
                return Err("SANDBOX_TOKEN must be at least 16 characters".into());
            }
            s.dashboard_token = token;
        }
        if let Some(ms) = get("SANDBOX_CHAOS_DELAY_MS") {
            s.chaos_delay = Duration::from_millis(
                ms.trim()
                    .parse()
                    .map_err(|_| "SANDBOX_CHAOS_DELAY_MS must be milliseconds")?,
            );
        }
        if let Some(raw) = get("SANDBOX_AFTER_FAILED_RETRIES") {
            s.after_failed_retries = match raw.trim() {
                "cancel" => AfterFailedRetries::Cancel,
                "unpaid" => AfterFailedRetries::Unpaid,
                "past_due" => AfterFailedRetries::PastDue,
                _ => {
                    return Err(
                        "SANDBOX_AFTER_FAILED_RETRIES must be cancel, unpaid or past_due".into(),
                    )
                }
            };
        }
        Ok(s)
    }
}

/// 128 random bits, hex: a token nobody guesses.
fn random_token() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
