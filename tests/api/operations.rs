//! What running against a real Stripe relies on, proven here against the sandbox at its
//! worst: retries and idempotency under injected faults, and card data that never reaches
//! the app (issue 15).

use crate::helpers::*;
use reqwest::StatusCode;
use std::collections::HashMap;

const USERS: usize = 100;

/// A signed-in browser of its own for a new user.
async fn browser(app: &TestApp, n: usize) -> (reqwest::Client, uuid::Uuid) {
    let client = new_client();
    let email = unique_email(&format!("crowd{n}"));
    let res = app
        .call_with(
            &client,
            "signup",
            &[("email", &email), ("password", PASSWORD)],
        )
        .await;
    assert!(
        res.status().is_success() || res.status().is_redirection(),
        "{}",
        res.status()
    );
    let id = sqlx::query_scalar("select id from users where email = $1")
        .bind(email.to_lowercase())
        .fetch_one(&app.db)
        .await
        .unwrap();
    (client, id)
}

/// What a person does when a click fails: click again, a few times. Returns how many
/// clicks failed; panics if the last one did too.
async fn click_until_it_works(
    app: &TestApp,
    client: &reqwest::Client,
    endpoint: &str,
    form: &[(&str, &str)],
) -> u32 {
    let mut failures = 0;
    loop {
        let res = app.call_with(client, endpoint, form).await;
        let status = res.status();
        if status.is_success() || status.is_redirection() {
            return failures;
        }
        let said = res.text().await.unwrap_or_default();
        assert!(
            status.is_server_error() && failures < 5,
            "{endpoint}: click {} answered {status}: {said}",
            failures + 1
        );
        failures += 1;
    }
}

/// Objects of one kind in the app's sandbox account, by the user they were made for.
async fn per_user(app: &TestApp, object: &str, open_only: bool) -> HashMap<String, i64> {
    // The sandbox keeps each account under an id derived from its key.
    let key = app.setting("sandbox_secret_key").await;
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()));
    let account = format!("acct_{}", &digest[..16]);
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select coalesce(data->'metadata'->>'user_id', data->>'client_reference_id'), count(*)
           from stripe_sandbox.objects
          where account = $1 and object = $2 and (not $3 or data->>'status' = 'open')
          group by 1",
    )
    .bind(&account)
    .bind(object)
    .bind(open_only)
    .fetch_all(&app.db)
    .await
    .unwrap();
    rows.into_iter().collect()
}

#[tokio::test]
async fn a_fifth_of_stripe_calls_failing_leaves_one_customer_and_one_open_checkout_per_user() {
    // 500s and 429s before any work, and connections dropped after the work is done.
    let app = spawn_app_with(|c| c.sandbox.fault_rate = 0.2).await;
    let pro: String = sqlx::query_scalar("select id from prices where lookup_key = 'pro_monthly'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let users = futures::future::join_all((0..USERS).map(|n| browser(&app, n))).await;

    // Everyone at once: Checkout (which makes the customer), then the portal.
    let outcomes = futures::future::join_all(users.iter().map(|(client, _)| {
        let (app, pro) = (&app, &pro);
        async move {
            let checkout =
                click_until_it_works(app, client, "checkout", &[("price_id", pro)]).await;
            let portal = click_until_it_works(app, client, "billing/portal", &[]).await;
            (checkout, portal)
        }
    }))
    .await;
    let retried: u32 = outcomes.iter().map(|(c, p)| c + p).sum();

    let customers = per_user(&app, "customer", false).await;
    let sessions = per_user(&app, "checkout.session", true).await;
    for (_, user) in &users {
        let user = user.to_string();
        assert_eq!(customers.get(&user), Some(&1), "one customer for {user}");
        assert_eq!(
            sessions.get(&user),
            Some(&1),
            "one open checkout for {user}"
        );
    }
    assert_eq!(
        customers.values().sum::<i64>(),
        USERS as i64,
        "no customer for nobody"
    );
    let linked: i64 =
        sqlx::query_scalar("select count(distinct stripe_customer_id) from customers")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        linked, USERS as i64,
        "the app links each user to their one customer"
    );
    println!("clicks that failed and were repeated: {retried}");
}

/// Card data is typed into Stripe's page and stays there: after a full Checkout with a card,
/// neither the app's log (at debug level, where most would turn it up) nor any table outside
/// the sandbox's own schema (Stripe's side) holds the number, the CVC or the expiry as typed.
/// The app does keep what Stripe tells it of a card (brand, last four, expiry month and
/// year, for "card expiring" notices), which is not cardholder data without the number.
#[tokio::test]
async fn card_numbers_cvcs_and_expiry_dates_never_reach_the_app() {
    const NUMBER: &str = "4242 4242 4242 4242";
    const CVC: &str = "837";
    const EXPIRY: &str = "11 / 39";
    let database = TestDatabase::create().await;
    let server = ServerProcess::start(&database, &[("RUST_LOG", "debug")]).await;
    let app = &server.app;
    let user = signed_up_user(app, "pci").await;
    let pro: String = sqlx::query_scalar("select id from prices where lookup_key = 'pro_monthly'")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let res = app.call("checkout", &[("price_id", &pro)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let paid = app
        .client
        .post(location(&res))
        .form(&[
            ("card_number", NUMBER),
            ("card_expiry", EXPIRY),
            ("card_cvc", CVC),
            ("name", "Ann Buyer"),
            ("country", "US"),
            ("postal_code", "10001"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), StatusCode::SEE_OTHER, "the card was taken");
    assert!(app.page_eventually_contains("/dashboard", "Pro").await);
    let card_described = eventually(|| async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from payment_methods
              where last4 = '4242' and exp_month = 11 and exp_year = 2039
                and stripe_customer_id = (select stripe_customer_id from customers where user_id = $1)",
        )
        .bind(user.id)
        .fetch_one(&app.db)
        .await
        .unwrap()
            == 1
    })
    .await;
    assert!(card_described, "what Stripe says of the card arrived");

    // Every table but Stripe's side: the number (spaced or not), the expiry as typed, and
    // the CVC as a value of its own (a column, or a JSON value), not digits inside a token.
    let tables: Vec<(String, String)> = sqlx::query_as(
        "select table_schema::text, table_name::text from information_schema.tables
          where table_type = 'BASE TABLE'
            and table_schema not in ('pg_catalog', 'information_schema', 'stripe_sandbox')",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(
        tables.iter().any(|(_, t)| t == "customers") && tables.len() > 10,
        "{tables:?}"
    );
    for (schema, table) in &tables {
        let found: i64 = sqlx::query_scalar(&format!(
            r#"select count(*) from "{schema}"."{table}" t
                where t::text ~ '4242 ?4242 ?4242 ?4242'
                   or t::text like '%{EXPIRY}%'
                   or t::text ~ '(^|[\s,(":]){CVC}([\s,)"]|$)'"#
        ))
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(found, 0, "{schema}.{table} holds card data");
    }

    let log = server.stop();
    assert!(
        log.contains("webhook accepted") && log.contains("DEBUG"),
        "the log was written at debug level"
    );
    for needle in [
        "4242424242424242",
        NUMBER,
        "4242+4242",
        EXPIRY,
        "11+%2F+39",
        "card_number",
        "card_cvc",
        "card_expiry",
    ] {
        assert!(!log.contains(needle), "the log holds {needle:?}");
    }
}
