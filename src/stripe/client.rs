//! The one place the app's Stripe client is built. The same code talks to api.stripe.com,
//! to the built-in sandbox, or to any Stripe-compatible server: only the base URL differs.

use crate::error::AppError;
use std::time::Duration;
use stripe::{ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};

const ATTEMPTS: u32 = 4;

#[derive(Clone)]
pub struct Stripe {
    client: stripe::Client,
}

impl Stripe {
    /// `base_url` is `None` for api.stripe.com, or e.g. `http://127.0.0.1:3000/sandbox/`.
    pub fn new(secret_key: &str, base_url: Option<&str>) -> Result<Self, AppError> {
        let mut builder = ClientBuilder::new(secret_key)
            .timeout(Duration::from_secs(30))
            // Reads (and lists, page by page) retry with backoff; writes override this below.
            .request_strategy(RequestStrategy::ExponentialBackoff(ATTEMPTS))
            .app_info("saas-billing", Some(env!("CARGO_PKG_VERSION").into()), None);
        if let Some(url) = base_url {
            builder = builder.url(url);
        }
        let client = builder
            .build()
            .map_err(|e| AppError::internal(format!("stripe client: {e}")))?;
        Ok(Self { client })
    }

    /// A read, retried with backoff on network errors, 429 and 5xx.
    pub async fn get<R>(&self, req: &R) -> Result<R::Output, StripeError>
    where
        R: StripeRequest,
        R::Output: miniserde::Deserialize,
    {
        req.customize().send(&self.client).await
    }

    /// Every item of a list, page after page (each page a read, retried like [`Self::get`]):
    /// `stripe.all(ListProduct::new().limit(100).paginate())`.
    pub async fn all<T>(
        &self,
        pages: stripe::ListPaginator<stripe_types::List<T>>,
    ) -> Result<Vec<T>, StripeError>
    where
        T: stripe_types::Object + Send + Sync + 'static,
        stripe_types::List<T>: miniserde::Deserialize,
    {
        use futures::TryStreamExt;
        pages.stream(&self.client).try_collect().await
    }

    /// A write under an idempotency key that says what the request means (for example
    /// `customer-for-user-{id}`), retried with backoff on network errors, 429 and 5xx. Every
    /// attempt carries the same key, so a retry can never do the work twice.
    pub async fn post<R>(&self, req: &R, key: &str) -> Result<R::Output, StripeError>
    where
        R: StripeRequest,
        R::Output: miniserde::Deserialize,
    {
        let key = IdempotencyKey::new(key)
            .map_err(|e| StripeError::ClientError(format!("idempotency key: {e}")))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = req
                .customize()
                .request_strategy(RequestStrategy::Idempotent(key.clone()))
                .send(&self.client)
                .await;
            match result {
                Err(e) if attempt < ATTEMPTS && retryable(&e) => {
                    tracing::warn!(attempt, error = %e, "stripe request failed; retrying with the same idempotency key");
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt - 1))).await;
                }
                other => return other,
            }
        }
    }
}

/// Network trouble, rate limits, Stripe's own errors, and a 409 "another request with this
/// idempotency key is in progress" (two tabs at once) are worth another try; a 4xx about our
/// request is not.
fn retryable(e: &StripeError) -> bool {
    match e {
        StripeError::Stripe(_, status) => matches!(*status, 409 | 429) || *status >= 500,
        StripeError::ClientError(_) | StripeError::Timeout => true,
        _ => false,
    }
}
