//! Builds the whole application from a [`Config`] and hands it back unstarted, so `main`
//! and the integration tests (on port 0, against a fresh database) run the same thing.

use crate::stripe::Stripe;
use crate::{
    accounts,
    app::{shell, App},
    config::{Config, StripeMode},
    middleware,
    state::AppState,
};
use axum::{routing::get, serve::ListenerExt, Router};
use leptos::prelude::*;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use secrecy::ExposeSecret;
use sqlx::{postgres::PgPoolOptions, PgPool};
use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock, RwLock},
    time::Duration,
};
use stripe_sandbox::Sandbox;
use tokio::net::TcpListener;
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot connect to Postgres: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
    #[error("stripe client: {0}")]
    Stripe(String),
    #[error("email: {0}")]
    Email(String),
    #[error("the sandbox would listen on {0}, a public address: bind HOST=127.0.0.1, or set SANDBOX_PUBLIC=1 to expose it on purpose")]
    Public(std::net::IpAddr),
}

impl From<crate::error::AppError> for StartupError {
    fn from(e: crate::error::AppError) -> Self {
        Self::Stripe(e.to_string())
    }
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    url: String,
    /// Work with Stripe that needs the server to be answering (the sandbox lives in it).
    bootstrap: Option<(AppState, String)>,
}

impl Application {
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let db = connect_and_migrate(&config).await?;
        if config.stripe_mode == StripeMode::Sandbox {
            Sandbox::migrate(&db).await?;
        }
        let session_store = PostgresStore::new(db.clone());
        session_store.migrate().await?;

        let listener = TcpListener::bind(config.addr).await?;
        let addr = listener.local_addr()?;
        // On port 0 (tests) the default APP_URL only becomes true once bound.
        let mut config = config;
        if config.app_url.port() == Some(0) {
            let _ = config.app_url.set_port(Some(addr.port()));
        }
        let assets = crate::assets::Assets::load(&config.site_root);
        let leptos_options = LeptosOptions::builder()
            .output_name("saas-billing")
            .site_root(config.site_root.clone())
            .site_pkg_dir(assets.pkg_dir())
            .site_addr(addr)
            .build();
        let url = format!("http://{addr}");

        let session_layer = SessionManagerLayer::new(session_store)
            .with_name(if config.cookie_secure {
                accounts::SECURE_SESSION_COOKIE
            } else {
                accounts::SESSION_COOKIE
            })
            .with_http_only(true)
            // Strict would drop the session on the redirect back from Stripe Checkout.
            .with_same_site(SameSite::Lax)
            .with_secure(config.cookie_secure)
            .with_expiry(Expiry::OnInactivity(
                tower_sessions::cookie::time::Duration::try_from(config.session_ttl)
                    .unwrap_or(tower_sessions::cookie::time::Duration::days(14)),
            ));

        spawn_housekeeping(db.clone());
        if config.smtp_url.is_none() && config.stripe_mode != StripeMode::Sandbox {
            tracing::warn!("SMTP_URL is not set: billing email is kept in the outbox, not sent");
        }
        crate::email::outbox::spawn_worker(
            db.clone(),
            crate::email::outbox::Sender::from_config(&config).map_err(StartupError::Email)?,
        );
        // The app reaches itself (the in-app sandbox, its own webhook) over loopback.
        let internal = format!("http://{}", loopback(addr));
        let (key, base) = stripe_account(&config, &db, &format!("{internal}/")).await?;
        let stripe = Stripe::new(&key, base.as_deref())?;
        let sweeps_in_clock_time =
            crate::stripe::clock::follows_clocks(&config).then(|| stripe.clone());
        spawn_license_sweep(
            db.clone(),
            config.url(""),
            config.grace_days,
            sweeps_in_clock_time,
        );
        // Without a Stripe key the app is its own Stripe: the sandbox API lives beside it.
        let sandbox = (config.stripe_mode == StripeMode::Sandbox).then(|| {
            let settings = stripe_sandbox::Settings {
                // Its pages send customers back to the app only: never an open redirect.
                redirect_origin: Some(config.origin()),
                // Its own account delivers to the app on loopback; no other account may
                // reach a private address.
                private_webhooks: stripe_sandbox::PrivateWebhooks::ForKeys(vec![key.clone()]),
                ..config.sandbox.clone()
            };
            Sandbox::new(db.clone(), settings, config.app_url.as_str())
        });
        let gate = sandbox.as_ref().map(Sandbox::dashboard_gate);
        if sandbox.is_some() {
            tracing::info!(
                dashboard = %config.url(&format!("/sandbox?token={}", config.sandbox.dashboard_token)),
                mailbox = %config.url(&format!("/dev/mailbox?token={}", config.sandbox.dashboard_token)),
                "sandbox mode: the dashboard and the dev mailbox open with these links"
            );
        }
        let protection = middleware::Protection {
            origin: config.origin().into(),
            https: config.app_url.scheme() == "https",
            request_timeout: config.request_timeout,
        };
        crate::usage::report::spawn(db.clone(), stripe.clone(), config.usage_report_every);
        let pricing_cache = crate::catalog::cache::PageCache::default();
        pricing_cache.spawn_listener(&db);
        let state = AppState {
            pricing_cache,
            leptos_options,
            db,
            stripe,
            webhook_secrets: Arc::new(RwLock::new(config.stripe_webhook_secrets.clone())),
            ready: Arc::default(),
            webhook_turns: Default::default(),
            config: Arc::new(config),
        };
        let mut router = router(state.clone(), gate).merge(assets.router());
        if let Some(sandbox) = sandbox {
            sandbox.start_workers();
            router = router
                .nest_service(
                    "/sandbox/v1",
                    sandbox.api().layer(axum::middleware::from_fn_with_state(
                        stripe_sandbox::MAX_BODY,
                        middleware::limit_body,
                    )),
                )
                .merge(sandbox.pages().layer(axum::middleware::from_fn_with_state(
                    middleware::FORM_BODY_LIMIT,
                    middleware::limit_body,
                )));
        }
        let router = middleware::outer_layers(router.layer(session_layer), &protection);
        let webhook_url = format!("{internal}/api/webhooks/stripe");
        Ok(Self {
            listener,
            router,
            url,
            bootstrap: Some((state, webhook_url)),
        })
    }

    /// The sandbox alone, serving Stripe's API at `/v1` for any SDK (`saas-billing sandbox`).
    /// It binds loopback unless told otherwise (`HOST`, with `SANDBOX_PUBLIC=1`).
    pub async fn build_sandbox(config: Config) -> Result<Self, StartupError> {
        let on_loopback = config.addr.ip().is_loopback();
        if !on_loopback && !config.sandbox_public {
            return Err(StartupError::Public(config.addr.ip()));
        }
        let db = connect_and_migrate(&config).await?;
        Sandbox::migrate(&db).await?;
        let listener = TcpListener::bind(config.addr).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let settings = stripe_sandbox::Settings {
            // Only this machine can reach a sandbox on loopback, where the developer's app
            // listens too: webhooks may go there. A public sandbox may not probe its network.
            private_webhooks: if on_loopback {
                stripe_sandbox::PrivateWebhooks::Allowed
            } else {
                stripe_sandbox::PrivateWebhooks::Refused
            },
            ..config.sandbox.clone()
        };
        let token = settings.dashboard_token.clone();
        let sandbox = Sandbox::new(db, settings, &url);
        sandbox.start_workers();
        tracing::info!(dashboard = %format!("{url}/sandbox?token={token}"), "the sandbox's dashboard opens with this link");
        let protection = middleware::Protection {
            origin: url.clone().into(),
            https: false,
            request_timeout: config.request_timeout,
        };
        Ok(Self {
            listener,
            router: middleware::outer_layers(sandbox.standalone(), &protection),
            url,
            bootstrap: None,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        if let Some((state, webhook_url)) = self.bootstrap {
            tokio::spawn(bootstrap_until_done(state, webhook_url));
        }
        // Without TCP_NODELAY a response written in two pieces (a streamed file's headers,
        // then its body) waits for the client's delayed ACK: about 40 ms on every request
        // of a kept-alive connection after the first.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await
    }
}

/// For commands run beside a live app (`sync-catalog`, `replay-events`): its database and
/// the same Stripe it talks to. In sandbox mode that is the running app's sandbox.
pub async fn connect_for_command(config: &Config) -> Result<(PgPool, Stripe), StartupError> {
    let db = connect_and_migrate(config).await?;
    let (key, base) = stripe_account(config, &db, config.app_url.as_str()).await?;
    Ok((db, Stripe::new(&key, base.as_deref())?))
}

/// The app's Stripe account: the configured key and base URL, or in sandbox mode this
/// installation's sandbox key and the sandbox served by the app at `app_base`.
async fn stripe_account(
    config: &Config,
    db: &PgPool,
    app_base: &str,
) -> Result<(String, Option<String>), StartupError> {
    let configured_base = config.stripe_api_base.as_ref().map(|u| u.to_string());
    let (key, base) = match &config.stripe_secret_key {
        Some(key) => (key.expose_secret().to_owned(), configured_base),
        None => (
            crate::stripe::bootstrap::sandbox_secret_key(db).await?,
            Some(configured_base.unwrap_or_else(|| format!("{app_base}sandbox/"))),
        ),
    };
    Ok((key, base))
}

/// A pooled connection idle for longer than this is checked (one round trip) before it is
/// handed out; one used more recently is not.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How the app pools its Postgres connections (the benches use it too, to measure the same).
pub fn pool_options(max_connections: u32) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(5))
        // sqlx checks every connection it hands out with a round trip, on top of the one it
        // makes when the connection comes back (which also flushes an abandoned
        // transaction's rollback). Under load that doubles the round trips of a one-statement
        // action. A connection that answered within the last second is handed out as it is
        // (as HikariCP does): one that died since fails its query, and a webhook answers 500
        // so Stripe retries. One idle longer, where a restart or a cut is likelier, is checked.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= CHECK_AFTER_IDLE {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}

async fn connect_and_migrate(config: &Config) -> Result<PgPool, StartupError> {
    let db = pool_options(config.database_max_connections)
        .connect(config.database_url())
        .await?;
    app_migrator(&db).await?.run(&db).await?;
    Ok(db)
}

/// The app's migrations. 0003 and 0008 created the sandbox's tables before the sandbox
/// became a crate with migrations of its own (`stripe_sandbox._sqlx_migrations`); databases
/// that applied them keep those tables and their record here. Only those two versions may
/// be applied yet missing: any other missing migration is still an error.
async fn app_migrator(db: &PgPool) -> Result<sqlx::migrate::Migrator, StartupError> {
    const MOVED_TO_THE_SANDBOX: [i64; 2] = [3, 8];
    let mut migrator = sqlx::migrate!();
    // A fresh database has no bookkeeping table yet: nothing is recorded.
    let recorded: Vec<i64> = sqlx::query_scalar("select version from _sqlx_migrations")
        .fetch_all(db)
        .await
        .unwrap_or_default();
    let missing = recorded
        .iter()
        .find(|v| !MOVED_TO_THE_SANDBOX.contains(v) && !migrator.iter().any(|m| m.version == **v));
    if let Some(version) = missing {
        return Err(StartupError::Migrate(
            sqlx::migrate::MigrateError::VersionMissing(*version),
        ));
    }
    migrator.set_ignore_missing(true);
    Ok(migrator)
}

/// The pages Leptos derives from `<App/>`, worked out once per process. While it runs,
/// leptos_server sets a process-global flag, and any `Resource` first polled in that window
/// waits forever (leptos#4773). So a second instance in the same process (the integration
/// tests start dozens) must not regenerate it while another instance renders pages.
fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The route table. Plain axum routes come first so Leptos never sees them.
fn router(state: AppState, gate: Option<stripe_sandbox::DashboardGate>) -> Router {
    let routes = route_list();
    let context = {
        let state = state.clone();
        move || provide_context(state.clone())
    };
    let render = {
        let options = state.leptos_options.clone();
        move || shell(options.clone())
    };
    // The dev mailbox shows every email sent: behind the sandbox dashboard's token.
    let mailbox = match gate {
        Some(gate) => crate::email::mailbox_router().route_layer(
            axum::middleware::from_fn_with_state(gate, stripe_sandbox::require_dashboard_token),
        ),
        None => Router::new(),
    };
    let pages = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .merge(mailbox)
        .route(
            "/api/{*rest}",
            axum::routing::any(middleware::api_not_found),
        )
        .leptos_routes_with_context(&state, routes, context.clone(), render)
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(axum::middleware::from_fn_with_state(
            state.pricing_cache.clone(),
            crate::catalog::cache::serve,
        ))
        .layer(axum::middleware::from_fn_with_state(
            middleware::form_targets(state.config.stripe_api_base.as_ref()),
            middleware::page_policy,
        ))
        .layer(axum::middleware::from_fn_with_state(
            middleware::FORM_BODY_LIMIT,
            middleware::limit_body,
        ));
    Router::new()
        .merge(crate::webhooks::router())
        .merge(
            crate::licenses::api::router()
                .merge(crate::usage::api::router())
                .layer(axum::middleware::from_fn_with_state(
                    middleware::FORM_BODY_LIMIT,
                    middleware::limit_body,
                )),
        )
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            accounts::require_login,
        ))
        .with_state(state)
}

/// 200 once the start-up sync with Stripe is done; load balancers and tests wait for it.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, &'static str) {
    if state.is_ready() {
        (axum::http::StatusCode::OK, "ready")
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

/// Retries the start-up work with Stripe until it succeeds: Stripe may be briefly
/// unreachable, and the pages keep serving what Postgres already has meanwhile.
async fn bootstrap_until_done(state: AppState, webhook_url: String) {
    let mut wait = Duration::from_millis(500);
    loop {
        match crate::stripe::bootstrap::run(&state, &webhook_url).await {
            Ok(()) => {
                state.mark_ready();
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?wait, "start-up sync with Stripe failed");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}

fn loopback(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        }
        ip if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        _ => addr,
    }
}

/// Expired sessions and old login attempts would otherwise grow without bound.
fn spawn_housekeeping(db: PgPool) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60 * 60));
        loop {
            tick.tick().await;
            let pruned = async {
                accounts::prune_expired(&db).await?;
                crate::rate_limit::prune(&db).await
            };
            if let Err(e) = pruned.await {
                tracing::warn!(error = %e, "housekeeping failed; will retry");
            }
        }
    });
}

/// Suspends the licenses of subscriptions whose grace period ran out: no Stripe event marks
/// that moment. Every instance runs it; the per-subscription lock makes that harmless.
fn spawn_license_sweep(
    db: PgPool,
    app_url: String,
    grace_days: u32,
    sandbox: Option<crate::stripe::Stripe>,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let swept =
                crate::licenses::sync::suspend_overdue(&db, &app_url, grace_days, sandbox.as_ref());
            match swept.await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::info!(suspended = n, "licenses past their grace period suspended")
                }
                Err(e) => tracing::warn!(error = %e, "license sweep failed; will retry"),
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}

pub fn init_tracing() {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    let _ = fmt().with_env_filter(filter).with_target(false).try_init();
}
