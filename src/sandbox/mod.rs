//! The offline Stripe sandbox: a stateful, Stripe-compatible server for development and
//! tests, and the app's default when no `STRIPE_SECRET_KEY` is set.
//!
//! It speaks Stripe's REST dialect closely enough that async-stripe's generated types (which
//! mirror Stripe's OpenAPI spec) decode every response and event. Mounted in the app under
//! `/sandbox/v1`, or standalone (`saas-billing sandbox --port N`) under `/v1` for any SDK.

pub mod cards;
mod checkout;
mod clocks;
mod coupons;
mod customers;
mod dashboard;
pub mod delivery;
mod endpoints;
mod events;
pub mod http;
mod invoices;
mod lifecycle;
mod payment_methods;
mod payments;
mod portal;
mod prices;
mod products;
mod resources;
mod store;
mod subscriptions;
mod tax;

use axum::{
    extract::Request,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
pub use dashboard::escape as html_escape;
use http::StripeError;
use resources::{
    delete, retrieve, Charge, CheckoutSession, Coupon, Customer, Invoice, PaymentIntent,
    PortalConfiguration, Price, Product, PromotionCode, Refund, Subscription, TestClock,
    WebhookEndpoint,
};
use sqlx::PgPool;
use std::{sync::Arc, time::Duration};

/// The API version the sandbox speaks: the one async-stripe 1.0.0-rc.10 pins.
pub const API_VERSION: &str = "2026-09-30.endive";

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
        if let Some(ms) = get("SANDBOX_CHAOS_DELAY_MS") {
            s.chaos_delay = Duration::from_millis(
                ms.trim()
                    .parse()
                    .map_err(|_| "SANDBOX_CHAOS_DELAY_MS must be milliseconds")?,
            );
        }
        Ok(s)
    }
}

#[derive(Clone)]
pub struct Sandbox {
    pub db: PgPool,
    pub settings: Arc<Settings>,
    /// Where browsers reach the sandbox's pages (hosted invoices, Checkout, the portal).
    pub public_url: Arc<str>,
}

impl Sandbox {
    pub fn new(db: PgPool, settings: Settings, public_url: &str) -> Self {
        Self {
            db,
            settings: Arc::new(settings),
            public_url: public_url.trim_end_matches('/').into(),
        }
    }

    /// Starts the webhook delivery worker (one per process; instances share the work).
    pub fn start_delivery(&self) {
        delivery::spawn_worker(self.db.clone(), self.settings.clone());
    }

    /// The dashboard pages, served at `/sandbox` (in the app and standalone alike).
    pub fn pages(&self) -> Router {
        use axum::routing::post;
        Router::new()
            .route("/sandbox", get(dashboard::page))
            .route("/sandbox/events/{id}/resend", post(dashboard::resend))
            .route(
                "/sandbox/clocks/{id}/advance",
                post(dashboard::advance_clock),
            )
            .route(
                "/sandbox/checkout/{id}",
                get(checkout::page).post(checkout::pay),
            )
            .route("/sandbox/portal/{id}", get(portal::page).post(portal::act))
            .route(
                "/sandbox/invoices/{id}",
                get(payments::page).post(payments::pay),
            )
            .with_state(self.clone())
    }

    /// The Stripe API, to be nested under `/v1` (standalone) or `/sandbox/v1` (in the app).
    pub fn api(&self) -> Router {
        use axum::routing::post;
        let fault_rate = self.settings.fault_rate;
        Router::new()
            .route("/products", post(products::create).get(products::list))
            .route(
                "/products/{id}",
                get(retrieve::<Product>)
                    .post(products::update)
                    .delete(products::delete),
            )
            .route("/prices", post(prices::create).get(prices::list))
            .route("/prices/{id}", get(retrieve::<Price>).post(prices::update))
            .route("/customers", post(customers::create).get(customers::list))
            .route(
                "/customers/{id}",
                get(retrieve::<Customer>)
                    .post(customers::update)
                    .delete(delete::<Customer>),
            )
            .route("/checkout/sessions", post(checkout::create))
            .route("/checkout/sessions/{id}", get(retrieve::<CheckoutSession>))
            .route("/checkout/sessions/{id}/expire", post(checkout::expire))
            .route(
                "/subscriptions",
                post(subscriptions::create).get(subscriptions::list),
            )
            .route(
                "/subscriptions/{id}",
                get(retrieve::<Subscription>)
                    .post(subscriptions::update)
                    .delete(subscriptions::cancel),
            )
            .route(
                "/test_helpers/test_clocks",
                post(clocks::create).get(clocks::list),
            )
            .route(
                "/test_helpers/test_clocks/{id}",
                get(retrieve::<TestClock>).delete(clocks::delete),
            )
            .route(
                "/test_helpers/test_clocks/{id}/advance",
                post(clocks::advance),
            )
            .route(
                "/coupons",
                post(coupons::create_coupon).get(coupons::list_coupons),
            )
            .route(
                "/coupons/{id}",
                get(retrieve::<Coupon>)
                    .post(coupons::update_coupon)
                    .delete(delete::<Coupon>),
            )
            .route(
                "/promotion_codes",
                post(coupons::create_promotion_code).get(coupons::list_promotion_codes),
            )
            .route(
                "/promotion_codes/{id}",
                get(retrieve::<PromotionCode>).post(coupons::update_promotion_code),
            )
            .route(
                "/customers/{id}/payment_methods",
                get(payment_methods::list_for_customer),
            )
            .route(
                "/payment_methods",
                post(payment_methods::create).get(payment_methods::list),
            )
            .route("/payment_methods/{id}", get(payment_methods::retrieve))
            .route(
                "/payment_methods/{id}/attach",
                post(payment_methods::attach),
            )
            .route(
                "/payment_methods/{id}/detach",
                post(payment_methods::detach),
            )
            .route(
                "/webhook_endpoints",
                post(endpoints::create).get(endpoints::list),
            )
            .route(
                "/webhook_endpoints/{id}",
                get(retrieve::<WebhookEndpoint>)
                    .post(endpoints::update)
                    .delete(delete::<WebhookEndpoint>),
            )
            .route("/invoices", get(invoices::list))
            .route("/invoices/{id}", get(retrieve::<Invoice>))
            .route("/invoices/{id}/pay", post(invoices::pay_endpoint))
            .route("/payment_intents", get(payments::list_payment_intents))
            .route("/payment_intents/{id}", get(retrieve::<PaymentIntent>))
            .route("/charges", get(payments::list_charges))
            .route("/charges/{id}", get(retrieve::<Charge>))
            .route(
                "/refunds",
                post(payments::create_refund).get(payments::list_refunds),
            )
            .route("/refunds/{id}", get(retrieve::<Refund>))
            .route(
                "/billing_portal/configurations",
                post(portal::create_configuration).get(portal::list_configurations),
            )
            .route(
                "/billing_portal/configurations/{id}",
                get(retrieve::<PortalConfiguration>).post(portal::update_configuration),
            )
            .route("/billing_portal/sessions", post(portal::create_session))
            .route("/events", get(events::list))
            .route("/events/{id}", get(events::retrieve))
            .fallback(unknown_endpoint)
            .layer(middleware::from_fn_with_state(
                self.db.clone(),
                http::idempotency,
            ))
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                inject_faults(fault_rate, req, next)
            }))
            .with_state(self.clone())
    }
}

async fn unknown_endpoint(req: Request) -> StripeError {
    StripeError {
        status: axum::http::StatusCode::NOT_FOUND,
        ..StripeError::invalid(
            "url",
            format!(
                "Unrecognized request URL ({}: {}).",
                req.method(),
                req.uri().path()
            ),
        )
    }
}

/// Fault injection for reliability tests: with probability `rate`, a request fails the way
/// Stripe sometimes does (500, 429, or a connection that drops mid-response).
async fn inject_faults(rate: f64, req: Request, next: Next) -> Response {
    if !delivery::chance(rate) {
        return next.run(req).await;
    }
    match uuid::Uuid::new_v4().as_u128() % 3 {
        0 => StripeError::internal("injected fault").into_response(),
        1 => StripeError {
            status: axum::http::StatusCode::TOO_MANY_REQUESTS,
            kind: "invalid_request_error",
            code: Some("rate_limit"),
            message: "Too many requests hit the API too quickly.".into(),
            param: None,
            decline_code: None,
        }
        .into_response(),
        // A body that errors at once makes hyper drop the connection.
        _ => Response::new(axum::body::Body::from_stream(futures::stream::once(
            async {
                Err::<Vec<u8>, _>(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected connection reset",
                ))
            },
        ))),
    }
}
