//! Billing Meters: meters, meter events with Stripe's validation, event summaries, metered
//! prices with tiers, and invoices (and their preview) that bill what the meter aggregated.
//! Objects are read back through async-stripe's typed client.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use stripe_billing::billing_meter::{ListBillingMeter, RetrieveBillingMeter};

const DAY: i64 = 86_400;

async fn ok(
    app: &TestSandbox,
    method: Method,
    path: &str,
    key: &str,
    form: &[(&str, &str)],
) -> Value {
    let (status, body) = app.api(method, path, Some(key), form).await;
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

async fn meter(app: &TestSandbox, key: &str, formula: &str) -> String {
    let meter = ok(
        app,
        Method::POST,
        "/billing/meters",
        key,
        &[
            ("display_name", "Reports"),
            ("event_name", "report_run"),
            ("default_aggregation[formula]", formula),
        ],
    )
    .await;
    meter["id"].as_str().unwrap().to_owned()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn meters_and_meter_events_validate_as_stripe_does() {
    let app = spawn_sandbox().await;
    let key = test_key();
    let id = meter(&app, &key, "sum").await;
    let client = app.stripe(&key);
    let typed = RetrieveBillingMeter::new(id.as_str())
        .send(&client)
        .await
        .expect("decodes");
    assert_eq!(typed.event_name, "report_run");
    assert_eq!(
        ListBillingMeter::new()
            .send(&client)
            .await
            .unwrap()
            .data
            .len(),
        1
    );

    // One active meter per event name.
    let (status, body) = app
        .api(
            Method::POST,
            "/billing/meters",
            Some(&key),
            &[
                ("display_name", "Again"),
                ("event_name", "report_run"),
                ("default_aggregation[formula]", "sum"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "event_name");

    let customer = ok(&app, Method::POST, "/customers", &key, &[]).await;
    let customer = customer["id"].as_str().unwrap();
    let event = ok(
        &app,
        Method::POST,
        "/billing/meter_events",
        &key,
        &[
            ("event_name", "report_run"),
            ("payload[stripe_customer_id]", customer),
            ("payload[value]", "3"),
            ("identifier", "usage-1"),
        ],
    )
    .await;
    let typed: stripe_billing::BillingMeterEvent =
        miniserde::json::from_str(&event.to_string()).expect("the meter event decodes");
    assert_eq!(
        (typed.identifier.as_str(), typed.payload["value"].as_str()),
        ("usage-1", "3")
    );

    let old = (now() - 36 * DAY).to_string();
    let ahead = (now() + 600).to_string();
    for (form, param) in [
        (
            vec![("event_name", "report_run"), ("payload[value]", "1")],
            "payload[stripe_customer_id]",
        ),
        (
            vec![
                ("event_name", "report_run"),
                ("payload[stripe_customer_id]", customer),
            ],
            "payload[value]",
        ),
        (
            vec![
                ("event_name", "report_run"),
                ("payload[stripe_customer_id]", customer),
                ("payload[value]", "1.5"),
            ],
            "payload[value]",
        ),
        (
            vec![
                ("event_name", "nothing_here"),
                ("payload[stripe_customer_id]", customer),
                ("payload[value]", "1"),
            ],
            "event_name",
        ),
        (
            vec![
                ("event_name", "report_run"),
                ("payload[stripe_customer_id]", customer),
                ("payload[value]", "1"),
                ("timestamp", old.as_str()),
            ],
            "timestamp",
        ),
        (
            vec![
                ("event_name", "report_run"),
                ("payload[stripe_customer_id]", customer),
                ("payload[value]", "1"),
                ("timestamp", ahead.as_str()),
            ],
            "timestamp",
        ),
        (
            vec![
                ("event_name", "report_run"),
                ("payload[stripe_customer_id]", customer),
                ("payload[value]", "1"),
                ("identifier", "usage-1"),
            ],
            "identifier",
        ),
    ] {
        let (status, body) = app
            .api(Method::POST, "/billing/meter_events", Some(&key), &form)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}: {body}");
        assert_eq!(body["error"]["param"], param, "{form:?}: {body}");
    }
    let (_, repeat) = app
        .api(
            Method::POST,
            "/billing/meter_events",
            Some(&key),
            &[
                ("event_name", "report_run"),
                ("payload[stripe_customer_id]", customer),
                ("payload[value]", "9"),
                ("identifier", "usage-1"),
            ],
        )
        .await;
    assert_eq!(repeat["error"]["code"], "resource_already_exists");

    // The summary counts the first event only.
    let start = (now() / 60 - 60) * 60;
    let end = (now() / 60 + 60) * 60;
    let summaries = ok(
        &app,
        Method::GET,
        &format!("/billing/meters/{id}/event_summaries?customer={customer}&start_time={start}&end_time={end}"),
        &key,
        &[],
    )
    .await;
    let typed: stripe_billing::BillingMeterEventSummary =
        miniserde::json::from_str(&summaries["data"][0].to_string()).expect("the summary decodes");
    assert_eq!(typed.aggregated_value, 3.0);

    // Deactivated: no more events; reactivated: events again.
    ok(
        &app,
        Method::POST,
        &format!("/billing/meters/{id}/deactivate"),
        &key,
        &[],
    )
    .await;
    let (status, _) = app
        .api(
            Method::POST,
            "/billing/meter_events",
            Some(&key),
            &[
                ("event_name", "report_run"),
                ("payload[stripe_customer_id]", customer),
                ("payload[value]", "1"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let again = ok(
        &app,
        Method::POST,
        &format!("/billing/meters/{id}/reactivate"),
        &key,
        &[],
    )
    .await;
    assert_eq!(again["status"], "active");
    let (events_status, events) = app
        .api(
            Method::GET,
            "/events?type=billing.meter.deactivated",
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(events_status, StatusCode::OK);
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_invoice_bills_the_periods_usage_through_graduated_tiers_and_the_preview_shows_it() {
    let app = spawn_sandbox().await;
    let key = test_key();
    let meter_id = meter(&app, &key, "sum").await;
    let product = ok(&app, Method::POST, "/products", &key, &[("name", "Pro")]).await;
    let product = product["id"].as_str().unwrap();
    let plan = ok(
        &app,
        Method::POST,
        "/prices",
        &key,
        &[
            ("product", product),
            ("unit_amount", "2900"),
            ("currency", "usd"),
            ("recurring[interval]", "month"),
        ],
    )
    .await;
    // 100 reports included, then 10 cents each.
    let metered = ok(
        &app,
        Method::POST,
        "/prices",
        &key,
        &[
            ("product", product),
            ("currency", "usd"),
            ("recurring[interval]", "month"),
            ("recurring[usage_type]", "metered"),
            ("recurring[meter]", &meter_id),
            ("billing_scheme", "tiered"),
            ("tiers_mode", "graduated"),
            ("tiers[0][up_to]", "100"),
            ("tiers[0][unit_amount]", "0"),
            ("tiers[1][up_to]", "inf"),
            ("tiers[1][unit_amount]", "10"),
        ],
    )
    .await;
    assert!(
        metered.get("tiers").is_none(),
        "tiers are includable: {metered}"
    );
    let price_id = metered["id"].as_str().unwrap();
    let expanded = ok(
        &app,
        Method::GET,
        &format!("/prices/{price_id}?expand[]=tiers"),
        &key,
        &[],
    )
    .await;
    let typed: stripe_shared::Price =
        miniserde::json::from_str(&expanded.to_string()).expect("a tiered price decodes");
    assert_eq!(typed.tiers.map(|t| t.len()), Some(2));
    // A metered price needs its meter.
    let (status, body) = app
        .api(
            Method::POST,
            "/prices",
            Some(&key),
            &[
                ("product", product),
                ("currency", "usd"),
                ("unit_amount", "1"),
                ("recurring[interval]", "month"),
                ("recurring[usage_type]", "metered"),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("recurring[meter]"))
    );

    let start = now();
    let clock = ok(
        &app,
        Method::POST,
        "/test_helpers/test_clocks",
        &key,
        &[("frozen_time", &start.to_string())],
    )
    .await;
    let clock = clock["id"].as_str().unwrap();
    let customer = ok(
        &app,
        Method::POST,
        "/customers",
        &key,
        &[("test_clock", clock)],
    )
    .await;
    let customer = customer["id"].as_str().unwrap();
    let pm = ok(
        &app,
        Method::POST,
        "/payment_methods/pm_card_visa/attach",
        &key,
        &[("customer", customer)],
    )
    .await;
    ok(
        &app,
        Method::POST,
        &format!("/customers/{customer}"),
        &key,
        &[(
            "invoice_settings[default_payment_method]",
            pm["id"].as_str().unwrap(),
        )],
    )
    .await;
    let sub = ok(
        &app,
        Method::POST,
        "/subscriptions",
        &key,
        &[
            ("customer", customer),
            ("items[0][price]", plan["id"].as_str().unwrap()),
            ("items[1][price]", price_id),
        ],
    )
    .await;
    let typed: stripe_shared::Subscription =
        miniserde::json::from_str(&sub.to_string()).expect("decodes");
    assert_eq!(
        typed.items.data[1].quantity, None,
        "a metered item has no quantity"
    );
    let sub_id = sub["id"].as_str().unwrap();

    // 130 reports this period: 100 included, 30 at 10 cents.
    for (i, value) in ["100", "30"].iter().enumerate() {
        ok(
            &app,
            Method::POST,
            "/billing/meter_events",
            &key,
            &[
                ("event_name", "report_run"),
                ("payload[stripe_customer_id]", customer),
                ("payload[value]", value),
                ("identifier", &format!("batch-{i}")),
            ],
        )
        .await;
    }
    let preview = ok(
        &app,
        Method::POST,
        "/invoices/create_preview",
        &key,
        &[("subscription", sub_id)],
    )
    .await;
    let typed: stripe_shared::Invoice =
        miniserde::json::from_str(&preview.to_string()).expect("the preview decodes");
    assert!(typed
        .id
        .as_ref()
        .is_some_and(|id| id.as_str().starts_with("upcoming_in_")));
    assert_eq!(
        typed.amount_due,
        2900 + 300,
        "next month's plan and this month's usage"
    );

    // The period ends: the renewal invoice bills the usage.
    ok(
        &app,
        Method::POST,
        &format!("/test_helpers/test_clocks/{clock}/advance"),
        &key,
        &[("frozen_time", &(start + 32 * DAY).to_string())],
    )
    .await;
    let billed = eventually(|| async {
        let (_, list) = app
            .api(
                Method::GET,
                &format!("/invoices?subscription={sub_id}&status=paid"),
                Some(&key),
                &[],
            )
            .await;
        list["data"].as_array().is_some_and(|d| d.len() == 2)
    })
    .await;
    assert!(billed, "the renewal was invoiced and paid");
    let (_, list) = app
        .api(
            Method::GET,
            &format!("/invoices?subscription={sub_id}&status=paid"),
            Some(&key),
            &[],
        )
        .await;
    let renewal: stripe_shared::Invoice =
        miniserde::json::from_str(&list["data"][0].to_string()).expect("the invoice decodes");
    assert_eq!(renewal.amount_paid, 3200);
    let usage = renewal
        .lines
        .data
        .iter()
        .find(|l| l.quantity == Some(130))
        .expect("a usage line of 130");
    assert_eq!(usage.amount, 300);
    // The first invoice carried the metered item at zero.
    let first: stripe_shared::Invoice =
        miniserde::json::from_str(&list["data"][1].to_string()).unwrap();
    assert_eq!(first.amount_paid, 2900);
}
