//! What a stranger can reach, tried the way an attacker with a browser and curl would. One
//! test (or a few) per hole in the security review (issue 10), in its order:
//!
//! 1. cross-site scripting and writes through the sandbox's pages, redirects, content policy;
//! 2. sandbox mode on a public address, the dashboard's and the mailbox's token;
//! 3. blank webhook secrets;
//! 4. the sandbox's webhooks as a port scanner (here as the app wires it; every case is in
//!    the sandbox crate's `tests/sandbox/security.rs`, with escaping and `url_invalid`);
//! 5. body limits, the request timeout, hashing under load, the password cap;
//! 6. the login limiter (races, networks, proxies);
//! 7. trials, plans and concurrent checkouts;
//! * and the low ones: signature timestamps, error text in links, the session cookie,
//!   signup enumeration and email verification.

use crate::helpers::*;
use reqwest::{header, Method, Response, StatusCode};
use saas_billing::config::Config;
use std::{sync::Arc, time::Duration};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const EVIL: &str = "https://evil.example";
const TOKEN: &str = "a-dashboard-token-for-the-tests";

/// A client with no cookies: someone who never used the app.
fn stranger() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The id at the end of a hosted Checkout URL.
fn session_id(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

/// A one-time price on the app's sandbox account (not offered on the pricing page).
async fn one_time_price(app: &TestApp) -> String {
    let product = ok(app, Method::POST, "/products", &[("name", "Mug")]).await;
    let price = ok(
        app,
        Method::POST,
        "/prices",
        &[
            ("product", product["id"].as_str().unwrap()),
            ("unit_amount", "900"),
            ("currency", "usd"),
        ],
    )
    .await;
    price["id"].as_str().unwrap().to_owned()
}

/// An open Checkout Session for a one-time price that returns to the app; its hosted URL.
async fn open_payment_session(app: &TestApp) -> String {
    let price = one_time_price(app).await;
    let done = app.at("/pricing");
    let session = ok(
        app,
        Method::POST,
        "/checkout/sessions",
        &[
            ("mode", "payment"),
            ("line_items[0][price]", &price),
            ("success_url", &done),
            ("automatic_tax[enabled]", "true"),
        ],
    )
    .await;
    session["url"].as_str().unwrap().to_owned()
}

// 1. Cross-site scripting and cross-origin writes ------------------------------------------

#[tokio::test]
async fn the_sandbox_pages_take_no_cross_origin_posts_and_escape_what_they_echo() {
    let app = spawn_app().await;
    let url = open_payment_session(&app).await;
    let attack = "<script>alert(document.cookie)</script>";
    let form = [("action", "apply"), ("country", attack)];
    // Another site's form, and the same host over another scheme: refused before the page
    // sees them.
    let port = app.url.rsplit(':').next().unwrap();
    for origin in [EVIL, &format!("https://127.0.0.1:{port}"), "null"] {
        let res = stranger()
            .post(&url)
            .header(header::ORIGIN, origin)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "Origin: {origin}");
    }
    let res = stranger()
        .post(&url)
        .header("sec-fetch-site", "cross-site")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // From the app's own origin the page answers, and what was typed comes back as text.
    let page = assert_status(
        stranger()
            .post(&url)
            .header(header::ORIGIN, &app.url)
            .form(&form)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("&lt;SCRIPT&gt;"), "{page}");
}

#[tokio::test]
async fn server_functions_take_writes_only_from_the_apps_own_origin() {
    let app = spawn_app().await;
    let email = unique_email("csrf");
    let signup = |origin: Option<String>| {
        let mut req = app.client.post(app.at("/api/signup"));
        if let Some(origin) = origin {
            req = req.header(header::ORIGIN, origin);
        }
        req.form(&[("email", email.as_str()), ("password", PASSWORD)])
            .send()
    };
    // The Host header proves nothing: only APP_URL's scheme, host and port count.
    let port = app.url.rsplit(':').next().unwrap();
    for origin in [
        EVIL.to_owned(),
        format!("https://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        "null".to_owned(),
    ] {
        let res = signup(Some(origin.clone())).await.unwrap();
        assert_status(res, StatusCode::FORBIDDEN).await;
    }
    assert_eq!(app.user_count().await, 0);
    let res = signup(Some(app.url.clone())).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // A cross-site logout cannot end the session.
    let res = app
        .client
        .post(app.at("/api/logout"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get("/dashboard").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn customers_are_sent_back_only_to_the_app_and_links_use_its_public_url() {
    let app = spawn_app().await;
    let price = one_time_price(&app).await;
    let done = app.at("/pricing");
    let form = |param: &'static str, url: &'static str| {
        let mut form = vec![
            ("mode", "payment"),
            ("line_items[0][price]", price.as_str()),
            ("success_url", done.as_str()),
        ];
        form.retain(|(k, _)| *k != param);
        form.push((param, url));
        form
    };
    for (param, url) in [
        ("success_url", "javascript:alert(1)"),
        ("success_url", "https://evil.example/phish"),
        ("cancel_url", "data:text/html,<script>alert(1)</script>"),
    ] {
        let (status, body) = api(&app, Method::POST, "/checkout/sessions", &form(param, url)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{param}={url}: {body}");
        assert_eq!(body["error"]["code"], "url_invalid", "{body}");
        assert_eq!(body["error"]["param"], param);
    }

    // Links to hosted pages come from APP_URL, whatever Host the request claimed.
    let key = app.setting("sandbox_secret_key").await;
    let res = app
        .client
        .post(app.at("/sandbox/v1/checkout/sessions"))
        .header(header::HOST, "evil.example")
        .bearer_auth(&key)
        .form(&[
            ("mode", "payment"),
            ("line_items[0][price]", price.as_str()),
            ("success_url", done.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let session: serde_json::Value = res.json().await.unwrap();
    let url = session["url"].as_str().unwrap_or_default();
    assert!(
        url.starts_with(&format!("{}/sandbox/checkout/", app.url)),
        "{session}"
    );
}

/// The `Content-Security-Policy` of a response, which every HTML response must have.
fn policy(res: &Response) -> String {
    res.headers()
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap_or_else(|| panic!("{} has no Content-Security-Policy", res.url()))
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn every_html_response_carries_a_content_policy_and_scripts_need_its_nonce() {
    let app = spawn_app_with(|c| c.sandbox.dashboard_token = TOKEN.into()).await;
    // Leptos pages: only scripts with this response's nonce run.
    for path in ["/pricing", "/login", "/no-such-page"] {
        let res = app.get(path).await;
        let csp = policy(&res);
        let nonce = csp
            .split("'nonce-")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("{path}: no nonce in {csp}"))
            .to_owned();
        assert!(
            csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        let page = res.text().await.unwrap();
        let scripts = page.matches("<script").count();
        assert!(scripts > 0, "{path} hydrates with a script");
        assert_eq!(
            page.matches(&format!("nonce=\"{nonce}\"")).count(),
            scripts,
            "{path}: every script carries the nonce"
        );
    }
    // Pages outside Leptos (hosted Checkout, the token page, the mailbox) run no script at all.
    let url = open_payment_session(&app).await;
    app.get(&format!("/dev/mailbox?token={TOKEN}")).await;
    for res in [
        app.client.get(&url).send().await.unwrap(),
        stranger().get(app.at("/sandbox")).send().await.unwrap(),
        app.get("/dev/mailbox").await,
    ] {
        assert!(res.status() != StatusCode::SEE_OTHER, "{}", res.url());
        let csp = policy(&res);
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script-src"),
            "{}: {csp}",
            res.url()
        );
    }
    // Plain http: no HSTS (it would pin a local demo to https).
    assert!(app
        .get("/pricing")
        .await
        .headers()
        .get(header::STRICT_TRANSPORT_SECURITY)
        .is_none());
}

#[tokio::test]
async fn an_https_deployment_gets_hsts_and_a_host_only_secure_session_cookie() {
    let app = spawn_app_with(|c| {
        c.app_url = "https://127.0.0.1:0/".parse().unwrap();
        c.cookie_secure = true;
    })
    .await;
    let res = app.get("/pricing").await;
    let hsts = res.headers()[header::STRICT_TRANSPORT_SECURITY]
        .to_str()
        .unwrap();
    assert!(hsts.contains("max-age=31536000"), "{hsts}");

    let res = app.signup(&unique_email("secure"), PASSWORD).await;
    let cookie = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.contains("sb_session"))
        .expect("signup sets the session cookie");
    assert!(cookie.starts_with("__Host-sb_session="), "{cookie}");
    for part in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    assert!(!cookie.to_lowercase().contains("domain="), "{cookie}");
}

// 2. Sandbox mode on a public address; the dashboard's token -------------------------------

/// Runs the real binary with only `env` (and a database it must not need), from a folder
/// without a `.env`, and returns its exit status and what it printed.
async fn run_binary(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_saas-billing"));
    child
        .args(args)
        .current_dir(std::env::temp_dir())
        .env_clear()
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/unreachable")
        .env("RUST_LOG", "info");
    for (k, v) in env {
        child.env(k, v);
    }
    // It must stop by itself at once: a server that started would hang here, and fail.
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || child.output()),
    )
    .await
    .expect("the binary exits by itself")
    .unwrap()
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[tokio::test]
async fn sandbox_mode_refuses_to_start_on_a_public_address() {
    for (args, env) in [
        (vec![], vec![("HOST", "0.0.0.0")]),
        (vec![], vec![("APP_URL", "https://billing.example.com")]),
        (vec!["sandbox"], vec![("HOST", "0.0.0.0")]),
        (vec!["sandbox"], vec![("HOST", "::")]),
    ] {
        let (code, said) = run_binary(&args, &env).await;
        assert_eq!(code, Some(2), "{args:?} {env:?}: {said}");
        assert!(
            said.contains("public address") && said.contains("SANDBOX_PUBLIC=1"),
            "one clear line: {said}"
        );
        assert_eq!(said.trim().lines().count(), 1, "{said}");
    }
    // With a key it is not the sandbox, and the safe answer is a missing webhook secret.
    let (code, said) = run_binary(
        &[],
        &[("HOST", "0.0.0.0"), ("STRIPE_SECRET_KEY", "sk_test_123")],
    )
    .await;
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains("STRIPE_WEBHOOK_SECRET"), "{said}");
}

#[tokio::test]
async fn the_dashboard_and_the_mailbox_need_the_printed_token() {
    let app = spawn_app_with(|c| c.sandbox.dashboard_token = TOKEN.into()).await;
    let user = signed_up_user(&app, "mailbox").await;
    let clock = ok(
        &app,
        Method::POST,
        "/test_helpers/test_clocks",
        &[("frozen_time", &now().to_string())],
    )
    .await;
    let clock = clock["id"].as_str().unwrap();
    let stranger = stranger();
    for (method, path) in [
        (Method::GET, "/sandbox".to_owned()),
        (Method::GET, "/sandbox?token=wrong".to_owned()),
        (Method::GET, "/dev/mailbox".to_owned()),
        (
            Method::GET,
            "/dev/mailbox?token=a-dashboard-token-for-the-test".to_owned(),
        ),
        (Method::POST, format!("/sandbox/clocks/{clock}/advance")),
    ] {
        let res = stranger
            .request(method.clone(), app.at(&path))
            .header(header::ORIGIN, &app.url)
            .form(&[("days", "30")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let page = res.text().await.unwrap();
        assert!(page.contains("needs the sandbox's token"), "{page}");
        assert!(!page.contains(&user.email));
    }
    let frozen = ok(
        &app,
        Method::GET,
        &format!("/test_helpers/test_clocks/{clock}"),
        &[],
    )
    .await;
    assert_eq!(frozen["status"], "ready", "the clock did not move");

    // The printed link: the token becomes a cookie and leaves the address.
    let res = app.get(&format!("/dev/mailbox?token={TOKEN}")).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/dev/mailbox");
    let mailbox = assert_status(app.get("/dev/mailbox").await, StatusCode::OK).await;
    assert!(
        mailbox.contains(&user.email),
        "the mailbox opens with the cookie"
    );
    assert_status(app.get("/sandbox").await, StatusCode::OK).await;
}

// 3. Webhook secrets -------------------------------------------------------------------------

#[tokio::test]
async fn a_blank_webhook_secret_verifies_nothing() {
    let config = |secret: &str| {
        Config::from_lookup(|name| match name {
            "DATABASE_URL" => Some("postgres://localhost/x".into()),
            "STRIPE_SECRET_KEY" => Some("sk_test_123".into()),
            "STRIPE_WEBHOOK_SECRET" => Some(secret.into()),
            _ => None,
        })
    };
    assert_eq!(config("whsec_a,").unwrap().stripe_webhook_secrets.len(), 1);
    assert_eq!(
        config(" , whsec_b ,,")
            .unwrap()
            .stripe_webhook_secrets
            .len(),
        1
    );
    for refused in [",", " ", "secret", "whsec_"] {
        assert!(
            config(refused).is_err(),
            "{refused:?} is refused at start-up"
        );
    }

    // An app started with the trailing comma takes no event signed with an empty key.
    let t = spawn_test_mode_app("whsec_a,", |_| {}).await;
    let user = signed_up_user(&t.app, "forger").await;
    let forged = event(
        "evt_forged",
        "customer.subscription.created",
        serde_json::json!({
            "id": "sub_forged", "object": "subscription", "customer": "cus_forged",
            "status": "active", "metadata": { "user_id": user.id.to_string() },
            "items": { "object": "list", "data": [], "has_more": false, "url": "/v1/subscription_items" },
        }),
    );
    let res = deliver(&t.app, &forged, "").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let recorded: i64 =
        sqlx::query_scalar("select count(*) from stripe_events where id = 'evt_forged'")
            .fetch_one(&t.app.db)
            .await
            .unwrap();
    let forged_sub: i64 =
        sqlx::query_scalar("select count(*) from subscriptions where id = 'sub_forged'")
            .fetch_one(&t.app.db)
            .await
            .unwrap();
    assert_eq!(
        (recorded, forged_sub),
        (0, 0),
        "the forged event changed nothing"
    );
    // The configured secret still verifies (an event type the app only records).
    let genuine = event("evt_genuine", "test_helpers.ping", serde_json::json!({}));
    let res = deliver(&t.app, &genuine, "whsec_a").await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn signature_timestamps_at_the_extremes_are_refused_not_a_panic() {
    let app = spawn_app().await;
    let body = event("evt_t", "customer.created", serde_json::json!({}));
    for t in [i64::MIN, i64::MAX, 0] {
        let res = app
            .client
            .post(app.at("/api/webhooks/stripe"))
            .header("stripe-signature", format!("t={t},v1=00"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "t={t}");
    }
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

// 4. The sandbox's webhooks and private addresses ------------------------------------------

#[tokio::test]
async fn only_the_apps_own_sandbox_account_delivers_to_private_addresses() {
    let app = spawn_app().await;
    let (receiver, hits) = spawn_receiver(0).await;
    let other = test_key();
    register_endpoint(&app, &other, &receiver).await;
    let (status, _) = sandbox_api(&app, Method::POST, "/customers", &other, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let refused = eventually(|| async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from stripe_sandbox.delivery_attempts where error like '%not public%'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap()
            > 0
    })
    .await;
    assert!(refused, "the delivery to loopback was refused");
    assert!(hits.lock().unwrap().is_empty(), "and nothing arrived");
}

// 5. Body limits, the timeout, hashing under load, the password cap -----------------------

/// Sends `POST path` with the declared `headers` and then up to `total` bytes of body in
/// 64 KiB chunks, and returns the status the server answered with and how many body bytes
/// it had taken (written into the socket) by then.
async fn post_streamed(app: &TestApp, path: &str, headers: &str, total: usize) -> (u16, usize) {
    let addr = app.url.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n{headers}\r\n"
    );
    write.write_all(head.as_bytes()).await.unwrap();
    let chunked = headers.contains("chunked");
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    let writer = tokio::spawn(async move {
        let chunk = vec![b'a'; 64 * 1024];
        let framed = format!("{:x}\r\n", chunk.len());
        while counter.load(std::sync::atomic::Ordering::Relaxed) < total {
            let ok = if chunked {
                write.write_all(framed.as_bytes()).await.is_ok()
                    && write.write_all(&chunk).await.is_ok()
                    && write.write_all(b"\r\n").await.is_ok()
            } else {
                write.write_all(&chunk).await.is_ok()
            };
            if !ok {
                break;
            }
            counter.fetch_add(chunk.len(), std::sync::atomic::Ordering::Relaxed);
        }
    });
    let mut answer = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(20), read.read_exact(&mut answer))
        .await
        .expect("the server answers long before the body ends")
        .unwrap();
    let taken = sent.load(std::sync::atomic::Ordering::Relaxed);
    writer.abort();
    let status = std::str::from_utf8(&answer[9..12])
        .unwrap()
        .parse()
        .unwrap();
    (status, taken)
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413_having_read_almost_nothing() {
    let app = spawn_app().await;
    let hundreds_of_mb = 300 * 1024 * 1024;
    for path in ["/api/login", "/api/signup", "/sandbox/v1/customers"] {
        // Declared up front: answered before a byte of the body is read.
        let (status, _) = post_streamed(
            &app,
            path,
            &format!("Content-Length: {hundreds_of_mb}\r\n"),
            0,
        )
        .await;
        assert_eq!(status, 413, "{path} with a declared length");
        // Streamed without a length: cut off at the limit, nowhere near 300 MB.
        let (status, taken) =
            post_streamed(&app, path, "Transfer-Encoding: chunked\r\n", hundreds_of_mb).await;
        assert_eq!(status, 413, "{path} streamed");
        assert!(
            taken < 32 * 1024 * 1024,
            "{path}: the server stopped reading after {taken} bytes"
        );
    }
    // A 5 MB form to a server function, as reqwest sends it: a JSON 413, not a 500.
    let res = app
        .client
        .post(app.at("/api/login"))
        .form(&[
            ("email", "a@example.com"),
            ("password", &"x".repeat(5 << 20)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE].to_str().unwrap(),
        "application/json"
    );
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_request_that_hangs_is_cut_at_the_timeout() {
    let app = spawn_app_with(|c| c.request_timeout = Duration::from_secs(1)).await;
    assert_eq!(app.get("/pricing").await.status(), StatusCode::OK);
    // A database that does not answer: the catalog stays locked, so the page's render hangs.
    let mut blocker = app.db.begin().await.unwrap();
    sqlx::query("lock table products in access exclusive mode")
        .execute(&mut *blocker)
        .await
        .unwrap();
    // A query the kept pricing page is not kept for: rendered, so it reads the catalog.
    let hung = new_client()
        .get(app.at("/pricing?interval=month&rendered"))
        .send()
        .await
        .unwrap();
    assert_eq!(hung.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Only that request: the rest of the app answers meanwhile.
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    blocker.rollback().await.unwrap();
    let res = new_client().get(app.at("/pricing")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "and the app is fine after");
}

#[tokio::test]
async fn a_flood_of_logins_queues_its_hashing_and_health_checks_still_answer() {
    let app = spawn_app_with(|c| {
        c.request_timeout = Duration::from_secs(5);
        c.login_max_failures_per_network = 1_000;
    })
    .await;
    let url = app.at("/api/login");
    let flood: Vec<_> = (0..300)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                stranger()
                    .post(url)
                    .form(&[
                        ("email", format!("flood-{i}@example.com")),
                        ("password", "wrong password".into()),
                    ])
                    .send()
                    .await
                    .map(|r| r.status())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..5 {
        let res = tokio::time::timeout(
            Duration::from_secs(2),
            stranger().get(app.at("/healthz")).send(),
        )
        .await
        .expect("/healthz answers within 2 s during the flood")
        .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut answered = std::collections::BTreeMap::new();
    for login in flood {
        let status = login.await.unwrap().expect("every login gets an answer");
        *answered.entry(status.as_u16()).or_insert(0) += 1;
    }
    // Wrong passwords, or the time limit for those still queued: nothing else.
    assert!(
        answered.keys().all(|s| [401, 503].contains(s)),
        "{answered:?}"
    );
    assert!(answered.get(&401).is_some_and(|n| *n > 0), "{answered:?}");
}

#[tokio::test]
async fn passwords_longer_than_1024_bytes_are_refused_before_hashing() {
    let app = spawn_app().await;
    let long = "p".repeat(1025);
    let email = unique_email("long");
    let body = assert_status(
        app.signup(&email, &long).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(body.contains("PasswordTooLong"), "{body}");
    assert_eq!(app.user_count().await, 0);
    let body = assert_status(
        app.login(&email, &long).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert!(body.contains("PasswordTooLong"), "{body}");
    // 1,024 is still fine.
    let exact = "p".repeat(1024);
    assert_eq!(app.signup(&email, &exact).await.status(), StatusCode::OK);
    let res = app
        .call_with(
            &new_client(),
            "login",
            &[("email", &email), ("password", &exact)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

// 6. The login limiter -----------------------------------------------------------------------

#[tokio::test]
async fn forty_parallel_guesses_get_no_more_than_the_limit_through() {
    let app = spawn_app().await;
    let email = unique_email("race");
    app.signup(&email, PASSWORD).await;
    let limit = 5;
    let url = app.at("/api/login");
    let guesses: Vec<_> = (0..40)
        .map(|i| {
            let (url, email) = (url.clone(), email.clone());
            tokio::spawn(async move {
                stranger()
                    .post(url)
                    .form(&[("email", email), ("password", format!("guess number {i}"))])
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for guess in guesses {
        statuses.push(guess.await.unwrap());
    }
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert!(checked <= limit, "{checked} passwords were checked");
    assert_eq!(checked + limited, 40, "{statuses:?}");
}

/// `n` failed logins for different unknown emails from one client, each claiming to come
/// from another network through `X-Forwarded-For`; their statuses.
async fn guesses_from_many_claimed_networks(app: &TestApp, n: usize) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..n {
        let res = stranger()
            .post(app.at("/api/login"))
            .header("x-forwarded-for", format!("203.0.{i}.7"))
            .form(&[
                ("email", unique_email("spread")),
                ("password", "wrong password".into()),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn the_network_limit_holds_against_spoofed_forwarding_headers() {
    let limited = |c: &mut Config| {
        c.login_max_failures_per_network = 4;
        c.login_max_failures_per_email = 100;
    };
    // Nobody is trusted by default: X-Forwarded-For is ignored and the peer is one network.
    let app = spawn_app_with(limited).await;
    let statuses = guesses_from_many_claimed_networks(&app, 6).await;
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429]);

    // Behind a trusted proxy, the address it forwards is the client's.
    let app = spawn_app_with(|c| {
        limited(c);
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let statuses = guesses_from_many_claimed_networks(&app, 6).await;
    assert_eq!(statuses, [401; 6]);
}

#[tokio::test]
async fn one_email_is_limited_whatever_network_the_guesses_come_from() {
    let app = spawn_app_with(|c| {
        c.login_max_failures_per_email = 3;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let email = unique_email("target");
    app.signup(&email, PASSWORD).await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        let res = stranger()
            .post(app.at("/api/login"))
            .header("x-forwarded-for", format!("198.51.{i}.1"))
            .form(&[("email", email.as_str()), ("password", "wrong password")])
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
}

// 7. Trials, plans and concurrent checkouts --------------------------------------------------

async fn offered_price(app: &TestApp) -> String {
    app.price_id("pro_monthly").await
}

/// Opens Checkout through the app and pays it with 4242; waits until the app shows the plan.
/// Returns what the Checkout page said before paying.
async fn subscribe_through_checkout(app: &TestApp, price: &str) -> String {
    let res = app.call("checkout", &[("price_id", price)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let url = location(&res).to_owned();
    let page = app.page(&url).await;
    let paid = app.pay_checkout(&url, None, "4242424242424242").await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    assert!(app.page_eventually_contains("/dashboard", "Pro").await);
    page
}

#[tokio::test]
async fn the_free_trial_is_given_once_per_user() {
    let app = spawn_app().await;
    let user = signed_up_user(&app, "trial").await;
    let price = offered_price(&app).await;
    let first = subscribe_through_checkout(&app, &price).await;
    assert!(first.contains("14 days free"), "{first}");
    let sub: String = sqlx::query_scalar(
        "select s.id from subscriptions s join customers c on c.stripe_customer_id = s.stripe_customer_id where c.user_id = $1",
    )
    .bind(user.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    ok(&app, Method::DELETE, &format!("/subscriptions/{sub}"), &[]).await;
    assert!(
        app.page_eventually_contains("/dashboard", "no longer gives access")
            .await
    );

    // Back on the pricing page, the trial is gone, and so it is on Checkout.
    let pricing = app.page("/pricing").await;
    assert!(
        pricing.contains("Your free trial has been used"),
        "{pricing}"
    );
    let res = app.call("checkout", &[("price_id", &price)]).await;
    let again = app.page(location(&res)).await;
    assert!(
        again.contains("Pro") && !again.contains("days free"),
        "{again}"
    );

    // Another user still gets theirs.
    let other = new_client();
    app.call_with(
        &other,
        "signup",
        &[("email", &unique_email("fresh")), ("password", PASSWORD)],
    )
    .await;
    let res = app
        .call_with(&other, "checkout", &[("price_id", &price)])
        .await;
    let theirs = app.page(location(&res)).await;
    assert!(theirs.contains("14 days free"), "{theirs}");
}

#[tokio::test]
async fn only_prices_on_the_pricing_page_can_be_bought() {
    let app = spawn_app().await;
    signed_up_user(&app, "plan").await;
    // A recurring price in the same Stripe account, on a product not marked for sale here.
    let product = ok(&app, Method::POST, "/products", &[("name", "Staff plan")]).await;
    let price = ok(
        &app,
        Method::POST,
        "/prices",
        &[
            ("product", product["id"].as_str().unwrap()),
            ("unit_amount", "100"),
            ("currency", "usd"),
            ("recurring[interval]", "month"),
        ],
    )
    .await;
    let price = price["id"].as_str().unwrap();
    let synced = eventually(|| async {
        sqlx::query_scalar::<_, i64>("select count(*) from prices where id = $1")
            .bind(price)
            .fetch_one(&app.db)
            .await
            .unwrap()
            == 1
    })
    .await;
    assert!(synced, "the app knows the price");
    assert!(!app.page("/pricing").await.contains("Staff plan"));
    let body = assert_status(
        app.call("checkout", &[("price_id", price)]).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body.contains("PlanUnavailable"), "{body}");
    let sessions: i64 = sqlx::query_scalar("select count(*) from checkout_sessions")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(sessions, 0);
    // The offered one works.
    let price = offered_price(&app).await;
    assert_eq!(
        app.call("checkout", &[("price_id", &price)]).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn two_checkouts_at_once_leave_one_session_that_can_be_paid() {
    let app = spawn_app().await;
    signed_up_user(&app, "tabs").await;
    let price = offered_price(&app).await;
    let form = [("price_id", price.as_str())];
    let (a, b) = tokio::join!(app.call("checkout", &form), app.call("checkout", &form));
    let urls = [location(&a).to_owned(), location(&b).to_owned()];
    assert_eq!((a.status(), b.status()), (StatusCode::OK, StatusCode::OK));
    assert_ne!(urls[0], urls[1]);
    let mut open = Vec::new();
    for url in &urls {
        let session = ok(
            &app,
            Method::GET,
            &format!("/checkout/sessions/{}", session_id(url)),
            &[],
        )
        .await;
        if session["status"] == "open" {
            open.push(url.clone());
        } else {
            assert_eq!(session["status"], "expired");
        }
    }
    assert_eq!(open.len(), 1, "exactly one tab can still pay");
    let stale = urls.iter().find(|u| **u != open[0]).unwrap();
    assert!(app.page(stale).await.contains("Checkout unavailable"));
    let paid = app.pay_checkout(&open[0], None, "4242424242424242").await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    assert!(app.page_eventually_contains("/dashboard", "Pro").await);
    // Subscribed now: the next checkout goes to billing settings.
    let again = app.call("checkout", &[("price_id", &price)]).await;
    assert_eq!(location(&again), "/settings/billing");
}

// Low: error text in links, the session's lifetime -----------------------------------------

#[tokio::test]
async fn a_crafted_error_link_shows_only_what_the_app_says() {
    let app = spawn_app().await;
    // `{"BadRequest":"Your account is locked: call +1 555 0100"}`, base64url, where the app
    // expects the name of one of its messages.
    let crafted = "eyJCYWRSZXF1ZXN0IjoiWW91ciBhY2NvdW50IGlzIGxvY2tlZDogY2FsbCArMSA1NTUgMDEwMCJ9";
    let page = app
        .page(&format!("/login?__path=/api/login&__err={crafted}"))
        .await;
    assert!(
        !page.contains("555 0100") && !page.contains("locked"),
        "{page}"
    );
    // `{"BadRequest":"PlanUnavailable"}`: a message the app defines does show.
    let genuine = "eyJCYWRSZXF1ZXN0IjoiUGxhblVuYXZhaWxhYmxlIn0=";
    let page = app
        .page(&format!("/login?__path=/api/login&__err={genuine}"))
        .await;
    assert!(page.contains("That plan is not available."), "{page}");
}

#[tokio::test]
async fn a_login_ends_after_its_absolute_lifetime_however_active() {
    let app = spawn_app_with(|c| c.session_max_age = Duration::from_secs(2)).await;
    signed_up_user(&app, "lifetime").await;
    for _ in 0..3 {
        assert_eq!(app.get("/dashboard").await.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_700)).await;
    let res = app.get("/dashboard").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(&res).starts_with("/login"), "{}", location(&res));
}

// Low: signup enumeration and email verification (test mode) --------------------------------

/// What a visitor can tell from a signup's answer.
async fn signup_answer(app: &TestApp, email: &str) -> (StatusCode, String, bool, String) {
    let res = app
        .call_with(
            &stranger(),
            "signup",
            &[("email", email), ("password", PASSWORD)],
        )
        .await;
    let cookie = res.headers().contains_key(header::SET_COOKIE);
    (
        res.status(),
        location(&res).to_owned(),
        cookie,
        res.text().await.unwrap(),
    )
}

async fn confirmation_link(app: &TestApp, user: uuid::Uuid) -> String {
    let body = email_body(app, user, "verify_email")
        .await
        .expect("a confirmation email");
    let start = body.find("/verify-email?token=").expect("the link");
    let token: String = body[start + "/verify-email?token=".len()..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    token
}

#[tokio::test]
async fn signup_tells_a_stranger_nothing_and_checkout_waits_for_a_confirmed_address() {
    let t = spawn_test_mode_app("whsec_test_secret", |_| {}).await;
    let app = &t.app;
    let taken = unique_email("owner");
    let fresh_answer = signup_answer(app, &taken).await;
    let taken_answer = signup_answer(app, &taken).await;
    assert_eq!(fresh_answer, taken_answer, "a taken address answers alike");
    assert_eq!(fresh_answer.1, "/signup/check-email");
    assert!(!fresh_answer.2, "nobody is logged in before confirming");
    assert_eq!(app.user_count().await, 1);
    let owner: uuid::Uuid = sqlx::query_scalar("select id from users where email = $1")
        .bind(&taken)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(emails(app, owner, "verify_email").await, 1);
    assert_eq!(
        emails(app, owner, "signup_address_taken").await,
        1,
        "the owner hears of it"
    );

    // Logged in but unconfirmed: Checkout waits, and says why.
    assert_eq!(app.login(&taken, PASSWORD).await.status(), StatusCode::OK);
    let price: String = app.price_id("pro").await;
    let body = assert_status(
        app.call("checkout", &[("price_id", &price)]).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body.contains("ConfirmEmailFirst"), "{body}");
    let internal: String = app.price_id("internal").await;
    assert_status(
        app.call("checkout", &[("price_id", &internal)]).await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    // The link opens a page with a button: a mail scanner's GET confirms nothing.
    let token = confirmation_link(app, owner).await;
    let page = app.page(&format!("/verify-email?token={token}")).await;
    assert!(page.contains("Confirm my email"), "{page}");
    let verified = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, Option<time::OffsetDateTime>>(
                "select email_verified_at from users where id = $1",
            )
            .bind(owner)
            .fetch_one(&db)
            .await
            .unwrap()
            .is_some()
        }
    };
    assert!(!verified(app).await);
    let res = app
        .call_with(&stranger(), "confirm-email", &[("token", &token)])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(location(&res), "/dashboard");
    assert!(verified(app).await);
    // Single use.
    let body = assert_status(
        app.call_with(&stranger(), "confirm-email", &[("token", &token)])
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body.contains("VerificationLinkInvalid"), "{body}");

    // Confirmed: Checkout opens on Stripe (here the sandbox on its own port).
    let res = app.call("checkout", &[("price_id", &price)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        location(&res).starts_with(&format!("{}/sandbox/checkout/", t.stripe_base)),
        "{}",
        location(&res)
    );
}

#[tokio::test]
async fn confirmation_links_expire_after_a_day() {
    let t = spawn_test_mode_app("whsec_test_secret", |_| {}).await;
    let app = &t.app;
    let email = unique_email("late");
    signup_answer(app, &email).await;
    let user: uuid::Uuid = sqlx::query_scalar("select id from users where email = $1")
        .bind(&email)
        .fetch_one(&app.db)
        .await
        .unwrap();
    let token = confirmation_link(app, user).await;
    sqlx::query(
        "update email_tokens set expires_at = now() - interval '1 second' where user_id = $1",
    )
    .bind(user)
    .execute(&app.db)
    .await
    .unwrap();
    let body = assert_status(
        app.call_with(&stranger(), "confirm-email", &[("token", &token)])
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body.contains("VerificationLinkInvalid"), "{body}");
    for garbage in ["", "zz", &"0".repeat(64), &"a".repeat(5000)] {
        let res = app
            .call_with(&stranger(), "confirm-email", &[("token", garbage)])
            .await;
        assert!(
            res.status().is_client_error(),
            "{garbage:?}: {}",
            res.status()
        );
    }
}
