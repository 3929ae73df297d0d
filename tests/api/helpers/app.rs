//! The app under test: the real server on a free port against a fresh database.

use super::{eventually, unique_email, PASSWORD};
use reqwest::{Client, Response, StatusCode};
use saas_billing::{config::Config, startup::Application};
use sqlx::PgPool;
use std::sync::Arc;
pub use stripe_sandbox::testing::TestDatabase;

pub struct TestApp {
    pub url: String,
    /// A browser-like client: keeps cookies, does not follow redirects (tests look at them).
    pub client: Client,
    pub db: PgPool,
    pub db_url: String,
    /// Held so the database outlives every instance using it.
    _database: Arc<TestDatabase>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_on(&TestDatabase::create().await, tweak).await
}

/// An instance on an existing database: two of them are a scaled-out deployment.
pub async fn spawn_app_on(
    database: &Arc<TestDatabase>,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    spawn_app_env(database, &[], tweak).await
}

/// An instance configured as its environment would configure it (`env` on top of the
/// tests' database and a free port), then `tweak`ed.
pub async fn spawn_app_env(
    database: &Arc<TestDatabase>,
    env: &[(&str, &str)],
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    init_test_log();
    let db_url = database.url.clone();
    let mut config = Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(db_url.clone()),
        "PORT" => Some("0".into()),
        "LEPTOS_SITE_ROOT" => Some("target/site/test-no-assets".into()),
        _ => env
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
            // Tests sign many users up from loopback; the limit has its own test.
            .or_else(|| (name == "SIGNUP_MAX_PER_NETWORK").then(|| "100000".into())),
    })
    .expect("test configuration is valid");
    tweak(&mut config);
    let app = Application::build(config)
        .await
        .expect("the application starts");
    let url = app.url().to_owned();
    tokio::spawn(app.run_until_stopped());
    let db = PgPool::connect(&db_url).await.expect("test pool connects");
    let app = TestApp {
        url,
        client: new_client(),
        db,
        db_url,
        _database: database.clone(),
    };
    app.wait_until_ready().await;
    app
}

/// `TEST_LOG=tower_http=debug,saas_billing=debug cargo test …`: the server's log, printed
/// with a failing test's output (each test's runtime, app included, runs on its thread).
fn init_test_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
    });
}

pub fn new_client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        // A stalled response fails its test with an error instead of hanging the suite.
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client builds")
}

impl TestApp {
    /// Start-up finishes with Stripe after the server listens (catalog sync, and in sandbox
    /// mode the app's own webhook endpoint); tests begin once `/readyz` says so.
    pub async fn wait_until_ready(&self) {
        for _ in 0..300 {
            if let Ok(res) = self.client.get(self.at("/readyz")).send().await {
                if res.status() == StatusCode::OK {
                    return;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("the app did not become ready within 30 s");
    }

    /// Runs the real binary as an operator would beside this instance (`saas-billing
    /// replay-events`, …): its database, its URL, nothing else from the test's environment.
    /// Returns whether it succeeded, and what it printed (stdout, then stderr).
    pub async fn run_command(&self, args: &[&str]) -> (bool, String) {
        self.run_command_with(args, &[]).await
    }

    /// [`run_command`](Self::run_command) with more of the environment (a Stripe key…).
    pub async fn run_command_with(&self, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_saas-billing"));
        command
            .args(args)
            .current_dir(std::env::temp_dir())
            .env_clear()
            .env("DATABASE_URL", &self.db_url)
            .env("APP_URL", &self.url)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().copied());
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("the binary runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// The body of a GET with this client's cookies (`path` or an absolute URL).
    pub async fn page(&self, path_or_url: &str) -> String {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            self.at(path_or_url)
        };
        self.client
            .get(url)
            .send()
            .await
            .expect("GET succeeds")
            .text()
            .await
            .expect("a text body")
    }

    /// Polls a page until it shows `text` (webhooks arrive asynchronously); false after 10 s.
    pub async fn page_eventually_contains(&self, path: &str, text: &str) -> bool {
        eventually(|| async { self.page(path).await.contains(text) }).await
    }

    /// The id of the price the catalog knows by `lookup_key` (`pro_monthly`, …).
    pub async fn price_id(&self, lookup_key: &str) -> String {
        sqlx::query_scalar("select id from prices where lookup_key = $1")
            .bind(lookup_key)
            .fetch_one(&self.db)
            .await
            .expect("the catalog has the price")
    }

    /// A value the app generated for itself (its sandbox key, its webhook secret).
    pub async fn setting(&self, name: &str) -> String {
        sqlx::query_scalar("select value from app_settings where name = $1")
            .bind(name)
            .fetch_one(&self.db)
            .await
            .expect("setting exists")
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.at(path))
            .send()
            .await
            .expect("GET succeeds")
    }

    /// Calls a server function the way the hydrated app does (form-encoded, JSON back).
    pub async fn call(&self, endpoint: &str, form: &[(&str, &str)]) -> Response {
        self.call_with(&self.client, endpoint, form).await
    }

    pub async fn call_with(
        &self,
        client: &Client,
        endpoint: &str,
        form: &[(&str, &str)],
    ) -> Response {
        client
            .post(self.at(&format!("/api/{endpoint}")))
            .form(form)
            .send()
            .await
            .expect("POST succeeds")
    }

    pub async fn signup(&self, email: &str, password: &str) -> Response {
        self.call("signup", &[("email", email), ("password", password)])
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.call("login", &[("email", email), ("password", password)])
            .await
    }

    pub async fn user_count(&self) -> i64 {
        sqlx::query_scalar("select count(*) from users")
            .fetch_one(&self.db)
            .await
            .expect("counts users")
    }
}

/// What the app's webhook processing knows of this instance (for `replay_events`).
pub fn deployment(app: &TestApp) -> saas_billing::webhooks::Deployment<'_> {
    saas_billing::webhooks::Deployment {
        app_url: &app.url,
        grace_days: 3,
        // The tests' apps run in sandbox mode.
        sandbox: true,
    }
}

/// Signs a new user up through the real server function and returns their row.
pub async fn signed_up_user(app: &TestApp, prefix: &str) -> saas_billing::accounts::User {
    let email = unique_email(prefix);
    app.signup(&email, PASSWORD).await;
    sqlx::query_as("select id, email, password_hash, email_verified_at from users where email = $1")
        .bind(email.to_lowercase())
        .fetch_one(&app.db)
        .await
        .expect("the user exists")
}

/// The real binary serving on a free port against `database`, everything it prints kept in
/// a file: for what only a separate process shows (its log).
pub struct ServerProcess {
    pub app: TestApp,
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl ServerProcess {
    pub async fn start(database: &Arc<TestDatabase>, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let log = std::env::temp_dir().join(format!("saas-billing-{}.log", uuid::Uuid::new_v4()));
        let out = std::fs::File::create(&log).expect("a log file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_saas-billing"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &database.url)
            .env("PORT", port.to_string())
            .env("APP_URL", &url)
            .env("LEPTOS_SITE_ROOT", "target/site/test-no-assets")
            .envs(env.iter().copied())
            .stdout(out.try_clone().expect("the log file again"))
            .stderr(out)
            .spawn()
            .expect("the binary starts");
        let app = TestApp {
            url,
            client: new_client(),
            db: PgPool::connect(&database.url)
                .await
                .expect("test pool connects"),
            db_url: database.url.clone(),
            _database: database.clone(),
        };
        let server = Self { app, child, log };
        server.app.wait_until_ready().await;
        server
    }

    /// Stops the server and returns all it printed.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}
