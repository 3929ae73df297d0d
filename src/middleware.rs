//! HTTP concerns that wrap every route: request ids and tracing, a time limit, security
//! headers, the same-origin rule for state-changing requests, and body limits.

use crate::error::AppError;
use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    Router,
};
use std::{sync::Arc, time::Duration};
use tower::ServiceBuilder;
use tower_http::{
    compression::CompressionLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

/// Forms and server functions are far below this; anything larger is refused at once.
pub const FORM_BODY_LIMIT: usize = 64 * 1024;

/// What every response of a deployment is held to.
#[derive(Clone)]
pub struct Protection {
    /// The public origin (`scheme://host:port` of `APP_URL`): the only one allowed to send
    /// state-changing requests from a browser.
    pub origin: Arc<str>,
    /// `Strict-Transport-Security` when the app is served over https.
    pub https: bool,
    /// A request that takes longer is answered 503 and its work dropped.
    pub request_timeout: Duration,
}

/// The content policy of pages rendered outside Leptos (the sandbox's hosted pages, the dev
/// mailbox): a stylesheet from this origin, no script at all. Leptos pages set their own,
/// with the nonce of their hydration script.
const PLAIN_PAGE_CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'";

pub fn outer_layers(router: Router, protection: &Protection) -> Router {
    let hsts = protection.https.then(|| {
        SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        )
    });
    router
        .layer(middleware::from_fn_with_state(
            protection.origin.clone(),
            same_origin_writes,
        ))
        .layer(middleware::from_fn(plain_page_policy))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    // The path only: query strings can carry tokens.
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::x_request_id())
                // A hung handler (a stuck render, a database that does not answer) must not
                // hold the connection forever.
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::SERVICE_UNAVAILABLE,
                    protection.request_timeout,
                ))
                // Pages, JSON and the wasm bundle travel gzipped when the client accepts it.
                .layer(CompressionLayer::new().gzip(true))
                .option_layer(hsts)
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("strict-origin-when-cross-origin"),
                )),
        )
}

/// Where a page leaves what its scripts may be for [`page_policy`]: the nonce of Leptos's
/// hydration scripts, or the hashes of a kept page's inline scripts (`catalog::cache`).
#[derive(Clone, Default)]
pub struct PageScripts(Arc<std::sync::Mutex<Option<String>>>);

impl PageScripts {
    pub fn set_nonce(&self, nonce: &str) {
        self.set_sources(format!("'nonce-{nonce}'"));
    }

    /// CSP source expressions (`'nonce-…'`, `'sha256-…'`), space-separated.
    pub fn set_sources(&self, sources: String) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(sources);
        }
    }

    fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|slot| slot.clone())
    }
}

/// The policy of the app's pages: only scripts from this origin and the page's own inline
/// ones (by this response's nonce, or by hash on a kept page), styles, images and data from
/// this origin, forms to this origin or to Stripe's hosted pages (`form_targets`), no
/// framing. The page leaves its script sources in the request ([`PageScripts`]); Leptos has
/// rendered the whole page by the time the response comes back here, so they are there
/// when the header is written.
pub async fn page_policy(
    State(form_targets): State<Arc<str>>,
    mut req: Request,
    next: Next,
) -> Response {
    let slot = PageScripts::default();
    req.extensions_mut().insert(slot.clone());
    let mut res = next.run(req).await;
    if let Some(scripts) = slot.get() {
        let policy = format!(
            "default-src 'self'; script-src 'self' {scripts} 'wasm-unsafe-eval'; style-src 'self'; \
             img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; \
             frame-ancestors 'none'; form-action {form_targets}"
        );
        if let Ok(value) = HeaderValue::from_str(&policy) {
            res.headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
    res
}

/// Where the app's forms may lead: here, Stripe's Checkout and Portal, or the
/// Stripe-compatible server the app was pointed at.
pub fn form_targets(stripe_api_base: Option<&url::Url>) -> Arc<str> {
    let mut targets = "'self' https://checkout.stripe.com https://billing.stripe.com".to_owned();
    if let Some(base) = stripe_api_base {
        targets.push(' ');
        targets.push_str(&base.origin().ascii_serialization());
    }
    targets.into()
}

/// Gives HTML without a Content-Security-Policy the plain pages' one, and `no-cache`.
async fn plain_page_policy(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if is_html && !res.headers().contains_key(header::CONTENT_SECURITY_POLICY) {
        res.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PLAIN_PAGE_CSP),
        );
    }
    // Pages name the current bundle and show the signed-in user's state: a browser may keep
    // one but must ask again before showing it.
    if is_html && !res.headers().contains_key(header::CACHE_CONTROL) {
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    res
}

/// Refuses state-changing requests that a browser sent from another origin: the `Origin`
/// header must be exactly this deployment's (scheme, host and port of `APP_URL`; the `Host`
/// header proves nothing, an attacker's request can carry any). Without `Origin`, a browser's
/// `Sec-Fetch-Site` must say same-origin (or none: typed by the user). SameSite=Lax cookies
/// already keep the session off such requests; this also stops login CSRF and keeps a
/// cross-site form from reaching server functions or the sandbox's pages at all. Requests
/// without browser headers (API clients, Stripe's webhooks) pass.
pub async fn same_origin_writes(
    State(origin): State<Arc<str>>,
    req: Request,
    next: Next,
) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let from_elsewhere = match headers.get(header::ORIGIN).map(|v| v.to_str()) {
        Some(Ok(given)) => given != &*origin,
        Some(Err(_)) => true,
        None => !matches!(
            headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
            None | Some("same-origin" | "none")
        ),
    };
    if from_elsewhere {
        tracing::warn!(path = %req.uri().path(), "refused a cross-origin write");
        return AppError::Forbidden.into_response();
    }
    next.run(req).await
}

/// Refuses a body larger than `max` with a 413, reading at most `max` bytes of it: a
/// declared length is checked before anything is read, and a streamed body is cut off at
/// the limit.
pub async fn limit_body(State(max): State<usize>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return AppError::TooLarge.into_response();
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, max).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(_) => AppError::TooLarge.into_response(),
    }
}

/// Unknown `/api/...` paths get JSON, not the HTML 404 page.
pub async fn api_not_found() -> Response {
    AppError::NotFound.into_response()
}
