//! The browser bundle (`<site root>/pkg`: the wasm, its JS loader and the stylesheet),
//! served under `/pkg/<version>/`, where the version is derived from the files' contents.
//! A new build is a new URL, so browsers and CDNs may keep each file for a year without
//! asking again (`immutable`), while pages stay `no-cache` and always name the current one.
//! `scripts/lib.sh` lays the `.br` and `.gz` siblings beside each file at build time; they
//! are sent as they are to clients that accept them, so nothing is compressed per request.

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

#[derive(Clone)]
pub struct Assets(Arc<Inner>);

struct Inner {
    version: String,
    files: ServeDir,
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
        Self(Arc::new(Inner { version, files }))
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
        Router::new()
            .route("/pkg/{*path}", get(serve))
            .with_state(self.clone())
    }
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
