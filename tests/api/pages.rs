use crate::helpers::*;
use reqwest::{header, StatusCode};

#[tokio::test]
async fn pricing_is_rendered_on_the_server_from_the_database() {
    let app = spawn_app().await;
    let page = assert_status(app.get("/pricing").await, StatusCode::OK).await;
    for text in [
        "Starter",
        "Pro",
        "Team",
        "$9",
        "$29",
        "$99",
        "14-day free trial",
    ] {
        assert!(page.contains(text), "pricing page lacks {text:?}");
    }
    assert!(
        page.contains("/pkg/saas-billing.js"),
        "the page loads the hydration bundle"
    );

    // Prices come from the tables, not the code: a new product shows up, an archived one goes.
    sqlx::query("insert into products (id, name, sort_order, offered) values ('prod_ent', 'Enterprise', 9, true)")
        .execute(&app.db)
        .await
        .unwrap();
    sqlx::query(
        "insert into prices (id, product_id, currency, unit_amount, kind, recurring_interval, recurring_interval_count)
         values ('price_ent', 'prod_ent', 'usd', 199900, 'recurring', 'month', 1)",
    )
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query("update products set active = false where name = 'Starter'")
        .execute(&app.db)
        .await
        .unwrap();
    let page = assert_status(app.get("/pricing").await, StatusCode::OK).await;
    assert!(page.contains("Enterprise") && page.contains("$1,999"));
    assert!(!page.contains("Starter"));
}

#[tokio::test]
async fn yearly_prices_without_javascript() {
    let app = spawn_app().await;
    let page = assert_status(app.get("/pricing?interval=year").await, StatusCode::OK).await;
    assert!(page.contains("$290") && page.contains("Save 16%"));
}

#[tokio::test]
async fn the_sandbox_catalog_is_seeded_once_and_synced() {
    let app = spawn_app().await;
    let count = || async {
        sqlx::query_as::<_, (i64, i64)>(
            "select (select count(*) from products), (select count(*) from prices)",
        )
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    assert_eq!(
        count().await,
        (4, 13),
        "the start-up sync brought the seeded catalog in: three plans (each monthly and yearly, with a metered price for each) and the lifetime license"
    );
    // Seeding again finds the catalog there and creates nothing.
    let stripe = app.stripe().await;
    saas_billing::catalog::seed_sandbox_catalog(&stripe)
        .await
        .unwrap();
    let in_stripe: i64 =
        sqlx::query_scalar("select count(*) from stripe_sandbox.objects where object = 'price'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(in_stripe, 13);
}

#[tokio::test]
async fn unknown_pages_are_404_html_and_unknown_api_paths_are_404_json() {
    let app = spawn_app().await;
    let page = assert_status(app.get("/no/such/page").await, StatusCode::NOT_FOUND).await;
    assert!(page.contains("Page not found"));
    let res = app.get("/api/no-such-thing").await;
    assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
    let body = assert_status(res, StatusCode::NOT_FOUND).await;
    assert!(body.contains("\"code\":404"));
}

#[tokio::test]
async fn responses_carry_a_request_id_and_security_headers() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().contains_key("x-request-id"));
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["x-frame-options"], "DENY");
}

#[tokio::test]
async fn sandbox_mode_shows_the_test_banner() {
    let app = spawn_app().await;
    let page = assert_status(app.get("/").await, StatusCode::OK).await;
    assert!(page.contains("Test mode"));
}

#[tokio::test]
async fn responses_are_gzipped_for_clients_that_accept_it() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.at("/pricing"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
    let plain = app.get("/pricing").await;
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
}
