//! The pricing page as a visitor who is not logged in sees it, kept rendered and compressed.
//!
//! It is the page strangers (and traffic spikes) hit, and for them it depends on the catalog
//! alone: the same bytes until a product or price changes. Every instance keeps its own copy
//! and forgets it when Postgres says the catalog changed (a trigger on `products` and `prices`
//! notifies [`CHANNEL`], whoever wrote: a webhook, `sync-catalog`, another instance). While
//! the listener is not connected, nothing is kept: a change could go unheard.
//!
//! A kept page cannot carry a fresh nonce for its scripts, so its Content-Security-Policy
//! names their hashes instead (`'sha256-…'`): the page's own inline scripts run, nothing
//! else inline does. Logged-in visitors, other queries and anything but a 200 are rendered
//! as always.

use crate::middleware::PageScripts;
use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use sqlx::{postgres::PgListener, PgPool};
use std::{
    collections::HashMap,
    io::Write as _,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::{Duration, Instant},
};

/// What the catalog's trigger notifies (migration 0016).
pub const CHANNEL: &str = "catalog_changed";

/// The only pages kept, by path and query: a stranger's made-up queries are rendered, never
/// stored, so memory stays bounded.
const KEPT: [&str; 3] = [
    "/pricing",
    "/pricing?interval=month",
    "/pricing?interval=year",
];

/// A rendered pricing page is some 20 KB; anything far larger is not one to keep.
const MAX_PAGE: usize = 1024 * 1024;

/// How long a kept page is served at most, whatever the notifications say: a bound on how
/// stale it can be if they stop arriving while the connection looks alive (a pooler in
/// transaction mode, say, which does not carry `LISTEN`). One render a minute costs nothing.
const MAX_AGE: Duration = Duration::from_secs(60);

fn fresh(kept_at: Instant, now: Instant) -> bool {
    now.saturating_duration_since(kept_at) < MAX_AGE
}

#[derive(Clone, Default)]
pub struct PageCache(Arc<Inner>);

#[derive(Default)]
struct Inner {
    /// Moves on with every catalog change, and whenever one may have gone unheard: a page
    /// rendered before it moved is not kept.
    generation: AtomicU64,
    /// Only while Postgres's notifications can reach this instance.
    listening: AtomicBool,
    pages: RwLock<HashMap<&'static str, Arc<Page>>>,
}

struct Page {
    html: Bytes,
    gzip: Bytes,
    content_type: HeaderValue,
    /// The CSP sources of its inline scripts (`'sha256-…' …`).
    scripts: String,
    kept_at: Instant,
}

impl PageCache {
    fn get(&self, key: &str) -> Option<Arc<Page>> {
        if !self.0.listening.load(Ordering::Acquire) {
            return None;
        }
        let page = self.0.pages.read().ok()?.get(key).cloned()?;
        fresh(page.kept_at, Instant::now()).then_some(page)
    }

    fn generation(&self) -> u64 {
        self.0.generation.load(Ordering::Acquire)
    }

    /// Keeps `page`, rendered when the generation was `generation`, unless the catalog
    /// changed (or may have) since.
    /// Whether a page rendered at `generation` may still be kept: the catalog has not
    /// changed since (as far as this instance can hear).
    fn may_keep(&self, generation: u64) -> bool {
        self.0.listening.load(Ordering::Acquire) && self.generation() == generation
    }

    fn keep(&self, key: &'static str, generation: u64, page: Page) {
        let Ok(mut pages) = self.0.pages.write() else {
            return;
        };
        // Checked again under the write lock: [`Self::forget`] moves the generation before
        // it takes this lock to clear, so a stale page cannot slip in after the clearing.
        if self.may_keep(generation) {
            pages.insert(key, Arc::new(page));
        }
    }

    /// The catalog changed (or may have): every kept page goes.
    fn forget(&self) {
        self.0.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut pages) = self.0.pages.write() {
            pages.clear();
        }
    }

    fn set_listening(&self, listening: bool) {
        self.forget();
        self.0.listening.store(listening, Ordering::Release);
    }

    /// Follows the catalog's notifications for as long as the process runs, on a
    /// connection of its own (not one of the pool's), reconnecting after a loss.
    pub fn spawn_listener(&self, db: &PgPool) {
        let cache = self.clone();
        let options = db.connect_options().as_ref().clone();
        let own = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(options);
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                match cache.listen(&own).await {
                    Ok(()) => failures = 0,
                    Err(e) => {
                        failures += 1;
                        // Once per outage; it keeps trying quietly.
                        if failures == 1 {
                            tracing::warn!(error = %e, "not following catalog changes; the pricing page is rendered for every visitor until this reconnects");
                        }
                    }
                }
                cache.set_listening(false);
                // 1 s after a lost connection, then backing off to 30 s while Postgres
                // refuses: pages are rendered meanwhile, and a database that is gone is not
                // asked every second.
                let wait = 1u64 << failures.min(5);
                tokio::time::sleep(Duration::from_secs(wait.min(30))).await;
            }
        });
    }

    /// Listens until the connection is lost (`Ok`) or cannot be made.
    async fn listen(&self, db: &PgPool) -> sqlx::Result<()> {
        let mut listener = PgListener::connect_with(db).await?;
        // A lost connection ends this at once. By default sqlx reconnects inside `try_recv`
        // before it reports the loss, and that waits for the dead connection's close (up to
        // 5 s) and a new connection, while kept pages go on being served; the caller stops
        // keeping them first, then reconnects.
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        // Anything before this moment may have gone unheard.
        self.set_listening(true);
        loop {
            match listener.try_recv().await? {
                Some(_) => self.forget(),
                None => {
                    tracing::debug!("the catalog listener's connection was lost");
                    return Ok(());
                }
            }
        }
    }
}

/// The key of a request whose answer may be kept: a GET of a kept page without a session.
fn kept_key(req: &Request) -> Option<&'static str> {
    if req.method() != Method::GET {
        return None;
    }
    let asked = req.uri().path_and_query()?.as_str();
    let key = KEPT.iter().find(|k| **k == asked)?;
    // The secure name ends with the plain one.
    let name = crate::accounts::SESSION_COOKIE.as_bytes();
    let has_session = req.headers().get_all(header::COOKIE).iter().any(|v| {
        v.as_bytes()
            .windows(name.len() + 1)
            .any(|w| w.starts_with(name) && w[name.len()] == b'=')
    });
    (!has_session).then_some(*key)
}

/// Serves a kept page, or renders it and keeps it. Inside `middleware::page_policy`, which
/// writes the policy from what this leaves in [`PageScripts`].
pub async fn serve(State(cache): State<PageCache>, req: Request, next: Next) -> Response {
    let Some(key) = kept_key(&req) else {
        return next.run(req).await;
    };
    let scripts = req.extensions().get::<PageScripts>().cloned();
    let gzip = accepts_gzip(&req);
    if let Some(page) = cache.get(key) {
        if let Some(slot) = scripts {
            slot.set_sources(page.scripts.clone());
        }
        return page.response(gzip);
    }
    let generation = cache.generation();
    let res = next.run(req).await;
    // Nothing is read back or compressed for a page that could not be kept anyway (while the
    // listener is down, or the catalog changed during the render).
    let keepable = res.status() == StatusCode::OK
        && !res.headers().contains_key(header::SET_COOKIE)
        && cache.may_keep(generation);
    if !keepable {
        return res;
    }
    let (parts, body) = res.into_parts();
    let html = match axum::body::to_bytes(body, MAX_PAGE).await {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "the pricing page could not be read back");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    if let Some(page) = Page::new(html.clone(), parts.headers.get(header::CONTENT_TYPE)) {
        cache.keep(key, generation, page);
    }
    Response::from_parts(parts, Body::from(html))
}

impl Page {
    fn new(html: Bytes, content_type: Option<&HeaderValue>) -> Option<Self> {
        let content_type = content_type?.clone();
        let text = std::str::from_utf8(&html).ok()?;
        let scripts = inline_scripts(text)
            .map(|script| {
                let hash = Sha256::digest(script.as_bytes());
                format!(
                    "'sha256-{}'",
                    base64::engine::general_purpose::STANDARD.encode(hash)
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&html).ok()?;
        let gzip = encoder.finish().ok()?.into();
        Some(Self {
            html,
            gzip,
            content_type,
            scripts,
            kept_at: Instant::now(),
        })
    }

    fn response(&self, gzip: bool) -> Response {
        let mut res = Response::new(Body::from(if gzip {
            self.gzip.clone()
        } else {
            self.html.clone()
        }));
        let headers = res.headers_mut();
        headers.insert(header::CONTENT_TYPE, self.content_type.clone());
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        if gzip {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        res
    }
}

/// The bodies of the page's inline scripts (those without `src`), as the browser hashes
/// them. The page is Leptos's own output, where text and attribute values are escaped.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    let mut rest = html;
    std::iter::from_fn(move || loop {
        let start = rest.find("<script")?;
        let tag = &rest[start..];
        let open_end = tag.find('>')?;
        let attributes = &tag["<script".len()..open_end];
        let is_script_tag = attributes.is_empty()
            || attributes.starts_with(|c: char| c.is_ascii_whitespace() || c == '/');
        if !is_script_tag {
            // Another element whose name starts so (`<scripts-…>`).
            rest = &tag["<script".len()..];
            continue;
        }
        let body_start = open_end + 1;
        let close = tag[body_start..].find("</script>")?;
        let body = &tag[body_start..body_start + close];
        rest = &tag[body_start + close..];
        if !attributes.contains("src=") {
            return Some(body);
        }
    })
}

/// Whether the client takes gzip (`Accept-Encoding`, with no `q=0` for it).
fn accepts_gzip(req: &Request) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_inline_scripts_are_hashed() {
        let html = r#"<head><script type="module" nonce="n">import('/pkg/a.js')</script>
            <script src="/pkg/b.js"></script><scripts-not>x</scripts-not>
            <script>window.a=1</script></head>"#;
        let found: Vec<_> = inline_scripts(html).collect();
        assert_eq!(found, vec!["import('/pkg/a.js')", "window.a=1"]);
    }

    #[test]
    fn a_kept_page_is_served_for_a_minute_at_most() {
        let kept = Instant::now();
        assert!(fresh(kept, kept));
        assert!(fresh(kept, kept + Duration::from_secs(59)));
        assert!(!fresh(kept, kept + MAX_AGE));
    }

    #[test]
    fn gzip_is_sent_only_to_who_takes_it() {
        let with = |value: &str| {
            let req = Request::builder()
                .header(header::ACCEPT_ENCODING, value)
                .body(Body::empty())
                .unwrap();
            accepts_gzip(&req)
        };
        assert!(with("br, gzip"));
        assert!(with("gzip;q=0.5"));
        assert!(!with("br"));
        assert!(!with("gzip;q=0"));
        assert!(!with("identity"));
    }

    #[test]
    fn only_the_pricing_page_without_a_session_is_kept() {
        let key = |method: Method, uri: &str, cookie: Option<&str>| {
            let mut req = Request::builder().method(method).uri(uri);
            if let Some(c) = cookie {
                req = req.header(header::COOKIE, c);
            }
            kept_key(&req.body(Body::empty()).unwrap())
        };
        assert_eq!(key(Method::GET, "/pricing", None), Some("/pricing"));
        assert_eq!(
            key(Method::GET, "/pricing?interval=year", Some("theme=dark")),
            Some("/pricing?interval=year")
        );
        assert_eq!(key(Method::GET, "/pricing", Some("sb_session=abc")), None);
        assert_eq!(
            key(Method::GET, "/pricing", Some("a=1; __Host-sb_session=abc")),
            None
        );
        assert_eq!(key(Method::GET, "/pricing?interval=week", None), None);
        assert_eq!(key(Method::GET, "/pricing?__err=x", None), None);
        assert_eq!(key(Method::POST, "/pricing", None), None);
        assert_eq!(key(Method::GET, "/dashboard", None), None);
    }
}
