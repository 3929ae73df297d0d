//! The browser bundle (`<site root>/pkg`: the wasm, its JS loader and the stylesheet),
//! served under `/pkg/<version>/`, where the version is derived from the files' contents.
//! A new build is a new URL, so browsers and CDNs may keep each file for a year without
//! asking again (`immutable`), while pages stay `no-cache` and always name the current one.
//! `scripts/lib.sh` lays the `.br` and `.gz` siblings beside each file at build time; they
//! are sent as they are to clients that accept them, so nothing is compressed per request.
//!
//! The files of `public/` (copied to the top of the site root: the favicon) keep their
//! names, so they may be kept for a day, not for good; they are served here too, before the
//! pages' fallback, by the same file service.

use axum::{
    extract::{Path, Request, State},
    http::{header, HeaderValue, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use sha2::{Digest, Sha256};
use std::{path::PathBuf, sync::Arc};
use tower::ServiceExt;
use tower_http::services::ServeDir;

/// The files whose contents name the version; the page links exactly these.
const BUNDLE: [&str; 3] = ["saas-billing.js", "saas-billing.wasm", "saas-billing.css"];

const FOREVER: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");

/// For `public/`'s files, whose names do not change with their contents.
const A_DAY: HeaderValue = HeaderValue::from_static("public, max-age=86400");

#[derive(Clone)]
pub struct Assets(Arc<Inner>);

struct Inner {
    version: String,
    files: ServeDir,
    /// The names of the files at the top of the site root (`public/`'s), and their service.
    public: Vec<String>,
    public_files: ServeDir,
}

impl Assets {
    /// Reads the bundle once at start-up: a rebuilt bundle is served by a restarted server
    /// (a running one keeps answering for the files it named). Missing files (the tests run
    /// without a bundle) simply hash as absent.
    pub fn load(site_root: &str) -> Self {
        let dir = PathBuf::from(site_root).join("pkg");
        let mut hash = Sha256::new();
        for name in BUNDLE {
            hash.update(name.as_bytes());
            match std::fs::read(dir.join(name)) {
                Ok(bytes) => hash.update(&bytes),
                Err(_) => hash.update(b"\0absent"),
            }
        }
        let version = hex::encode(&hash.finalize()[..8]);
        let files = ServeDir::new(dir)
            .precompressed_br()
            .precompressed_gzip()
            .append_index_html_on_directories(false);
        let public = std::fs::read_dir(site_root)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| !name.ends_with(".br") && !name.ends_with(".gz"))
            // Only plain names make routes (no `{`, `*` or `/` for the router to read).
            .filter(|name| {
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
            })
            .collect();
        let public_files = ServeDir::new(site_root)
            .precompressed_br()
            .precompressed_gzip()
            .append_index_html_on_directories(false);
        Self(Arc::new(Inner {
            version,
            files,
            public,
            public_files,
        }))
    }

    /// Leptos's `site_pkg_dir`: the hydration scripts and the stylesheet link point here.
    pub fn pkg_dir(&self) -> String {
        format!("pkg/{}", self.0.version)
    }

    /// `GET /pkg/<version>/<file>`. Anything else under `/pkg` is a 404: another version is
    /// never answered with today's file, because during a rolling deploy an old page may ask
    /// an upgraded instance, and today's bytes cached for good under yesterday's URL would
    /// stay wrong.
    pub fn router<S>(&self) -> Router<S> {
        let mut router = Router::new().route("/pkg/{*path}", get(serve));
        for name in &self.0.public {
            router = router.route(&format!("/{name}"), get(serve_public));
        }
        router.with_state(self.clone())
    }
}

/// `GET /<file of public/>`, cached for a day.
async fn serve_public(State(assets): State<Assets>, req: Request) -> Response {
    let Ok(mut res) = assets.0.public_files.clone().oneshot(req).await;
    if res.status().is_success() || res.status() == StatusCode::NOT_MODIFIED {
        res.headers_mut().insert(header::CACHE_CONTROL, A_DAY);
    }
    res.into_response()
}

async fn serve(State(assets): State<Assets>, Path(path): Path<String>, req: Request) -> Response {
    let Some(file) = path
        .strip_prefix(assets.0.version.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (mut parts, body) = req.into_parts();
    let Ok(uri) = format!("/{file}").parse::<Uri>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    parts.uri = uri;
    let Ok(mut res) = assets
        .0
        .files
        .clone()
        .oneshot(Request::from_parts(parts, body))
        .await;
    // Only what was found is cacheable: a 404 must be asked again next time.
    if res.status().is_success() || res.status() == StatusCode::NOT_MODIFIED {
        res.headers_mut().insert(header::CACHE_CONTROL, FOREVER);
    }
    res.into_response()
}
