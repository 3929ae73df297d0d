//! Disputes and refunds as a merchant meets them: the test card that is disputed, the
//! dashboard deciding a dispute or refunding a charge, accepting a dispute through the API,
//! and every object and event decoding in async-stripe's types.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A paid one-time Checkout on a fresh account with `card`; returns (key, payment intent).
async fn paid_with(app: &TestSandbox, card: &str) -> (String, String) {
    let key = test_key();
    let (_, product) = app
        .api(Method::POST, "/products", Some(&key), &[("name", "Lamp")])
        .await;
    let (_, price) = app
        .api(
            Method::POST,
            "/prices",
            Some(&key),
            &[
                ("product", product["id"].as_str().unwrap()),
                ("unit_amount", "4900"),
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
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let url = session["url"].as_str().unwrap();
    let paid = app.pay_checkout(url, Some("buyer@example.com"), card).await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let (_, session) = app
        .api(
            Method::GET,
            &format!("/checkout/sessions/{}", session["id"].as_str().unwrap()),
            Some(&key),
            &[],
        )
        .await;
    (key, session["payment_intent"].as_str().unwrap().to_owned())
}

async fn events_of(app: &TestSandbox, key: &str, kind: &str) -> Vec<Value> {
    let (_, events) = app
        .api(Method::GET, &format!("/events?type={kind}"), Some(key), &[])
        .await;
    events["data"].as_array().cloned().unwrap_or_default()
}

/// Decodes an event's object in async-stripe's type for it, as any Rust SDK user would.
fn decodes<T: miniserde::Deserialize>(event: &Value) -> T {
    miniserde::json::from_str(&event["data"]["object"].to_string())
        .unwrap_or_else(|_| panic!("{} decodes", event["type"]))
}

#[tokio::test]
async fn card_0259_is_disputed_and_the_dashboard_decides_the_dispute() {
    let app = spawn_sandbox().await;
    let (key, pi) = paid_with(&app, "4000 0000 0000 0259").await;
    let created = events_of(&app, &key, "charge.dispute.created").await;
    assert_eq!(created.len(), 1, "one dispute");
    let dispute: stripe_shared::Dispute = decodes(&created[0]);
    assert_eq!(dispute.status, stripe_shared::DisputeStatus::NeedsResponse);
    assert_eq!(dispute.amount, 4900);
    let id = dispute.id.as_str().to_owned();
    let (_, listed) = app
        .api(
            Method::GET,
            &format!("/disputes?payment_intent={pi}"),
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(listed["data"][0]["id"], id.as_str());
    let (_, charges) = app
        .api(
            Method::GET,
            &format!("/charges?payment_intent={pi}"),
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(charges["data"][0]["disputed"], true);

    // The dashboard shows it with its two outcomes; "Won" closes it.
    let page = app.page("/sandbox").await;
    assert!(page.contains(&format!("Close {id} as won")), "{page}");
    let account = page
        .split("/sandbox/disputes/")
        .nth(1)
        .and_then(|rest| rest.split("account=").nth(1))
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let res = app
        .client
        .post(app.at(&format!("/sandbox/disputes/{id}/close?account={account}")))
        .form(&[("verdict", "won")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let closed = events_of(&app, &key, "charge.dispute.closed").await;
    assert_eq!(closed.len(), 1);
    let dispute: stripe_shared::Dispute = decodes(&closed[0]);
    assert_eq!(dispute.status, stripe_shared::DisputeStatus::Won);
    // Closed is final.
    let (status, body) = app
        .api(
            Method::POST,
            &format!("/disputes/{id}/close"),
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn accepting_a_dispute_through_the_api_loses_it() {
    let app = spawn_sandbox().await;
    let (key, _) = paid_with(&app, "4000000000000259").await;
    let created = events_of(&app, &key, "charge.dispute.created").await;
    let id = created[0]["data"]["object"]["id"].as_str().unwrap();
    let (status, dispute) = app
        .api(
            Method::POST,
            &format!("/disputes/{id}/close"),
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{dispute}");
    assert_eq!(dispute["status"], "lost");
    let closed = events_of(&app, &key, "charge.dispute.closed").await;
    let typed: stripe_shared::Dispute = decodes(&closed[0]);
    assert_eq!(typed.status, stripe_shared::DisputeStatus::Lost);
    // An ordinary card is not disputed.
    let (key, _) = paid_with(&app, "4242424242424242").await;
    assert!(events_of(&app, &key, "charge.dispute.created")
        .await
        .is_empty());
}

#[tokio::test]
async fn the_dashboard_refunds_a_charge_and_partial_refunds_accumulate() {
    let app = spawn_sandbox().await;
    let (key, pi) = paid_with(&app, "4242424242424242").await;
    let (status, refund) = app
        .api(
            Method::POST,
            "/refunds",
            Some(&key),
            &[("payment_intent", pi.as_str()), ("amount", "900")],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{refund}");
    let refunded = events_of(&app, &key, "charge.refunded").await;
    let charge: stripe_shared::Charge = decodes(&refunded[0]);
    assert_eq!((charge.amount_refunded, charge.refunded), (900, false));
    let _: stripe_shared::Refund = decodes(&events_of(&app, &key, "refund.created").await[0]);

    // The rest, from the dashboard's button.
    let page = app.page("/sandbox").await;
    let charge_id = charge.id.as_str();
    assert!(page.contains(&format!("Refund {charge_id}")), "{page}");
    let action = page
        .split(&format!("/sandbox/charges/{charge_id}/refund?account="))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let res = app
        .client
        .post(app.at(&format!(
            "/sandbox/charges/{charge_id}/refund?account={action}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let refunded = events_of(&app, &key, "charge.refunded").await;
    assert_eq!(refunded.len(), 2);
    // Newest first.
    let charge: stripe_shared::Charge = decodes(&refunded[0]);
    assert_eq!((charge.amount_refunded, charge.refunded), (4900, true));
}
