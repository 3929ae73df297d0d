//! The sandbox never silently ignores a parameter: every route refuses one it does not
//! implement with Stripe's `400 parameter_unknown`, before doing anything.

use crate::helpers::*;
use reqwest::{Method, StatusCode};

/// Every route of the API, with any id where one goes: the parameters are checked before
/// the object is looked up.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/products"),
    ("GET", "/products"),
    ("GET", "/products/x"),
    ("POST", "/products/x"),
    ("DELETE", "/products/x"),
    ("POST", "/prices"),
    ("GET", "/prices"),
    ("GET", "/prices/x"),
    ("POST", "/prices/x"),
    ("POST", "/customers"),
    ("GET", "/customers"),
    ("GET", "/customers/x"),
    ("POST", "/customers/x"),
    ("DELETE", "/customers/x"),
    ("GET", "/customers/x/payment_methods"),
    ("POST", "/payment_methods"),
    ("GET", "/payment_methods"),
    ("GET", "/payment_methods/x"),
    ("POST", "/payment_methods/x/attach"),
    ("POST", "/payment_methods/x/detach"),
    ("POST", "/coupons"),
    ("GET", "/coupons"),
    ("GET", "/coupons/x"),
    ("POST", "/coupons/x"),
    ("DELETE", "/coupons/x"),
    ("POST", "/promotion_codes"),
    ("GET", "/promotion_codes"),
    ("GET", "/promotion_codes/x"),
    ("POST", "/promotion_codes/x"),
    ("POST", "/checkout/sessions"),
    ("GET", "/checkout/sessions"),
    ("GET", "/checkout/sessions/x"),
    ("POST", "/checkout/sessions/x/expire"),
    ("GET", "/checkout/sessions/x/line_items"),
    ("POST", "/subscriptions"),
    ("GET", "/subscriptions"),
    ("GET", "/subscriptions/x"),
    ("POST", "/subscriptions/x"),
    ("DELETE", "/subscriptions/x"),
    ("GET", "/invoices"),
    ("POST", "/invoices/create_preview"),
    ("GET", "/invoices/x"),
    ("POST", "/invoices/x/pay"),
    ("GET", "/invoice_payments"),
    ("GET", "/invoice_payments/x"),
    ("GET", "/payment_intents"),
    ("GET", "/payment_intents/x"),
    ("GET", "/charges"),
    ("GET", "/charges/x"),
    ("POST", "/refunds"),
    ("GET", "/refunds"),
    ("GET", "/refunds/x"),
    ("GET", "/disputes"),
    ("GET", "/disputes/x"),
    ("POST", "/disputes/x"),
    ("POST", "/disputes/x/close"),
    ("POST", "/billing_portal/configurations"),
    ("GET", "/billing_portal/configurations"),
    ("GET", "/billing_portal/configurations/x"),
    ("POST", "/billing_portal/configurations/x"),
    ("POST", "/billing_portal/sessions"),
    ("POST", "/test_helpers/test_clocks"),
    ("GET", "/test_helpers/test_clocks"),
    ("GET", "/test_helpers/test_clocks/x"),
    ("DELETE", "/test_helpers/test_clocks/x"),
    ("POST", "/test_helpers/test_clocks/x/advance"),
    ("POST", "/webhook_endpoints"),
    ("GET", "/webhook_endpoints"),
    ("GET", "/webhook_endpoints/x"),
    ("POST", "/webhook_endpoints/x"),
    ("DELETE", "/webhook_endpoints/x"),
    ("GET", "/events"),
    ("GET", "/events/x"),
    ("POST", "/billing/meters"),
    ("GET", "/billing/meters"),
    ("GET", "/billing/meters/x"),
    ("POST", "/billing/meters/x"),
    ("POST", "/billing/meters/x/deactivate"),
    ("POST", "/billing/meters/x/reactivate"),
    ("GET", "/billing/meters/x/event_summaries"),
    ("POST", "/billing/meter_events"),
];

#[tokio::test]
async fn every_route_refuses_a_parameter_it_does_not_implement() {
    let app = spawn_sandbox().await;
    let key = test_key();
    for (method, path) in ROUTES {
        let method: Method = method.parse().unwrap();
        // A GET or DELETE carries its parameters in the query string.
        let (status, body) = if method == Method::POST {
            app.api(method.clone(), path, Some(&key), &[("invented", "1")])
                .await
        } else {
            app.api(
                method.clone(),
                &format!("{path}?invented=1"),
                Some(&key),
                &[],
            )
            .await
        };
        assert_eq!(status, StatusCode::BAD_REQUEST, "{method} {path}: {body}");
        assert_eq!(
            body["error"]["code"], "parameter_unknown",
            "{method} {path}: {body}"
        );
        assert_eq!(body["error"]["param"], "invented", "{method} {path}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        // Stripe's own words: Stripe has no such parameter either.
        assert_eq!(
            body["error"]["message"], "Received unknown parameter: invented",
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn a_parameter_stripe_has_but_the_sandbox_does_not_implement_is_refused_not_dropped() {
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
    // Checkout with parameters the sandbox does not implement: refused, nothing created.
    // The first two Stripe has (the sandbox says it lacks them); the third Stripe has not.
    for (param, value) in [
        ("line_items[0][price_data][currency]", "usd"),
        ("consent_collection[terms_of_service]", "required"),
        ("discounts[0][amount_off]", "500"),
        ("metadata", "x"),
    ] {
        let mut form = vec![
            ("mode", "payment"),
            ("success_url", "https://shop.example/done"),
            ("line_items[0][price]", price["id"].as_str().unwrap()),
        ];
        form.push((param, value));
        let (status, body) = app
            .api(Method::POST, "/checkout/sessions", Some(&key), &form)
            .await;
        if param == "metadata" {
            // `metadata=` with a value that is not a hash is Stripe's own invalid_request.
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            continue;
        }
        assert_eq!(status, StatusCode::BAD_REQUEST, "{param}: {body}");
        assert_eq!(body["error"]["code"], "parameter_unknown", "{body}");
        assert_eq!(body["error"]["param"], param, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        if param.starts_with("discounts") {
            assert_eq!(message, format!("Received unknown parameter: {param}"));
        } else {
            // Not a typo: the answer says the sandbox lacks it.
            assert!(
                message.contains(&format!("The sandbox does not implement `{param}`")),
                "{message}"
            );
        }
    }
    let made: i64 = sqlx::query_scalar(
        "select count(*) from stripe_sandbox.objects where object = 'checkout.session'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(made, 0, "no session was made");
}

#[tokio::test]
async fn answers_carry_what_stripes_sdks_read_and_basic_auth_works() {
    let app = spawn_sandbox().await;
    let key = test_key();
    // Basic auth with the key as the user name, as `curl -u sk_test_…:` sends it.
    let res = app
        .client
        .post(app.at("/v1/customers"))
        .basic_auth(&key, Some(""))
        .form(&[("email", "basic@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let request_id = res.headers()["request-id"].to_str().unwrap().to_owned();
    assert!(request_id.starts_with("req_"), "{request_id}");
    assert_eq!(res.headers()["stripe-version"], stripe_sandbox::API_VERSION);
    // The same account as Bearer, and the event names the request that caused it.
    let (_, events) = app
        .api(
            Method::GET,
            "/events?type=customer.created",
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(events["data"][0]["request"]["id"], request_id.as_str());

    // A version SDKs pin is echoed; an unknown one is refused with a reason.
    let res = app
        .client
        .get(app.at("/v1/customers"))
        .bearer_auth(&key)
        .header("stripe-version", "2026-10-28.endive")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["stripe-version"], "2026-10-28.endive");
    let res = app
        .client
        .get(app.at("/v1/customers"))
        .bearer_auth(&key)
        .header("stripe-version", "1999-01-01")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.headers().contains_key("request-id"),
        "errors carry the id too"
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Invalid Stripe API version"));

    // A webhook endpoint pinned to a version: one the sandbox speaks, or refused.
    for (version, expected) in [
        ("2026-10-28.endive", StatusCode::OK),
        ("2019-01-01", StatusCode::BAD_REQUEST),
    ] {
        let (status, body) = app
            .api(
                Method::POST,
                "/webhook_endpoints",
                Some(&key),
                &[
                    ("url", "https://hooks.example/stripe"),
                    ("enabled_events[]", "*"),
                    ("api_version", version),
                ],
            )
            .await;
        assert_eq!(status, expected, "{version}: {body}");
        if status == StatusCode::OK {
            assert_eq!(body["api_version"], version);
        } else {
            assert_eq!(body["error"]["param"], "api_version");
        }
    }
}

#[tokio::test]
async fn injected_faults_tell_sdks_to_retry_as_stripe_does() {
    let app = spawn_sandbox_with(|s| s.fault_rate = 1.0).await;
    let key = test_key();
    let mut seen = 0;
    for _ in 0..12 {
        // A dropped connection has no answer at all; the others are 500 or 429.
        let Ok(res) = app
            .client
            .get(app.at("/v1/customers"))
            .bearer_auth(&key)
            .send()
            .await
        else {
            continue;
        };
        let Ok(body) = res
            .headers()
            .get("stripe-should-retry")
            .map(|v| v.to_str().map(str::to_owned))
            .transpose()
        else {
            continue;
        };
        if matches!(res.status().as_u16(), 500 | 429) {
            assert_eq!(body.as_deref(), Some("true"), "{}", res.status());
            seen += 1;
        }
    }
    assert!(seen > 0, "some faults answered");
}
