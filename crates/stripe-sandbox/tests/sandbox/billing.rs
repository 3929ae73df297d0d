use crate::helpers::*;
use reqwest::{Method, StatusCode};
use std::time::Duration;
use stripe_core::customer::{CreateCustomer, RetrieveCustomer, RetrieveCustomerReturned};
use stripe_product::price::{CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval};
use stripe_product::product::CreateProduct;

#[tokio::test]
async fn test_clocks_advance_asynchronously_and_take_their_customers_with_them() {
    use stripe_billing::test_helpers_test_clock::{
        AdvanceTestHelpersTestClock, CreateTestHelpersTestClock, RetrieveTestHelpersTestClock,
    };
    let app = spawn_sandbox().await;
    let key = test_key();
    let client = app.stripe(&key);
    let start = 1_800_000_000;
    let clock = CreateTestHelpersTestClock::new(start)
        .name("trial run")
        .send(&client)
        .await
        .expect("clock decodes");
    assert_eq!(clock.frozen_time, start);
    let customer = CreateCustomer::new()
        .email("clock@example.com")
        .test_clock(clock.id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(
        customer
            .test_clock
            .as_ref()
            .map(|c| c.id().as_str().to_owned()),
        Some(clock.id.as_str().to_owned())
    );

    let target = start + 15 * 86_400;
    let advancing = AdvanceTestHelpersTestClock::new(clock.id.clone(), target)
        .send(&client)
        .await
        .unwrap();
    assert_eq!(advancing.status.as_str(), "advancing");
    let mut ready = None;
    for _ in 0..50 {
        let c = RetrieveTestHelpersTestClock::new(clock.id.clone())
            .send(&client)
            .await
            .unwrap();
        if c.status.as_str() == "ready" {
            ready = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready.expect("the clock became ready").frozen_time, target);

    // Time only moves forward.
    let (status, _) = app
        .api(
            Method::POST,
            &format!("/test_helpers/test_clocks/{}/advance", clock.id.as_str()),
            Some(&key),
            &[("frozen_time", "1800000000")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app
        .api(
            Method::POST,
            "/customers",
            Some(&key),
            &[("test_clock", "clock_nope")],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (_, events) = app
        .api(
            Method::GET,
            "/events?type=test_helpers.test_clock.*",
            Some(&key),
            &[],
        )
        .await;
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "test_helpers.test_clock.ready",
            "test_helpers.test_clock.advancing",
            "test_helpers.test_clock.created"
        ]
    );

    // Deleting the clock deletes the customers living on it.
    let (status, _) = app
        .api(
            Method::DELETE,
            &format!("/test_helpers/test_clocks/{}", clock.id.as_str()),
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let gone = RetrieveCustomer::new(customer.id.clone())
        .send(&client)
        .await
        .unwrap();
    assert!(matches!(gone, RetrieveCustomerReturned::DeletedCustomer(_)));
}

#[tokio::test]
async fn subscriptions_trial_charge_change_and_cancel_with_stripes_events() {
    use stripe_billing::subscription::{
        CancelSubscription, CreateSubscription, CreateSubscriptionItems,
        CreateSubscriptionPaymentBehavior, ListSubscription, UpdateSubscription,
    };
    use stripe_payment::payment_method::AttachPaymentMethod;
    let app = spawn_sandbox().await;
    let key = test_key();
    let client = app.stripe(&key);
    let product = CreateProduct::new("Plan").send(&client).await.unwrap();
    let monthly = |amount: i64| {
        CreatePrice::new(stripe_types::Currency::USD)
            .product(product.id.as_str())
            .unit_amount(amount)
            .recurring(CreatePriceRecurring::new(
                CreatePriceRecurringInterval::Month,
            ))
    };
    let pro = monthly(2900).send(&client).await.unwrap();
    let team = monthly(9900).send(&client).await.unwrap();
    let customer = CreateCustomer::new()
        .email("sub@example.com")
        .send(&client)
        .await
        .unwrap();
    let item = |price: &str| CreateSubscriptionItems {
        price: Some(price.to_owned()),
        ..CreateSubscriptionItems::new()
    };

    // A trial needs no card; the period is the trial and lives on the item.
    let trial = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![item(pro.id.as_str())])
        .trial_period_days(14u32)
        .metadata([("user_id".to_owned(), "u1".to_owned())])
        .send(&client)
        .await
        .expect("subscription decodes");
    assert_eq!(trial.status.as_str(), "trialing");
    let period = &trial.items.data[0];
    assert_eq!(trial.trial_end, Some(period.current_period_end));
    assert_eq!(
        period.current_period_end - period.current_period_start,
        14 * 86_400
    );

    // Without a trial the default card is charged: no card is a 400, a failing card is incomplete.
    let no_card = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![item(pro.id.as_str())])
        .send(&client)
        .await;
    assert!(no_card.is_err());
    let failing = AttachPaymentMethod::new("pm_card_chargeCustomerFail")
        .customer(customer.id.as_str())
        .send(&client)
        .await
        .unwrap();
    let incomplete = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![item(pro.id.as_str())])
        .default_payment_method(failing.id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(incomplete.status.as_str(), "incomplete");
    let refused = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![item(pro.id.as_str())])
        .default_payment_method(failing.id.as_str())
        .payment_behavior(CreateSubscriptionPaymentBehavior::ErrorIfIncomplete)
        .send(&client)
        .await;
    assert!(refused.is_err());
    let visa = AttachPaymentMethod::new("pm_card_visa")
        .customer(customer.id.as_str())
        .send(&client)
        .await
        .unwrap();
    let active = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![item(pro.id.as_str())])
        .default_payment_method(visa.id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(active.status.as_str(), "active");
    let month = active.items.data[0].current_period_end - active.items.data[0].current_period_start;
    assert!(
        (28 * 86_400..=31 * 86_400).contains(&month),
        "a calendar month: {month}"
    );

    // Plan change, cancel at period end and back, then cancel now.
    let (status, changed) = app
        .api(
            Method::POST,
            &format!("/subscriptions/{}", active.id.as_str()),
            Some(&key),
            &[
                ("items[0][id]", active.items.data[0].id.as_str()),
                ("items[0][price]", team.id.as_str()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["items"]["data"][0]["price"]["unit_amount"], 9900);
    assert_eq!(changed["items"]["data"][0]["plan"]["amount"], 9900);
    let ending = UpdateSubscription::new(active.id.clone())
        .cancel_at_period_end(true)
        .send(&client)
        .await
        .unwrap();
    assert!(ending.cancel_at_period_end);
    assert_eq!(
        ending.cancel_at,
        Some(ending.items.data[0].current_period_end)
    );
    let resumed = UpdateSubscription::new(active.id.clone())
        .cancel_at_period_end(false)
        .send(&client)
        .await
        .unwrap();
    assert!(!resumed.cancel_at_period_end && resumed.cancel_at.is_none());
    let canceled = CancelSubscription::new(active.id.clone())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(canceled.status.as_str(), "canceled");
    assert!(canceled.ended_at.is_some());

    // Lists leave out canceled ones unless asked.
    let open = ListSubscription::new()
        .customer(customer.id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(open.data.len(), 2, "the trial and the incomplete one");

    let (_, events) = app
        .api(
            Method::GET,
            "/events?type=customer.subscription.*&limit=100",
            Some(&key),
            &[],
        )
        .await;
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "customer.subscription.created")
            .count(),
        3
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "customer.subscription.updated")
            .count(),
        3
    );
    assert_eq!(kinds[0], "customer.subscription.deleted");
    let resume = &events["data"][1];
    assert_eq!(
        resume["data"]["previous_attributes"]["cancel_at_period_end"],
        true
    );
}

#[tokio::test]
async fn subscriptions_of_a_clock_customer_start_in_the_clocks_time() {
    use stripe_billing::subscription::{CreateSubscription, CreateSubscriptionItems};
    use stripe_billing::test_helpers_test_clock::CreateTestHelpersTestClock;
    let app = spawn_sandbox().await;
    let client = app.stripe(&test_key());
    let frozen = 1_900_000_000;
    let clock = CreateTestHelpersTestClock::new(frozen)
        .send(&client)
        .await
        .unwrap();
    let customer = CreateCustomer::new()
        .test_clock(clock.id.as_str())
        .send(&client)
        .await
        .unwrap();
    let product = CreateProduct::new("Clocked").send(&client).await.unwrap();
    let price = CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(500)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .send(&client)
        .await
        .unwrap();
    let sub = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![CreateSubscriptionItems {
            price: Some(price.id.as_str().to_owned()),
            ..CreateSubscriptionItems::new()
        }])
        .trial_period_days(7u32)
        .send(&client)
        .await
        .unwrap();
    assert_eq!(sub.start_date, frozen);
    assert_eq!(sub.trial_end, Some(frozen + 7 * 86_400));
    assert_eq!(
        sub.test_clock.map(|c| c.id().as_str().to_owned()),
        Some(clock.id.as_str().to_owned())
    );
}

#[tokio::test]
async fn an_invoice_leads_to_its_payment_intent_through_invoice_payments() {
    use serde_json::Value;
    use stripe_billing::subscription::{CreateSubscription, CreateSubscriptionItems};
    use stripe_payment::payment_method::AttachPaymentMethod;
    let app = spawn_sandbox().await;
    let key = test_key();
    let client = app.stripe(&key);
    let product = CreateProduct::new("Plan").send(&client).await.unwrap();
    let price = CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(2900)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .send(&client)
        .await
        .unwrap();
    let customer = CreateCustomer::new()
        .email("payments@example.com")
        .send(&client)
        .await
        .unwrap();
    let subscribe = |card: &'static str| {
        let client = &client;
        let customer = customer.id.as_str().to_owned();
        let price = price.id.as_str().to_owned();
        async move {
            let card = AttachPaymentMethod::new(card)
                .customer(customer.as_str())
                .send(client)
                .await
                .unwrap();
            CreateSubscription::new()
                .customer(customer.as_str())
                .items(vec![CreateSubscriptionItems {
                    price: Some(price),
                    ..CreateSubscriptionItems::new()
                }])
                .default_payment_method(card.id.as_str())
                .send(client)
                .await
                .unwrap()
        }
    };
    let paid = subscribe("pm_card_visa").await;
    let failed = subscribe("pm_card_chargeCustomerFail").await;
    assert_eq!(
        (paid.status.as_str(), failed.status.as_str()),
        ("active", "incomplete")
    );
    let get = |path: String| {
        let app = &app;
        let key = key.clone();
        async move {
            let (status, body) = app.api(Method::GET, &path, Some(&key), &[]).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            body
        }
    };

    // `payments` is includable: only there when expanded, wherever the invoice sits.
    let sub = get(format!(
        "/subscriptions/{}?expand[]=latest_invoice",
        paid.id.as_str()
    ))
    .await;
    assert!(sub["latest_invoice"].is_object() && sub["latest_invoice"].get("payments").is_none());
    let sub = get(format!(
        "/subscriptions/{}?expand[]=latest_invoice.payments",
        paid.id.as_str()
    ))
    .await;
    let _: stripe_shared::Subscription =
        miniserde::json::from_str(&sub.to_string()).expect("the expanded subscription decodes");
    let invoice = sub["latest_invoice"]["id"].as_str().unwrap().to_owned();
    let payment = sub["latest_invoice"]["payments"]["data"][0].clone();
    assert_eq!(payment["status"], "paid", "{payment}");
    let intent = payment["payment"]["payment_intent"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(intent.starts_with("pi_"), "{payment}");
    assert!(get(format!("/invoices/{invoice}"))
        .await
        .get("payments")
        .is_none());
    assert_eq!(
        get(format!("/invoices/{invoice}?expand[]=payments")).await["payments"]["data"][0]["id"],
        payment["id"]
    );

    // `/v1/invoice_payments`: by invoice, by payment intent, by status, and one by id.
    let listed = get(format!(
        "/invoice_payments?invoice={invoice}&expand[]=data.payment.payment_intent"
    ))
    .await;
    let data = listed["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{listed}");
    let decoded: stripe_shared::InvoicePayment =
        miniserde::json::from_str(&data[0].to_string()).expect("an invoice payment decodes");
    assert_eq!(decoded.id.as_str(), payment["id"].as_str().unwrap());
    assert_eq!(data[0]["payment"]["payment_intent"]["amount"], 2900);
    let by_intent = get(format!(
        "/invoice_payments?payment[type]=payment_intent&payment[payment_intent]={intent}"
    ))
    .await;
    assert_eq!(by_intent["data"].as_array().unwrap().len(), 1);
    let all = get("/invoice_payments".to_owned()).await;
    let statuses: Vec<&Value> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["status"])
        .collect();
    assert_eq!(statuses.len(), 2, "both attempts: {all}");
    let only_paid = get("/invoice_payments?status=paid".to_owned()).await;
    assert_eq!(only_paid["data"].as_array().unwrap().len(), 1);
    assert_eq!(only_paid["data"][0]["id"], payment["id"]);
    let one = get(format!(
        "/invoice_payments/{}",
        payment["id"].as_str().unwrap()
    ))
    .await;
    assert_eq!(one["invoice"], invoice.as_str());
    let (status, missing) = app
        .api(Method::GET, "/invoice_payments/inpay_nope", Some(&key), &[])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    let (status, refused) = app
        .api(
            Method::GET,
            "/invoice_payments?payment[payment_intent]=pi_x",
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(
        (status, refused["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("payment[type]"))
    );
}
