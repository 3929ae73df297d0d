use reqwest::{header, Client, Response, StatusCode};
use saas_billing::{config::Config, startup::Application};
use sqlx::{Connection, Executor, PgConnection, PgPool};

pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub url: String,
    /// A browser-like client: keeps cookies, does not follow redirects (tests look at them).
    pub client: Client,
    pub db: PgPool,
    pub db_url: String,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_on(&fresh_database_url().await, tweak).await
}

/// An instance on an existing database: two of them are a scaled-out deployment.
pub async fn spawn_app_on(db_url: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
    init_test_log();
    let db_url = db_url.to_owned();
    let mut config = Config::from_lookup(|name| match name {
        "DATABASE_URL" => Some(db_url.clone()),
        "PORT" => Some("0".into()),
        "LEPTOS_SITE_ROOT" => Some("target/site/test-no-assets".into()),
        _ => None,
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

/// A new, empty database on the server DATABASE_URL points at (scripts/test sets it).
pub async fn fresh_database_url() -> String {
    let base = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at a Postgres server (scripts/test sets it)");
    let mut url = url::Url::parse(&base).expect("DATABASE_URL is a URL");
    url.set_path("/postgres");
    let mut admin = PgConnection::connect(url.as_str())
        .await
        .expect("connects to Postgres");
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(format!(r#"create database "{name}""#).as_str())
        .await
        .expect("creates the test database");
    url.set_path(&format!("/{name}"));
    url.to_string()
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

    /// The app's own Stripe client (its sandbox key, its in-app sandbox), built as the app builds it.
    pub async fn stripe(&self) -> saas_billing::stripe::Stripe {
        let key = self.setting("sandbox_secret_key").await;
        saas_billing::stripe::Stripe::new(&key, Some(&format!("{}/sandbox/", self.url)))
            .expect("client builds")
    }

    /// A GET on the in-app sandbox's API with the app's own key, as JSON.
    pub async fn app_sandbox_get(&self, path: &str) -> serde_json::Value {
        let key = self.setting("sandbox_secret_key").await;
        let res = self
            .client
            .get(self.at(&format!("/sandbox/v1{path}")))
            .bearer_auth(key)
            .send()
            .await
            .expect("GET succeeds");
        res.json().await.expect("JSON")
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

    /// Waits until the sandbox has delivered every event so far (start-up's catalog seed
    /// included), so a test's own events cannot race them.
    pub async fn webhooks_settled(&self) {
        let settled = eventually(|| async {
            sqlx::query_scalar::<_, i64>(
                "select count(*) from stripe_sandbox.deliveries where status = 'pending'",
            )
            .fetch_one(&self.db)
            .await
            .unwrap()
                == 0
        })
        .await;
        assert!(settled, "the sandbox's deliveries settled");
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

    /// Pays on the sandbox's hosted Checkout page as a browser would: `card` and a US
    /// billing address (and `email` when the session has no customer yet).
    pub async fn pay_checkout(&self, url: &str, email: Option<&str>, card: &str) -> Response {
        let mut form = vec![
            ("card_number", card),
            ("card_expiry", "12 / 40"),
            ("card_cvc", "123"),
            ("name", "Ann Buyer"),
            ("country", "US"),
            ("postal_code", "10001"),
        ];
        form.extend(email.map(|e| ("email", e)));
        self.client
            .post(url)
            .form(&form)
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

pub fn unique_email(prefix: &str) -> String {
    format!("{prefix}-{}@example.com", uuid::Uuid::new_v4().simple())
}

pub fn location(res: &Response) -> &str {
    res.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

pub fn session_cookie(res: &Response) -> Option<String> {
    res.cookies()
        .find(|c| c.name() == "sb_session")
        .map(|c| c.value().to_owned())
}

pub async fn assert_status(res: Response, status: StatusCode) -> String {
    let got = res.status();
    let body = res.text().await.unwrap_or_default();
    assert_eq!(got, status, "unexpected status; body: {body}");
    body
}

/// Polls `check` every 100 ms until it holds; false after 10 s.
pub async fn eventually<F: std::future::Future<Output = bool>>(
    mut check: impl FnMut() -> F,
) -> bool {
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// Signs a new user up through the real server function and returns their row.
pub async fn signed_up_user(app: &TestApp, prefix: &str) -> saas_billing::accounts::User {
    let email = unique_email(prefix);
    app.signup(&email, PASSWORD).await;
    sqlx::query_as("select id, email, password_hash from users where email = $1")
        .bind(email.to_lowercase())
        .fetch_one(&app.db)
        .await
        .expect("the user exists")
}
