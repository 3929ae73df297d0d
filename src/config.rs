//! Typed configuration, read once at start-up from the environment (and `.env`).
//!
//! Parsing goes through a lookup function rather than `std::env` directly so the rules are
//! unit-testable without touching the process environment.

pub use crate::stripe::StripeMode;
use secrecy::{ExposeSecret, SecretString};
use std::{net::SocketAddr, time::Duration};
use url::Url;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is not set{1}")]
    Missing(&'static str, &'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the HTTP server listens (`HOST`, `PORT`).
    pub addr: SocketAddr,
    /// The public URL of the app (`APP_URL`), used for redirects back from Stripe.
    pub app_url: Url,
    pub database_url: SecretString,
    pub database_max_connections: u32,
    /// The folder holding `pkg/` (wasm, js, css) and the public assets (`LEPTOS_SITE_ROOT`).
    pub site_root: String,
    /// Whether the session cookie is `Secure`. Defaults to true when `APP_URL` is https.
    pub cookie_secure: bool,
    pub session_ttl: Duration,
    pub stripe_mode: StripeMode,
    pub stripe_secret_key: Option<SecretString>,
    /// Any Stripe-compatible server (`STRIPE_API_BASE`), e.g. a standalone sandbox.
    pub stripe_api_base: Option<Url>,
    /// Webhook signing secrets (`STRIPE_WEBHOOK_SECRET`, comma-separated while rotating).
    pub stripe_webhook_secrets: Vec<SecretString>,
    /// Login attempts allowed per email from one network within `login_window` before the
    /// answer is 429 (`LOGIN_MAX_FAILURES`), per email from anywhere
    /// (`LOGIN_MAX_FAILURES_PER_EMAIL`) and per network for any email
    /// (`LOGIN_MAX_FAILURES_PER_NETWORK`). Successful logins are not counted.
    pub login_max_failures: i64,
    pub login_max_failures_per_email: i64,
    pub login_max_failures_per_network: i64,
    pub login_window: Duration,
    /// Sign-ups allowed per network (`SIGNUP_MAX_PER_NETWORK`) and per email address
    /// (`SIGNUP_MAX_PER_EMAIL`) within `signup_window` (`SIGNUP_WINDOW_MINUTES`): each costs
    /// a password hash and sends an email (to the owner, for a taken address), so a stranger
    /// may not make them without bound.
    pub signup_max_per_network: i64,
    pub signup_max_per_email: i64,
    pub signup_window: Duration,
    /// Proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`, comma-separated
    /// addresses or CIDR ranges; none by default, so the header is ignored).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A request taking longer is answered 503 (`REQUEST_TIMEOUT_SECS`).
    pub request_timeout: Duration,
    /// A login lasts at most this long, however active (`SESSION_MAX_AGE_DAYS`).
    pub session_max_age: Duration,
    /// One free trial per user, ever (`TRIAL_ONCE_PER_USER`, default true).
    pub one_trial_per_user: bool,
    /// Users who see `/admin` (`ADMIN_EMAILS`, comma-separated, compared lower-cased).
    pub admin_emails: Vec<String>,
    /// Calls of the license API per key, and per network, in a minute.
    pub license_api_per_key: i64,
    pub license_api_per_network: i64,
    /// Failed calls (a wrong token) of `POST /api/v1/reports` allowed per network in a
    /// minute, before the network is refused.
    pub reports_api_failures_per_network: i64,
    /// How often usage goes to Stripe's meters (`USAGE_REPORT_SECONDS`): one meter event per
    /// customer per round.
    pub usage_report_every: Duration,
    /// Serve the sandbox on a public address anyway (`SANDBOX_PUBLIC=1`): anyone could then
    /// subscribe with test cards, and the sandbox's token guards its dashboard only.
    pub sandbox_public: bool,
    /// Free trial length for new subscriptions (`TRIAL_DAYS`).
    pub trial_days: u32,
    /// Access kept after a failed payment while the card is retried (`GRACE_DAYS`).
    pub grace_days: u32,
    /// `SMTP_URL` (`smtps://user:pass@host`): send email over SMTP; without it, email goes to
    /// the dev mailbox at `/dev/mailbox` (sandbox mode only).
    pub smtp_url: Option<SecretString>,
    /// `EMAIL_FROM`: the sender of transactional email.
    pub email_from: String,
    /// `SANDBOX_TEST_CLOCKS`: in sandbox mode, put each new customer on its own test clock so
    /// time can be advanced from the sandbox dashboard (default on).
    pub sandbox_test_clocks: bool,
    /// Webhook delivery and chaos knobs of the built-in Stripe sandbox (`SANDBOX_*`).
    pub sandbox: stripe_sandbox::Settings,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal (production, CI); a malformed one is not silently skipped.
        if let Err(e) = dotenvy::dotenv() {
            if !e.not_found() {
                return Err(ConfigError::Invalid {
                    name: ".env",
                    reason: e.to_string(),
                });
            }
        }
        Self::from_lookup(env_var)
    }

    /// The environment's configuration without a webhook signing secret, which
    /// `register-webhook` is run to obtain.
    pub fn from_env_before_webhook() -> Result<Self, ConfigError> {
        Self::from_env().or_else(|e| match e {
            ConfigError::Missing("STRIPE_WEBHOOK_SECRET", _) => {
                Self::from_lookup_with(env_var, false)
            }
            other => Err(other),
        })
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_lookup_with(get, true)
    }

    fn from_lookup_with(
        get: impl Fn(&str) -> Option<String>,
        webhook_secret_required: bool,
    ) -> Result<Self, ConfigError> {
        let host = get("HOST").unwrap_or_else(|| "127.0.0.1".into());
        let port: u16 = parse(&get, "PORT", 3000)?;
        let addr: SocketAddr = format!("{host}:{port}")
            .parse()
            .or_else(|_| format!("[{host}]:{port}").parse())
            .map_err(|_| ConfigError::Invalid {
                name: "HOST",
                reason: format!("{host:?} is not an IP address"),
            })?;

        let app_url = match get("APP_URL") {
            Some(raw) => {
                let url = Url::parse(&raw).map_err(|e| ConfigError::Invalid {
                    name: "APP_URL",
                    reason: e.to_string(),
                })?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    return Err(ConfigError::Invalid {
                        name: "APP_URL",
                        reason: "must be an http(s) URL with a host".into(),
                    });
                }
                url
            }
            None => Url::parse(&format!("http://{addr}/")).map_err(|e| ConfigError::Invalid {
                name: "APP_URL",
                reason: e.to_string(),
            })?,
        };

        let database_url = get("DATABASE_URL").ok_or(ConfigError::Missing(
            "DATABASE_URL",
            " (scripts/run starts a local Postgres and sets it for you)",
        ))?;
        if !(database_url.starts_with("postgres://") || database_url.starts_with("postgresql://")) {
            return Err(ConfigError::Invalid {
                name: "DATABASE_URL",
                reason: "must be a postgres:// URL".into(),
            });
        }

        let cookie_secure = match get("COOKIE_SECURE") {
            Some(v) => parse_bool("COOKIE_SECURE", &v)?,
            None => app_url.scheme() == "https",
        };

        let sandbox_public = match get("SANDBOX_PUBLIC") {
            Some(v) => parse_bool("SANDBOX_PUBLIC", &v)?,
            None => false,
        };
        let stripe_secret_key = get("STRIPE_SECRET_KEY");
        let stripe_mode = match stripe_secret_key.as_deref() {
            None => StripeMode::Sandbox,
            Some(k) if k.starts_with("sk_test_") || k.starts_with("rk_test_") => StripeMode::Test,
            Some(k) if k.starts_with("sk_live_") || k.starts_with("rk_live_") => StripeMode::Live,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "STRIPE_SECRET_KEY",
                    reason: "must start with sk_test_, sk_live_, rk_test_ or rk_live_".into(),
                })
            }
        };

        // Without a key the app runs its own Stripe, where anyone could subscribe with a test
        // card and the dashboard shows every customer: never on a public address by accident.
        let public = !addr.ip().is_loopback() || app_url.scheme() == "https";
        if stripe_mode == StripeMode::Sandbox && public && !sandbox_public {
            return Err(ConfigError::Invalid {
                name: "STRIPE_SECRET_KEY",
                reason: format!(
                    "is not set, so the app would serve its offline Stripe sandbox on a public address ({}, APP_URL {app_url}). Set STRIPE_SECRET_KEY, or HOST=127.0.0.1 with an http APP_URL, or SANDBOX_PUBLIC=1 to expose the sandbox on purpose",
                    addr.ip()
                ),
            });
        }
        let stripe_webhook_secrets = webhook_secrets(get("STRIPE_WEBHOOK_SECRET"))?;
        if webhook_secret_required
            && stripe_mode != StripeMode::Sandbox
            && stripe_webhook_secrets.is_empty()
        {
            return Err(ConfigError::Missing(
                "STRIPE_WEBHOOK_SECRET",
                " (with a Stripe key every webhook needs it: `stripe listen` prints one for local use; `saas-billing register-webhook` creates the endpoint in production)",
            ));
        }

        Ok(Self {
            addr,
            app_url,
            database_url: SecretString::from(database_url),
            database_max_connections: parse(&get, "DATABASE_MAX_CONNECTIONS", 10)?,
            site_root: get("LEPTOS_SITE_ROOT").unwrap_or_else(|| "target/site".into()),
            cookie_secure,
            session_ttl: Duration::from_secs(
                60 * 60 * 24 * parse::<u64>(&get, "SESSION_TTL_DAYS", 14)?,
            ),
            stripe_mode,
            stripe_secret_key: stripe_secret_key.map(SecretString::from),
            stripe_api_base: match get("STRIPE_API_BASE") {
                None => None,
                Some(raw) => {
                    let mut url = Url::parse(&raw).map_err(|e| ConfigError::Invalid {
                        name: "STRIPE_API_BASE",
                        reason: e.to_string(),
                    })?;
                    // async-stripe appends `v1/...` to the base.
                    if !url.path().ends_with('/') {
                        url.set_path(&format!("{}/", url.path()));
                    }
                    Some(url)
                }
            },
            stripe_webhook_secrets,
            login_max_failures: parse(&get, "LOGIN_MAX_FAILURES", 5)?,
            login_max_failures_per_email: parse(&get, "LOGIN_MAX_FAILURES_PER_EMAIL", 20)?,
            login_max_failures_per_network: parse(&get, "LOGIN_MAX_FAILURES_PER_NETWORK", 50)?,
            trusted_proxies: match get("TRUSTED_PROXIES") {
                None => Vec::new(),
                Some(raw) => raw
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        s.parse::<ipnet::IpNet>()
                            .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                            .map_err(|_| ConfigError::Invalid {
                                name: "TRUSTED_PROXIES",
                                reason: format!("{s:?} is not an address or a CIDR range"),
                            })
                    })
                    .collect::<Result<_, _>>()?,
            },
            request_timeout: Duration::from_secs(parse(&get, "REQUEST_TIMEOUT_SECS", 30)?),
            session_max_age: Duration::from_secs(
                60 * 60 * 24 * parse::<u64>(&get, "SESSION_MAX_AGE_DAYS", 30)?,
            ),
            one_trial_per_user: match get("TRIAL_ONCE_PER_USER") {
                Some(v) => parse_bool("TRIAL_ONCE_PER_USER", &v)?,
                None => true,
            },
            admin_emails: get("ADMIN_EMAILS")
                .unwrap_or_default()
                .split(',')
                .map(|e| e.trim().to_lowercase())
                .filter(|e| !e.is_empty())
                .collect(),
            license_api_per_key: parse(&get, "LICENSE_API_PER_KEY_PER_MINUTE", 30)?,
            license_api_per_network: parse(&get, "LICENSE_API_PER_NETWORK_PER_MINUTE", 120)?,
            reports_api_failures_per_network: parse(&get, "REPORTS_API_FAILURES_PER_MINUTE", 30)?,
            usage_report_every: Duration::from_secs(
                parse::<u64>(&get, "USAGE_REPORT_SECONDS", 60)?.max(1),
            ),
            sandbox_public,
            login_window: Duration::from_secs(60 * parse::<u64>(&get, "LOGIN_WINDOW_MINUTES", 15)?),
            signup_max_per_network: parse(&get, "SIGNUP_MAX_PER_NETWORK", 30)?,
            signup_max_per_email: parse(&get, "SIGNUP_MAX_PER_EMAIL", 3)?,
            signup_window: Duration::from_secs(
                60 * parse::<u64>(&get, "SIGNUP_WINDOW_MINUTES", 60)?,
            ),
            trial_days: parse(&get, "TRIAL_DAYS", 14)?,
            grace_days: parse(&get, "GRACE_DAYS", 3)?,
            smtp_url: get("SMTP_URL").map(SecretString::from),
            email_from: get("EMAIL_FROM")
                .unwrap_or_else(|| "saas-billing <billing@localhost>".into()),
            sandbox_test_clocks: match get("SANDBOX_TEST_CLOCKS") {
                Some(v) => parse_bool("SANDBOX_TEST_CLOCKS", &v)?,
                None => true,
            },
            sandbox: stripe_sandbox::Settings::from_lookup(&get).map_err(|reason| {
                ConfigError::Invalid {
                    name: "SANDBOX_*",
                    reason,
                }
            })?,
        })
    }

    /// The app's origin (`scheme://host:port`): the only one its pages post from.
    pub fn origin(&self) -> String {
        self.app_url.origin().ascii_serialization()
    }

    /// Whether an address must be confirmed before Checkout: with real Stripe, yes (billing
    /// email must reach its owner); in sandbox mode a local demo stays one click.
    pub fn requires_confirmed_email(&self) -> bool {
        self.stripe_mode != StripeMode::Sandbox
    }

    /// Whether `email` (an account's, already lower-cased) is one of `ADMIN_EMAILS`.
    pub fn is_admin(&self, email: &str) -> bool {
        self.admin_emails.iter().any(|a| a == email)
    }

    /// An absolute URL of the app: `APP_URL` joined with `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app_url.as_str().trim_end_matches('/'))
    }

    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

fn parse<T: std::str::FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match get(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::Invalid {
                name,
                reason: e.to_string(),
            }),
    }
}

/// `STRIPE_WEBHOOK_SECRET`: one or more `whsec_` secrets, comma-separated while rotating.
/// An empty entry is dropped rather than kept: HMAC accepts an empty key, and anyone can
/// sign with that.
fn webhook_secrets(raw: Option<String>) -> Result<Vec<SecretString>, ConfigError> {
    raw.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.starts_with("whsec_") && s.len() > "whsec_".len() {
                Ok(SecretString::from(s.to_owned()))
            } else {
                Err(ConfigError::Invalid {
                    name: "STRIPE_WEBHOOK_SECRET",
                    reason: "each secret must start with whsec_".into(),
                })
            }
        })
        .collect()
}

fn parse_bool(name: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(ConfigError::Invalid {
            name,
            reason: format!("{other:?} is not a boolean"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    const DB: (&str, &str) = ("DATABASE_URL", "postgres://postgres@127.0.0.1/app");

    #[test]
    fn defaults_to_local_http_and_the_sandbox() {
        let c = config(&[DB]).expect("valid");
        assert_eq!(c.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.app_url.as_str(), "http://127.0.0.1:3000/");
        assert!(!c.cookie_secure);
        assert_eq!(c.stripe_mode, StripeMode::Sandbox);
        assert_eq!(c.login_max_failures, 5);
    }

    #[test]
    fn database_url_is_required_and_must_be_postgres() {
        assert!(matches!(
            config(&[]),
            Err(ConfigError::Missing("DATABASE_URL", _))
        ));
        let err = config(&[("DATABASE_URL", "mysql://x")]).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                name: "DATABASE_URL",
                ..
            }
        ));
    }

    #[test]
    fn https_app_url_makes_cookies_secure_unless_overridden() {
        let public = ("SANDBOX_PUBLIC", "1");
        let c = config(&[DB, public, ("APP_URL", "https://billing.example.com")]).unwrap();
        assert!(c.cookie_secure);
        let c = config(&[
            DB,
            public,
            ("APP_URL", "https://billing.example.com"),
            ("COOKIE_SECURE", "false"),
        ])
        .unwrap();
        assert!(!c.cookie_secure);
        assert!(config(&[DB, ("COOKIE_SECURE", "maybe")]).is_err());
    }

    const HOOK: (&str, &str) = ("STRIPE_WEBHOOK_SECRET", "whsec_abc");

    #[test]
    fn stripe_key_prefix_decides_the_mode() {
        assert_eq!(
            config(&[DB, HOOK, ("STRIPE_SECRET_KEY", "sk_test_abc")])
                .unwrap()
                .stripe_mode,
            StripeMode::Test
        );
        assert_eq!(
            config(&[DB, HOOK, ("STRIPE_SECRET_KEY", "sk_live_abc")])
                .unwrap()
                .stripe_mode,
            StripeMode::Live
        );
        assert!(config(&[DB, HOOK, ("STRIPE_SECRET_KEY", "pk_live_abc")]).is_err());
    }

    #[test]
    fn a_stripe_key_needs_a_real_webhook_secret() {
        let key = ("STRIPE_SECRET_KEY", "sk_test_abc");
        assert!(matches!(
            config(&[DB, key]),
            Err(ConfigError::Missing("STRIPE_WEBHOOK_SECRET", _))
        ));
        for bad in ["whsec_a,nope", "secret", "whsec_", " , "] {
            assert!(
                config(&[DB, key, ("STRIPE_WEBHOOK_SECRET", bad)]).is_err(),
                "{bad:?}"
            );
        }
        // A trailing comma leaves no empty secret behind.
        let c = config(&[DB, key, ("STRIPE_WEBHOOK_SECRET", "whsec_a,")]).unwrap();
        assert_eq!(c.stripe_webhook_secrets.len(), 1);
    }

    #[test]
    fn the_sandbox_never_starts_public_unless_asked() {
        for public in [
            vec![("HOST", "0.0.0.0")],
            vec![("APP_URL", "https://billing.example.com")],
        ] {
            let mut vars = vec![DB];
            vars.extend(public.iter().copied());
            let err = config(&vars).unwrap_err().to_string();
            assert!(err.contains("SANDBOX_PUBLIC=1"), "{err}");
            vars.push(("SANDBOX_PUBLIC", "1"));
            assert!(config(&vars).is_ok());
        }
        assert!(config(&[
            DB,
            ("HOST", "0.0.0.0"),
            ("STRIPE_SECRET_KEY", "sk_test_x"),
            HOOK
        ])
        .is_ok());
    }

    #[test]
    fn trusted_proxies_are_addresses_or_ranges() {
        let c = config(&[DB, ("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7")]).unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert!(config(&[DB, ("TRUSTED_PROXIES", "the load balancer")]).is_err());
    }

    #[test]
    fn rejects_bad_numbers_hosts_and_urls() {
        assert!(matches!(
            config(&[DB, ("PORT", "http")]),
            Err(ConfigError::Invalid { name: "PORT", .. })
        ));
        assert!(matches!(
            config(&[DB, ("PORT", "70000")]),
            Err(ConfigError::Invalid { name: "PORT", .. })
        ));
        assert!(matches!(
            config(&[DB, ("HOST", "not a host")]),
            Err(ConfigError::Invalid { name: "HOST", .. })
        ));
        assert!(matches!(
            config(&[DB, ("APP_URL", "ftp://x")]),
            Err(ConfigError::Invalid {
                name: "APP_URL",
                ..
            })
        ));
        assert!(matches!(
            config(&[DB, ("APP_URL", "nope")]),
            Err(ConfigError::Invalid {
                name: "APP_URL",
                ..
            })
        ));
    }

    #[test]
    fn webhook_secrets_rotate_and_api_base_gets_a_slash() {
        let c = config(&[
            DB,
            ("STRIPE_WEBHOOK_SECRET", "whsec_a, whsec_b"),
            ("STRIPE_API_BASE", "http://127.0.0.1:12111"),
        ])
        .unwrap();
        assert_eq!(c.stripe_webhook_secrets.len(), 2);
        assert_eq!(c.stripe_webhook_secrets[1].expose_secret(), "whsec_b");
        assert_eq!(
            c.stripe_api_base.unwrap().as_str(),
            "http://127.0.0.1:12111/"
        );
        assert!(config(&[DB, ("STRIPE_API_BASE", "not a url")]).is_err());
    }

    #[test]
    fn sandbox_knobs_are_checked() {
        let c = config(&[
            DB,
            ("SANDBOX_WEBHOOK_RETRY_SECONDS", "0.5, 2"),
            ("SANDBOX_CHAOS_DUPLICATE", "0.25"),
        ])
        .unwrap();
        assert_eq!(
            c.sandbox.retry_schedule,
            vec![Duration::from_millis(500), Duration::from_secs(2)]
        );
        assert_eq!(c.sandbox.chaos_duplicate, 0.25);
        assert!(config(&[DB, ("SANDBOX_CHAOS_DUPLICATE", "2")]).is_err());
        assert!(config(&[DB, ("SANDBOX_WEBHOOK_RETRY_SECONDS", "soon")]).is_err());
    }

    #[test]
    fn accepts_ipv6_hosts() {
        assert_eq!(
            config(&[DB, ("HOST", "::1"), ("PORT", "8080")])
                .unwrap()
                .addr
                .to_string(),
            "[::1]:8080"
        );
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = config(&[DB, HOOK, ("STRIPE_SECRET_KEY", "sk_test_supersecret")]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("supersecret"));
        assert!(!shown.contains("127.0.0.1/app"));
    }
}
