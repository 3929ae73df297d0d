//! What a stranger can do to the sandbox: its dashboard is behind a token, its pages escape
//! what they echo, it sends customers only to http(s) URLs, and its webhooks never probe
//! the network it runs in.

use crate::helpers::*;
use reqwest::{header, Method, StatusCode};
use serde_json::Value;
use std::time::Duration;
use stripe_core::customer::CreateCustomer;
use stripe_sandbox::PrivateWebhooks;

fn stranger() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_dashboard_needs_the_token_the_server_printed() {
    let app = spawn_sandbox().await;
    let stranger = stranger();
    for (method, path) in [
        (Method::GET, "/sandbox".to_owned()),
        (Method::GET, "/sandbox?token=not-the-token".to_owned()),
        (
            Method::POST,
            "/sandbox/events/evt_1/resend?account=acct_x".to_owned(),
        ),
        (
            Method::POST,
            "/sandbox/clocks/clock_1/advance?account=acct_x".to_owned(),
        ),
    ] {
        let res = stranger
            .request(method.clone(), app.at(&path))
            .form(&[("days", "1")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("needs the sandbox's token"));
    }

    // The printed link: the token becomes a cookie and leaves the address.
    let with_cookies = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = with_cookies
        .get(app.at(&format!("/sandbox?account=acct_x&token={}", app.token)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/sandbox?account=acct_x");
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let page = with_cookies.get(app.at("/sandbox")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
}

#[tokio::test]
async fn hosted_pages_need_no_token_and_escape_what_they_echo() {
    let app = spawn_sandbox().await;
    let key = test_key();
    let (_, product) = app
        .api(Method::POST, "/products", Some(&key), &[("name", "Mug")])
        .await;
    let (_, price) = app
        .api(
            Method::POST,
            "/prices",
            Some(&key),
            &[
                ("product", product["id"].as_str().unwrap()),
                ("unit_amount", "900"),
                ("currency", "usd"),
            ],
        )
        .await;
    let (status, session) = app
        .api(
            Method::POST,
            "/checkout/sessions",
            Some(&key),
            &[
                ("mode", "payment"),
                ("line_items[0][price]", price["id"].as_str().unwrap()),
                ("success_url", "https://shop.example/done"),
                ("automatic_tax[enabled]", "true"),
                ("allow_promotion_codes", "true"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let url = session["url"].as_str().unwrap();
    // Like Stripe's, the hosted page's unguessable URL is its key.
    let stranger = stranger();
    assert_eq!(
        stranger.get(url).send().await.unwrap().status(),
        StatusCode::OK
    );
    // Whatever a visitor types comes back as text, never as markup.
    let attack = r#"<script>alert(document.cookie)</script>"#;
    let page = stranger
        .post(url)
        .form(&[
            ("action", "apply"),
            ("country", attack),
            ("promotion_code", "\"><img src=x onerror=alert(1)>"),
            ("email", "\"><svg onload=alert(1)>"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(
        !page.contains("<img src=x") && !page.contains("<svg onload"),
        "{page}"
    );
    assert!(
        page.contains("&lt;SCRIPT&gt;ALERT(DOCUMENT.COOKIE)&lt;/SCRIPT&gt;"),
        "{page}"
    );
}

#[tokio::test]
async fn customers_are_only_ever_sent_to_http_urls() {
    let app = spawn_sandbox().await;
    let key = test_key();
    let customer = CreateCustomer::new().send(&app.stripe(&key)).await.unwrap();
    for (path, form) in [
        (
            "/checkout/sessions",
            vec![("mode", "payment"), ("success_url", "javascript:alert(1)")],
        ),
        (
            "/checkout/sessions",
            vec![
                ("mode", "payment"),
                ("success_url", "https://shop.example/done"),
                ("cancel_url", "data:text/html,<script>alert(1)</script>"),
            ],
        ),
        (
            "/billing_portal/sessions",
            vec![
                ("customer", customer.id.as_str()),
                ("return_url", "javascript:alert(1)"),
            ],
        ),
        (
            "/billing_portal/configurations",
            vec![("default_return_url", "vbscript:x")],
        ),
    ] {
        let (status, body) = app.api(Method::POST, path, Some(&key), &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {form:?}: {body}");
        assert_eq!(body["error"]["code"], "url_invalid", "{body}");
    }
}

#[tokio::test]
async fn a_sandbox_inside_an_app_only_sends_customers_back_to_the_app() {
    let app = spawn_sandbox_with(|s| s.redirect_origin = Some("https://app.example".into())).await;
    let key = test_key();
    let (status, body) = app
        .api(
            Method::POST,
            "/checkout/sessions",
            Some(&key),
            &[
                ("mode", "payment"),
                ("success_url", "https://evil.example/"),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("url_invalid"))
    );
    assert_eq!(body["error"]["param"], "success_url");
}

#[tokio::test]
async fn webhooks_reach_private_addresses_only_for_the_accounts_allowed_to() {
    let (trusted, other) = (test_key(), test_key());
    let allowed = trusted.clone();
    let app = spawn_sandbox_with(|s| {
        s.private_webhooks = PrivateWebhooks::ForKeys(vec![allowed]);
        s.retry_schedule = vec![];
    })
    .await;
    let (receiver, hits) = spawn_receiver(0).await;
    app.register_endpoint(&trusted, &receiver).await;
    app.register_endpoint(&other, &receiver).await;
    // A cloud metadata address and a name for loopback: never reached either.
    app.register_endpoint(&other, "http://169.254.169.254/latest/meta-data")
        .await;
    app.register_endpoint(&other, &receiver.replace("127.0.0.1", "localhost"))
        .await;
    CreateCustomer::new()
        .send(&app.stripe(&other))
        .await
        .unwrap();
    CreateCustomer::new()
        .send(&app.stripe(&trusted))
        .await
        .unwrap();
    let got = wait_for_hits(&hits, 1).await;
    // Give the other account's three deliveries time to be tried (and refused).
    let tried = eventually(|| async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from stripe_sandbox.deliveries where status = 'failed'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap()
            == 3
    })
    .await;
    assert!(
        tried,
        "the other account's deliveries were tried and gave up"
    );
    assert_eq!(
        hits.lock().unwrap().len(),
        1,
        "only the trusted account's event arrived"
    );
    let body: Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(body["type"], "customer.created");
    let errors: Vec<(Option<i32>, Option<String>)> = sqlx::query_as(
        "select a.response_status, a.error from stripe_sandbox.delivery_attempts a
         join stripe_sandbox.deliveries d on d.id = a.delivery_id where d.status = 'failed'",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(errors.len(), 3);
    for (status, error) in errors {
        assert_eq!(status, None, "no response code: nothing was reached");
        assert!(
            error.as_deref().is_some_and(|e| e.contains("not public")),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn deliveries_never_follow_redirects() {
    let app = spawn_sandbox().await;
    let key = test_key();
    let (target, target_hits) = spawn_receiver(0).await;
    // An endpoint that answers 307 to the target: Stripe counts that as a failed delivery.
    let redirector = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let target = target.clone();
            async move { axum::response::Redirect::temporary(&target) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, redirector).await });
    app.register_endpoint(&key, &url).await;
    CreateCustomer::new().send(&app.stripe(&key)).await.unwrap();
    let answered = eventually(|| async {
        sqlx::query_scalar::<_, Option<i32>>(
            "select response_status from stripe_sandbox.delivery_attempts order by id limit 1",
        )
        .fetch_optional(&app.db)
        .await
        .unwrap()
        .flatten()
            == Some(307)
    })
    .await;
    assert!(answered, "the redirect is the endpoint's answer");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        target_hits.lock().unwrap().is_empty(),
        "and it was not followed"
    );
}
