use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::json;
use stripe_product::price::{CreatePrice, CreatePriceRecurring, CreatePriceRecurringInterval};
use stripe_product::product::CreateProduct;

#[tokio::test]
async fn hosted_checkout_starts_a_trial_with_a_test_card_and_shows_declines() {
    use stripe_checkout::checkout_session::{
        CreateCheckoutSession, CreateCheckoutSessionLineItems,
        CreateCheckoutSessionSubscriptionData, RetrieveCheckoutSession,
    };
    let app = spawn_sandbox().await;
    let key = test_key();
    let client = app.stripe(&key);
    let product = CreateProduct::new("Pro").send(&client).await.unwrap();
    let price = CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(2900)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .send(&client)
        .await
        .unwrap();
    let session = CreateCheckoutSession::new()
        .mode(stripe_shared::CheckoutSessionMode::Subscription)
        .line_items(vec![CreateCheckoutSessionLineItems {
            price: Some(price.id.as_str().to_owned()),
            quantity: Some(1),
            ..CreateCheckoutSessionLineItems::new()
        }])
        .success_url("http://shop.example/done?session={CHECKOUT_SESSION_ID}")
        .cancel_url("http://shop.example/pricing")
        .subscription_data(CreateCheckoutSessionSubscriptionData {
            trial_period_days: Some(14),
            metadata: Some([("user_id".to_owned(), "u42".to_owned())].into()),
            ..CreateCheckoutSessionSubscriptionData::new()
        })
        .send(&client)
        .await
        .expect("checkout session decodes");
    let url = session.url.clone().expect("a hosted page");
    assert!(
        url.starts_with(&format!("{}/sandbox/checkout/cs_test_", app.url)),
        "{url}"
    );

    let page = app.page(&url).await;
    assert!(
        page.contains("14 days free") && page.contains("$29.00") && page.contains("Start trial"),
        "{page}"
    );

    let pay = |number: &'static str| {
        app.client
            .post(&url)
            .form(&[
                ("email", "buyer@example.com"),
                ("card_number", number),
                ("card_expiry", "12 / 40"),
                ("card_cvc", "123"),
                ("name", "Ann Buyer"),
                ("country", "US"),
                ("postal_code", "94107"),
            ])
            .send()
    };
    let declined = pay("4000 0000 0000 0002").await.unwrap();
    assert_eq!(declined.status(), StatusCode::OK);
    assert!(declined
        .text()
        .await
        .unwrap()
        .contains("Your card was declined."));
    let poor = pay("4000 0000 0000 9995")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(poor.contains("insufficient funds"));
    let typo = pay("4242 4242 4242 4241")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(typo.contains("card number is incorrect"));

    let paid = pay("4242 4242 4242 4242").await.unwrap();
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&paid),
        format!("http://shop.example/done?session={}", session.id.as_str())
    );

    let done = RetrieveCheckoutSession::new(session.id.clone())
        .send(&client)
        .await
        .unwrap();
    assert_eq!(
        done.status.map(|s| s.as_str().to_owned()).as_deref(),
        Some("complete")
    );
    assert_eq!(done.payment_status.as_str(), "no_payment_required");
    let sub_id = done
        .subscription
        .map(|s| s.id().as_str().to_owned())
        .expect("a subscription");
    let (_, sub) = app
        .api(
            Method::GET,
            &format!("/subscriptions/{sub_id}"),
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(sub["status"], "trialing");
    assert_eq!(sub["metadata"]["user_id"], "u42");
    let customer = done.customer.map(|c| c.id().as_str().to_owned()).unwrap();
    let (_, c) = app
        .api(
            Method::GET,
            &format!("/customers/{customer}"),
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(c["email"], "buyer@example.com");
    assert_eq!(c["address"]["postal_code"], "94107");
    assert!(c["invoice_settings"]["default_payment_method"]
        .as_str()
        .unwrap()
        .starts_with("pm_"));

    let (_, events) = app
        .api(Method::GET, "/events?limit=100", Some(&key), &[])
        .await;
    let all = events.to_string();
    assert!(
        all.contains("checkout.session.completed") && all.contains("customer.subscription.created")
    );
    assert!(
        !all.contains("sandbox_card") && !all.contains("\"sandbox\""),
        "no sandbox notes in events"
    );

    // A completed session cannot be paid again.
    assert_eq!(
        app.client.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let (status, _) = app
        .api(
            Method::POST,
            "/checkout/sessions",
            Some(&key),
            &[("mode", "payment"), ("success_url", "http://x.example")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn checkout_sessions_expire_on_request_or_at_expires_at_and_then_show_a_clear_page() {
    use stripe_checkout::checkout_session::{
        CreateCheckoutSession, CreateCheckoutSessionLineItems, RetrieveCheckoutSession,
    };
    let app = spawn_sandbox().await;
    let key = test_key();
    let client = app.stripe(&key);
    let product = CreateProduct::new("Poster").send(&client).await.unwrap();
    let price = CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(1200)
        .send(&client)
        .await
        .unwrap();
    let soon = time::OffsetDateTime::now_utc().unix_timestamp() + 31 * 60;
    let session = || {
        CreateCheckoutSession::new()
            .mode(stripe_shared::CheckoutSessionMode::Payment)
            .line_items(vec![CreateCheckoutSessionLineItems {
                price: Some(price.id.as_str().to_owned()),
                quantity: Some(1),
                ..CreateCheckoutSessionLineItems::new()
            }])
            .success_url("http://shop.example/done")
            .expires_at(soon)
    };

    // Too soon or too late is refused like Stripe does.
    let (status, body) = app
        .api(
            Method::POST,
            "/checkout/sessions",
            Some(&key),
            &[
                ("mode", "payment"),
                ("line_items[0][price]", price.id.as_str()),
                ("line_items[0][quantity]", "1"),
                ("success_url", "http://shop.example/done"),
                ("expires_at", &(soon - 30 * 60).to_string()),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["param"], "expires_at");

    // Expired on request.
    let asked = session().send(&client).await.unwrap();
    let page = asked.url.clone().unwrap();
    let (status, expired) = app
        .api(
            Method::POST,
            &format!("/checkout/sessions/{}/expire", asked.id.as_str()),
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(expired["status"], "expired");
    assert!(expired["url"].is_null(), "no URL once expired");
    let (status, _) = app
        .api(
            Method::POST,
            &format!("/checkout/sessions/{}/expire", asked.id.as_str()),
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "only an open session expires"
    );
    let res = app.client.get(&page).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("it was completed or it expired"));

    // Expired by time: the sandbox's worker does it, with the event, as Stripe does.
    let left = session().send(&client).await.unwrap();
    sqlx::query(
        "update stripe_sandbox.objects set data = jsonb_set(data, '{expires_at}', to_jsonb(extract(epoch from now())::bigint - 1)) where id = $1",
    )
    .bind(left.id.as_str())
    .execute(&app.db)
    .await
    .unwrap();
    let timed_out = eventually(|| async {
        RetrieveCheckoutSession::new(left.id.clone())
            .send(&client)
            .await
            .unwrap()
            .status
            .is_some_and(|s| s.as_str() == "expired")
    })
    .await;
    assert!(timed_out, "the session expired by itself");
    let paid = app
        .pay_checkout(
            left.url.as_deref().unwrap(),
            Some("late@example.com"),
            "4242424242424242",
        )
        .await;
    assert_eq!(
        paid.status(),
        StatusCode::NOT_FOUND,
        "an expired session takes no payment"
    );
    let (_, events) = app
        .api(
            Method::GET,
            "/events?type=checkout.session.expired",
            Some(&key),
            &[],
        )
        .await;
    let expired_ids: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["data"]["object"]["id"].as_str())
        .collect();
    assert_eq!(expired_ids.len(), 2, "{events}");
    assert!(expired_ids.contains(&left.id.as_str()) && expired_ids.contains(&asked.id.as_str()));
}

#[tokio::test]
async fn a_discount_set_on_the_session_applies_on_the_page_and_in_the_charge() {
    use stripe_checkout::checkout_session::{
        CreateCheckoutSession, CreateCheckoutSessionDiscounts, CreateCheckoutSessionLineItems,
        ListLineItemsCheckoutSession, RetrieveCheckoutSession,
    };
    use stripe_product::coupon::CreateCoupon;
    use stripe_product::promotion_code::{
        CreatePromotionCode, CreatePromotionCodePromotion, CreatePromotionCodePromotionType,
    };
    let app = spawn_sandbox().await;
    let key = test_key();
    let client = app.stripe(&key);
    let product = CreateProduct::new("Lifetime").send(&client).await.unwrap();
    let price = CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(10_000)
        .send(&client)
        .await
        .unwrap();
    let coupon = CreateCoupon::new()
        .id("FRIENDS")
        .percent_off(25.0)
        .duration(stripe_product::CouponDuration::Once)
        .send(&client)
        .await
        .unwrap();
    let promo = CreatePromotionCode::new(CreatePromotionCodePromotion {
        coupon: Some(coupon.id.as_str().to_owned()),
        type_: CreatePromotionCodePromotionType::Coupon,
    })
    .code("FRIENDS25")
    .send(&client)
    .await
    .unwrap();
    for (discount, expected) in [
        (
            CreateCheckoutSessionDiscounts {
                coupon: Some("FRIENDS".into()),
                promotion_code: None,
            },
            ("FRIENDS", None),
        ),
        (
            CreateCheckoutSessionDiscounts {
                coupon: None,
                promotion_code: Some(promo.id.as_str().to_owned()),
            },
            ("FRIENDS", Some(promo.id.as_str())),
        ),
    ] {
        let session = CreateCheckoutSession::new()
            .mode(stripe_shared::CheckoutSessionMode::Payment)
            .line_items(vec![CreateCheckoutSessionLineItems {
                price: Some(price.id.as_str().to_owned()),
                quantity: Some(1),
                ..CreateCheckoutSessionLineItems::new()
            }])
            .success_url("http://shop.example/done")
            .discounts(vec![discount])
            .send(&client)
            .await
            .expect("session decodes");
        let url = session.url.clone().unwrap();
        let page = app.page(&url).await;
        // The merchant's discount is on the page from the start, with no code field.
        assert!(
            page.contains("Discount") && page.contains("$25.00") && page.contains("$75.00"),
            "{page}"
        );
        assert!(!page.contains("name=\"promotion_code\""), "{page}");
        let paid = app
            .pay_checkout(&url, Some("buyer@example.com"), "4242 4242 4242 4242")
            .await;
        assert_eq!(paid.status(), StatusCode::SEE_OTHER);
        let done = RetrieveCheckoutSession::new(session.id.clone())
            .send(&client)
            .await
            .unwrap();
        assert_eq!(
            (done.amount_subtotal, done.amount_total),
            (Some(10_000), Some(7_500))
        );
        let applied = &done.discounts.expect("discounts")[0];
        match expected {
            (coupon, None) => assert_eq!(
                applied.coupon.as_ref().map(|c| c.id().as_str().to_owned()),
                Some(coupon.to_owned())
            ),
            (_, Some(code)) => assert_eq!(
                applied
                    .promotion_code
                    .as_ref()
                    .map(|p| p.id().as_str().to_owned()),
                Some(code.to_owned())
            ),
        }
        // The line items: only when expanded, with the discount shared out, and on their own route.
        assert!(done.line_items.is_none());
        let expanded = RetrieveCheckoutSession::new(session.id.clone())
            .expand(["line_items".to_owned()])
            .send(&client)
            .await
            .unwrap();
        let line = &expanded.line_items.expect("expanded line items").data[0];
        assert_eq!(
            (
                line.amount_subtotal,
                line.amount_discount,
                line.amount_total
            ),
            (10_000, 2_500, 7_500)
        );
        assert_eq!(line.description.as_deref(), Some("Lifetime"));
        assert_eq!(
            line.price.as_ref().map(|p| p.id.as_str()),
            Some(price.id.as_str())
        );
        let listed = ListLineItemsCheckoutSession::new(session.id.as_str())
            .send(&client)
            .await
            .expect("line items decode");
        assert_eq!(listed.data.len(), 1);
        assert_eq!(listed.data[0].id, line.id);
        let (_, intent) = app
            .api(
                Method::GET,
                &format!(
                    "/payment_intents/{}",
                    done.payment_intent.unwrap().id().as_str()
                ),
                Some(&key),
                &[],
            )
            .await;
        assert_eq!(
            intent["amount"], 7_500,
            "the card is charged the discounted total"
        );
    }

    // In subscription mode the discount is carried to the subscription's first invoice.
    let monthly = CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(10_000)
        .recurring(CreatePriceRecurring::new(
            CreatePriceRecurringInterval::Month,
        ))
        .send(&client)
        .await
        .unwrap();
    let (_, session) = app
        .api(
            Method::POST,
            "/checkout/sessions",
            Some(&key),
            &[
                ("mode", "subscription"),
                ("success_url", "https://shop.example/done"),
                ("line_items[0][price]", monthly.id.as_str()),
                ("discounts[0][coupon]", "FRIENDS"),
            ],
        )
        .await;
    assert_eq!(
        (&session["amount_total"], &session["discounts"][0]["coupon"]),
        (&json!(7_500), &json!("FRIENDS")),
        "the preset discount is in the totals from the start: {session}"
    );
    let paid = app
        .pay_checkout(
            session["url"].as_str().unwrap(),
            Some("subscriber@example.com"),
            "4242 4242 4242 4242",
        )
        .await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let (_, done) = app
        .api(
            Method::GET,
            &format!(
                "/checkout/sessions/{}?expand[]=subscription.latest_invoice",
                session["id"].as_str().unwrap()
            ),
            Some(&key),
            &[],
        )
        .await;
    let invoice = &done["subscription"]["latest_invoice"];
    assert_eq!(
        (
            &invoice["subtotal"],
            &invoice["total"],
            &invoice["amount_paid"]
        ),
        (&json!(10_000), &json!(7_500), &json!(7_500)),
        "{done}"
    );
    assert!(
        done["subscription"].get("sandbox").is_none(),
        "an expanded object keeps the sandbox's notes to itself"
    );

    // Each purchase counts a redemption; a code redeemed max_redemptions times is refused.
    let (_, friends) = app
        .api(Method::GET, "/coupons/FRIENDS", Some(&key), &[])
        .await;
    let (_, code) = app
        .api(
            Method::GET,
            &format!("/promotion_codes/{}", promo.id.as_str()),
            Some(&key),
            &[],
        )
        .await;
    assert_eq!(
        (&friends["times_redeemed"], &code["times_redeemed"]),
        (&json!(3), &json!(1))
    );
    let (_, once) = app
        .api(
            Method::POST,
            "/promotion_codes",
            Some(&key),
            &[
                ("promotion[type]", "coupon"),
                ("promotion[coupon]", "FRIENDS"),
                ("code", "ONCEONLY"),
                ("max_redemptions", "1"),
            ],
        )
        .await;
    let once_id = once["id"].as_str().unwrap();
    let with_once = [
        ("mode", "payment"),
        ("success_url", "https://shop.example/done"),
        ("line_items[0][price]", price.id.as_str()),
        ("discounts[0][promotion_code]", once_id),
    ];
    let (status, first) = app
        .api(Method::POST, "/checkout/sessions", Some(&key), &with_once)
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let paid = app
        .pay_checkout(
            first["url"].as_str().unwrap(),
            Some("once@example.com"),
            "4242 4242 4242 4242",
        )
        .await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let (status, again) = app
        .api(Method::POST, "/checkout/sessions", Some(&key), &with_once)
        .await;
    assert_eq!(
        (status, again["error"]["param"].as_str()),
        (StatusCode::BAD_REQUEST, Some("discounts")),
        "{again}"
    );

    // Refused up front: an unknown coupon, two discounts, a discount together with the code
    // field, and a discount naming both a coupon and a code.
    for (form, param) in [
        (
            vec![("discounts[0][coupon]", "NOPE")],
            "discounts[0][coupon]",
        ),
        (
            vec![
                ("discounts[0][coupon]", "FRIENDS"),
                ("discounts[1][coupon]", "FRIENDS"),
            ],
            "discounts",
        ),
        (
            vec![
                ("discounts[0][coupon]", "FRIENDS"),
                ("allow_promotion_codes", "true"),
            ],
            "discounts",
        ),
        (
            vec![
                ("discounts[0][coupon]", "FRIENDS"),
                ("discounts[0][promotion_code]", promo.id.as_str()),
            ],
            "discounts[0]",
        ),
    ] {
        let mut form = form;
        form.extend([
            ("mode", "payment"),
            ("success_url", "https://shop.example/done"),
            ("line_items[0][price]", price.id.as_str()),
        ]);
        let (status, body) = app
            .api(Method::POST, "/checkout/sessions", Some(&key), &form)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{form:?}: {body}");
        assert_eq!(body["error"]["param"], param, "{form:?}: {body}");
    }
}
