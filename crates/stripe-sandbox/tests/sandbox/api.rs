use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use stripe_core::customer::{
    CreateCustomer, DeleteCustomer, ListCustomer, RetrieveCustomer, RetrieveCustomerReturned,
    UpdateCustomer,
};
use stripe_core::event::ListEvent;
use stripe_product::price::{
    CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval, ListPrice, RetrievePrice,
};
use stripe_product::product::{CreateProduct, ListProduct, RetrieveProduct, UpdateProduct};
use stripe_types::Expandable;

#[tokio::test]
async fn typed_client_round_trips_products_and_prices() {
    let app = spawn_sandbox().await;
    let client = app.stripe(&test_key());

    let product = CreateProduct::new("Gold")
        .description("The gold plan")
        .metadata([("tier".to_string(), "3".to_string())])
        .send(&client)
        .await
        .expect("product decodes");
    assert!(product.id.as_str().starts_with("prod_"));
    assert_eq!(product.metadata["tier"], "3");

    let renamed = UpdateProduct::new(product.id.clone())
        .name("Platinum")
        .send(&client)
        .await
        .unwrap();
    assert_eq!(renamed.name, "Platinum");
    assert_eq!(
        RetrieveProduct::new(product.id.clone())
            .send(&client)
            .await
            .unwrap()
            .name,
        "Platinum"
    );

    let price = CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(2900)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .lookup_key("gold_monthly")
        .send(&client)
        .await
        .expect("price decodes");
    assert_eq!(price.unit_amount, Some(2900));
    assert_eq!(price.recurring.as_ref().map(|r| r.interval_count), Some(1));

    let found = ListPrice::new()
        .lookup_keys(vec!["gold_monthly".to_string()])
        .send(&client)
        .await
        .unwrap();
    assert_eq!(found.data.len(), 1);
    assert_eq!(found.data[0].id, price.id);

    let expanded = RetrievePrice::new(price.id.clone())
        .expand(["product".to_string()])
        .send(&client)
        .await
        .unwrap();
    match expanded.product {
        Expandable::Object(p) => assert_eq!(p.name, "Platinum"),
        Expandable::Id(_) => panic!("expand[]=product should return the product"),
    }

    // A lookup key names one price; reusing it without transfer is a 400.
    let dup = CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(100)
        .lookup_key("gold_monthly")
        .send(&client)
        .await;
    assert!(dup.is_err(), "duplicate lookup key must be refused");
}

#[tokio::test]
async fn lists_paginate_through_the_typed_client() {
    let app = spawn_sandbox().await;
    let client = app.stripe(&test_key());
    for i in 0..12 {
        CreateProduct::new(format!("P{i}"))
            .send(&client)
            .await
            .unwrap();
    }
    let first = ListProduct::new().limit(5).send(&client).await.unwrap();
    assert_eq!(first.data.len(), 5);
    assert!(first.has_more);
    assert_eq!(first.data[0].name, "P11", "newest first");

    use futures::TryStreamExt;
    let all: Vec<_> = ListProduct::new()
        .limit(5)
        .paginate()
        .stream(&client)
        .try_collect()
        .await
        .unwrap();
    let mut names: Vec<_> = all.iter().map(|p| p.name.clone()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 12, "every product exactly once across pages");
}

#[tokio::test]
async fn typed_client_manages_customers() {
    let app = spawn_sandbox().await;
    let client = app.stripe(&test_key());
    let customer = CreateCustomer::new()
        .email("ann@example.com")
        .name("Ann")
        .metadata([("user_id".to_string(), "u1".to_string())])
        .send(&client)
        .await
        .expect("customer decodes");
    assert!(customer.id.as_str().starts_with("cus_"));
    assert_eq!(customer.email.as_deref(), Some("ann@example.com"));

    let updated = UpdateCustomer::new(customer.id.clone())
        .name("Ann B")
        .send(&client)
        .await
        .unwrap();
    assert_eq!(updated.name.as_deref(), Some("Ann B"));
    let listed = ListCustomer::new()
        .email("ann@example.com")
        .send(&client)
        .await
        .unwrap();
    assert_eq!(listed.data.len(), 1);

    let deleted = DeleteCustomer::new(customer.id.clone())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(deleted.id, customer.id);
    // Stripe keeps a deleted customer retrievable as a stub, and out of lists and updates.
    let gone = RetrieveCustomer::new(customer.id.clone())
        .send(&client)
        .await
        .unwrap();
    assert!(
        matches!(gone, RetrieveCustomerReturned::DeletedCustomer(ref d) if d.id == customer.id)
    );
    assert!(ListCustomer::new()
        .send(&client)
        .await
        .unwrap()
        .data
        .is_empty());
    assert!(UpdateCustomer::new(customer.id.clone())
        .name("x")
        .send(&client)
        .await
        .is_err());
}

#[tokio::test]
async fn events_record_every_change_and_decode() {
    let app = spawn_sandbox().await;
    let key = test_key();
    let client = app.stripe(&key);
    let product = CreateProduct::new("Evented").send(&client).await.unwrap();
    UpdateProduct::new(product.id.clone())
        .name("Evented 2")
        .send(&client)
        .await
        .unwrap();
    CreateCustomer::new()
        .email("e@example.com")
        .send(&client)
        .await
        .unwrap();

    let events = ListEvent::new().send(&client).await.expect("events decode");
    let types: Vec<String> = events.data.iter().map(|e| e.type_.to_string()).collect();
    assert_eq!(
        types,
        vec!["customer.created", "product.updated", "product.created"],
        "newest first"
    );

    let products_only = ListEvent::new()
        .type_("product.*")
        .send(&client)
        .await
        .unwrap();
    assert_eq!(products_only.data.len(), 2);

    let (_, body) = app
        .api(Method::GET, "/events?type=product.updated", Some(&key), &[])
        .await;
    let update = &body["data"][0];
    assert_eq!(update["data"]["previous_attributes"]["name"], "Evented");
    assert_eq!(update["data"]["object"]["name"], "Evented 2");
    assert_eq!(update["api_version"], stripe_sandbox::API_VERSION);
}

#[tokio::test]
async fn bracket_params_reach_nested_fields() {
    let app = spawn_sandbox().await;
    let key = test_key();
    let (status, body) = app
        .api(
            Method::POST,
            "/customers",
            Some(&key),
            &[
                ("email", "n@example.com"),
                ("address[country]", "DE"),
                ("address[postal_code]", "10115"),
                ("metadata[plan]", "pro"),
                ("preferred_locales[]", "de"),
                ("preferred_locales[]", "en"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["address"]["country"], "DE");
    assert_eq!(body["address"]["line1"], Value::Null);
    assert_eq!(body["metadata"]["plan"], "pro");
    assert_eq!(body["preferred_locales"], serde_json::json!(["de", "en"]));

    // A price can bring its product inline.
    let (status, price) = app
        .api(
            Method::POST,
            "/prices",
            Some(&key),
            &[
                ("currency", "eur"),
                ("unit_amount", "500"),
                ("product_data[name]", "Inline"),
                ("recurring[interval]", "year"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{price}");
    assert_eq!(price["recurring"]["interval"], "year");
    let product_path = format!("/products/{}", price["product"].as_str().unwrap());
    let (_, product) = app.api(Method::GET, &product_path, Some(&key), &[]).await;
    assert_eq!(product["name"], "Inline");
    let (status, body) = app
        .api(
            Method::POST,
            "/prices",
            Some(&key),
            &[
                ("currency", "eur"),
                ("unit_amount", "1"),
                ("product_data[active]", "true"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["param"], "product_data[name]");
}

/// Stripe keeps no result for a request refused before it ran: the same key, corrected, goes
/// through. One that ran (a declined card) is kept and replayed.
#[tokio::test]
async fn a_key_refused_before_running_may_be_sent_again_corrected() {
    let app = spawn_sandbox().await;
    let key = test_key();
    let post = |form: Vec<(&'static str, &'static str)>| {
        app.client
            .post(app.at("/v1/customers"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "customer-for-user-7")
            .form(&form)
            .send()
    };
    let refused = post(vec![("email", "a@example.com"), ("colour", "blue")])
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let corrected = post(vec![("email", "a@example.com")]).await.unwrap();
    assert_eq!(corrected.status(), StatusCode::OK, "the key is free again");
    assert!(corrected.headers().get("idempotent-replayed").is_none());
    let replayed = post(vec![("email", "a@example.com")]).await.unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_response() {
    let app = spawn_sandbox().await;
    let key = test_key();
    let post = |email: &'static str| {
        app.client
            .post(app.at("/v1/customers"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "customer-for-user-42")
            .form(&[("email", email)])
            .send()
    };
    let first: Value = post("a@example.com").await.unwrap().json().await.unwrap();
    let again = post("a@example.com").await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["id"], again["id"]);

    let (_, list) = app.api(Method::GET, "/customers", Some(&key), &[]).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "the replay created nothing"
    );

    let clash = post("b@example.com").await.unwrap();
    assert_eq!(clash.status(), StatusCode::BAD_REQUEST);
    let body: Value = clash.json().await.unwrap();
    assert_eq!(body["error"]["type"], "idempotency_error");

    // After 24 hours the key is forgotten and may carry a new request.
    sqlx::query(
        "update stripe_sandbox.idempotency_keys set created_at = now() - interval '25 hours'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let fresh = post("b@example.com").await.unwrap();
    assert_eq!(fresh.status(), StatusCode::OK);
    assert!(fresh.headers().get("idempotent-replayed").is_none());
    let fresh: Value = fresh.json().await.unwrap();
    assert_ne!(fresh["id"], first["id"]);
}

#[tokio::test]
async fn each_secret_key_is_its_own_account() {
    let app = spawn_sandbox().await;
    let (a, b) = (test_key(), test_key());
    let product = CreateProduct::new("Mine")
        .send(&app.stripe(&a))
        .await
        .unwrap();
    let other = app.stripe(&b);
    assert!(ListProduct::new()
        .send(&other)
        .await
        .unwrap()
        .data
        .is_empty());
    assert!(RetrieveProduct::new(product.id).send(&other).await.is_err());
}

#[tokio::test]
async fn test_cards_attach_behave_and_become_the_default() {
    use stripe_core::customer::UpdateCustomerInvoiceSettings;
    use stripe_payment::payment_method::{AttachPaymentMethod, ListPaymentMethod};
    let app = spawn_sandbox().await;
    let key = test_key();
    let client = app.stripe(&key);
    let customer = CreateCustomer::new()
        .email("card@example.com")
        .send(&client)
        .await
        .unwrap();

    // A test id makes a fresh payment method from its card, attached to the customer.
    let visa = AttachPaymentMethod::new("pm_card_visa")
        .customer(customer.id.as_str())
        .send(&client)
        .await
        .expect("payment method decodes");
    assert!(visa.id.as_str().starts_with("pm_") && visa.id.as_str() != "pm_card_visa");
    let card = visa.card.as_ref().expect("a card");
    assert_eq!((card.brand.as_str(), card.last4.as_str()), ("visa", "4242"));
    assert_eq!(
        visa.customer.as_ref().map(|c| c.id().as_str().to_owned()),
        Some(customer.id.as_str().to_owned())
    );

    let updated = UpdateCustomer::new(customer.id.clone())
        .invoice_settings(UpdateCustomerInvoiceSettings {
            default_payment_method: Some(visa.id.as_str().to_owned()),
            ..UpdateCustomerInvoiceSettings::new()
        })
        .send(&client)
        .await
        .unwrap();
    let default = updated
        .invoice_settings
        .and_then(|s| s.default_payment_method)
        .map(|pm| pm.id().as_str().to_owned());
    assert_eq!(default.as_deref(), Some(visa.id.as_str()));

    // Declining cards are refused when saved, with Stripe's card error.
    let (status, body) = app
        .api(
            Method::POST,
            "/payment_methods/pm_card_chargeDeclined/attach",
            Some(&key),
            &[("customer", customer.id.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["error"]["type"], "card_error");
    assert_eq!(body["error"]["decline_code"], "generic_decline");
    let (_, body) = app
        .api(
            Method::POST,
            "/payment_methods/pm_card_chargeDeclinedInsufficientFunds/attach",
            Some(&key),
            &[("customer", customer.id.as_str())],
        )
        .await;
    assert_eq!(body["error"]["decline_code"], "insufficient_funds");

    // A raw test number: 0341 saves fine (its charges fail later).
    let (status, pm) = app
        .api(
            Method::POST,
            "/payment_methods",
            Some(&key),
            &[
                ("type", "card"),
                ("card[number]", "4000 0000 0000 0341"),
                ("card[exp_month]", "12"),
                ("card[exp_year]", "2040"),
                ("card[cvc]", "123"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{pm}");
    assert!(
        pm.get("sandbox_card").is_none(),
        "no sandbox-only fields leak: {pm}"
    );
    let path = format!("/payment_methods/{}/attach", pm["id"].as_str().unwrap());
    let (status, _) = app
        .api(
            Method::POST,
            &path,
            Some(&key),
            &[("customer", customer.id.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = ListPaymentMethod::new()
        .customer(customer.id.as_str())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(listed.data.len(), 2);

    // Bad numbers and dates are card errors.
    let (status, body) = app
        .api(
            Method::POST,
            "/payment_methods",
            Some(&key),
            &[
                ("type", "card"),
                ("card[number]", "4242424242424241"),
                ("card[exp_month]", "12"),
                ("card[exp_year]", "2040"),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYMENT_REQUIRED, Some("incorrect_number"))
    );
    let (status, body) = app
        .api(
            Method::POST,
            "/payment_methods",
            Some(&key),
            &[
                ("type", "card"),
                ("card[number]", "4242424242424242"),
                ("card[exp_month]", "13"),
                ("card[exp_year]", "2040"),
            ],
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_expiry_month"))
    );

    // Another customer's card cannot be this customer's default.
    let other = CreateCustomer::new().send(&client).await.unwrap();
    let (status, _) = app
        .api(
            Method::POST,
            &format!("/customers/{}", other.id.as_str()),
            Some(&key),
            &[("invoice_settings[default_payment_method]", visa.id.as_str())],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Detaching the default clears it.
    let (status, _) = app
        .api(
            Method::POST,
            &format!("/payment_methods/{}/detach", visa.id.as_str()),
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, c) = app
        .api(
            Method::GET,
            &format!("/customers/{}", customer.id.as_str()),
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(c["invoice_settings"]["default_payment_method"], Value::Null);
    let (_, events) = app
        .api(
            Method::GET,
            "/events?type=payment_method.*",
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
            "payment_method.detached",
            "payment_method.attached",
            "payment_method.attached"
        ]
    );
}

#[tokio::test]
async fn coupons_and_promotion_codes_round_trip_in_current_api_shapes() {
    use stripe_product::coupon::CreateCoupon;
    use stripe_product::promotion_code::{
        CreatePromotionCode, CreatePromotionCodePromotion, CreatePromotionCodePromotionType,
        ListPromotionCode,
    };
    let app = spawn_sandbox().await;
    let key = test_key();
    let client = app.stripe(&key);
    let coupon = CreateCoupon::new()
        .id("LAUNCH")
        .percent_off(20.0)
        .duration(stripe_product::CouponDuration::Repeating)
        .duration_in_months(3)
        .send(&client)
        .await
        .expect("coupon decodes");
    assert_eq!(
        (coupon.percent_off, coupon.duration_in_months, coupon.valid),
        (Some(20.0), Some(3), true)
    );

    let promotion = CreatePromotionCodePromotion {
        coupon: Some(coupon.id.as_str().to_owned()),
        type_: CreatePromotionCodePromotionType::Coupon,
    };
    let promo = CreatePromotionCode::new(promotion.clone())
        .code("LAUNCH20")
        .send(&client)
        .await
        .expect("promotion code decodes");
    assert_eq!(promo.code, "LAUNCH20");
    assert!(promo.active);
    let found = ListPromotionCode::new()
        .code("LAUNCH20")
        .send(&client)
        .await
        .unwrap();
    assert_eq!(found.data.len(), 1);

    // Active codes are unique, whatever the case.
    assert!(CreatePromotionCode::new(promotion)
        .code("launch20")
        .send(&client)
        .await
        .is_err());

    for (form, param) in [
        (
            vec![
                ("percent_off", "20"),
                ("amount_off", "500"),
                ("currency", "usd"),
            ],
            "percent_off",
        ),
        (vec![("duration", "once")], "percent_off"),
        (vec![("amount_off", "500")], "currency"),
        (vec![("percent_off", "120")], "percent_off"),
        (
            vec![("percent_off", "10"), ("duration", "repeating")],
            "duration_in_months",
        ),
    ] {
        let (status, body) = app.api(Method::POST, "/coupons", Some(&key), &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}");
        assert_eq!(body["error"]["param"], param, "{form:?}: {body}");
    }
    let (status, body) = app
        .api(
            Method::POST,
            "/promotion_codes",
            Some(&key),
            &[("promotion[type]", "coupon"), ("promotion[coupon]", "NOPE")],
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("resource_missing"))
    );
    assert_eq!(body["error"]["param"], "promotion[coupon]");
}

#[tokio::test]
async fn errors_speak_stripes_dialect() {
    let app = spawn_sandbox().await;
    let key = test_key();
    let key = Some(key.as_str());
    // (method, path, key, form) → (status, a field of the error, its value)
    type Case<'a> = (
        Method,
        &'a str,
        Option<&'a str>,
        &'a [(&'a str, &'a str)],
        StatusCode,
        &'a str,
        &'a str,
    );
    let cases: [Case; 9] = [
        (
            Method::GET,
            "/customers",
            None,
            &[],
            StatusCode::UNAUTHORIZED,
            "type",
            "invalid_request_error",
        ),
        (
            Method::GET,
            "/customers",
            Some("sk_live_nope"),
            &[],
            StatusCode::UNAUTHORIZED,
            "type",
            "invalid_request_error",
        ),
        (
            Method::POST,
            "/prices",
            key,
            &[("currency", "usd"), ("unit_amount", "abc")],
            StatusCode::BAD_REQUEST,
            "param",
            "unit_amount",
        ),
        // A missing object named by a parameter is a 400 naming it; by URL, a 404.
        (
            Method::POST,
            "/subscriptions",
            key,
            &[("customer", "cus_nope"), ("items[0][price]", "price_nope")],
            StatusCode::BAD_REQUEST,
            "param",
            "customer",
        ),
        (
            Method::POST,
            "/payment_methods/pm_card_visa/attach",
            key,
            &[("customer", "cus_nope")],
            StatusCode::BAD_REQUEST,
            "param",
            "customer",
        ),
        (
            Method::POST,
            "/products",
            key,
            &[],
            StatusCode::BAD_REQUEST,
            "code",
            "parameter_missing",
        ),
        (
            Method::GET,
            "/products/prod_nope",
            key,
            &[],
            StatusCode::NOT_FOUND,
            "code",
            "resource_missing",
        ),
        (
            Method::GET,
            "/no_such_resource",
            key,
            &[],
            StatusCode::NOT_FOUND,
            "param",
            "url",
        ),
        (
            Method::GET,
            "/products?limit=500",
            key,
            &[],
            StatusCode::BAD_REQUEST,
            "param",
            "limit",
        ),
    ];
    for (method, path, key, form, status, field, value) in cases {
        let (got, body) = app.api(method.clone(), path, key, form).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        assert_eq!(body["error"][field], value, "{method} {path}: {body}");
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
}
