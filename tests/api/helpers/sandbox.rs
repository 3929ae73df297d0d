//! A second webhook receiver beside the app's, on any sandbox account, and what the app's
//! own sandbox has left to deliver.

use super::{eventually, sandbox_api, spawn_app_env, TestApp, TestDatabase};
use reqwest::{Method, Response, StatusCode};
use saas_billing::config::Config;
use stripe::{Client, ClientBuilder};

impl TestApp {
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
}

/// A fresh test-mode key: an account of its own in the sandbox.
pub fn test_key() -> String {
    format!("sk_test_{}", uuid::Uuid::new_v4().simple())
}

/// The client exactly as the app builds it: only the base URL points at the sandbox.
pub fn stripe_client(base: &str, key: &str) -> Client {
    ClientBuilder::new(key)
        .url(format!("{base}/"))
        .build()
        .expect("client builds")
}

pub use stripe_sandbox::testing::{spawn_receiver, wait_for_hits};

/// Registers a webhook endpoint on `key`'s sandbox account and returns its signing secret.
pub async fn register_endpoint(app: &TestApp, key: &str, url: &str) -> String {
    let (status, body) = sandbox_api(
        app,
        Method::POST,
        "/webhook_endpoints",
        key,
        &[("url", url), ("enabled_events[]", "*")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret = body["secret"]
        .as_str()
        .expect("create returns the secret")
        .to_owned();
    assert!(secret.starts_with("whsec_"));
    secret
}

/// An app in test mode against a sandbox of its own on another port, as one deployed with a
/// `sk_test_` key talks to Stripe: no in-app sandbox, no dashboard, real email rules.
pub struct TestModeApp {
    pub app: TestApp,
    pub stripe_base: String,
    /// Its Stripe account's secret key.
    pub key: String,
}

pub async fn spawn_test_mode_app(
    webhook_secret: &str,
    tweak: impl FnOnce(&mut Config),
) -> TestModeApp {
    let database = TestDatabase::create().await;
    let db = sqlx::PgPool::connect(&database.url).await.unwrap();
    let stripe_base = stripe_sandbox::testing::serve(db, stripe_sandbox::Settings::default()).await;
    let key = test_key();
    // One plan on the pricing page, one product that is not for sale here.
    let stripe = stripe_client(&stripe_base, &key);
    for (name, offered) in [("Pro", true), ("Internal", false)] {
        use stripe_product::{price::CreatePrice, product::CreateProduct};
        let mut product = CreateProduct::new(name);
        if offered {
            product = product.metadata([("pricing_page".to_owned(), "true".to_owned())]);
        }
        let product = product.send(&stripe).await.unwrap();
        CreatePrice::new(stripe_types::Currency::USD)
            .product(product.id.as_str())
            .unit_amount(1900)
            .lookup_key(name.to_lowercase())
            .recurring(stripe_product::price::CreatePriceRecurring::new(
                stripe_product::price::CreatePriceRecurringInterval::Month,
            ))
            .send(&stripe)
            .await
            .unwrap();
    }
    let app = spawn_app_env(
        &database,
        &[
            ("STRIPE_SECRET_KEY", &key),
            ("STRIPE_API_BASE", &stripe_base),
            ("STRIPE_WEBHOOK_SECRET", webhook_secret),
        ],
        tweak,
    )
    .await;
    TestModeApp {
        app,
        stripe_base,
        key,
    }
}
