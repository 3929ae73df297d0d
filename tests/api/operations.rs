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
    let pro: String = app.price_id("pro_monthly").await;
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
    let pro: String = app.price_id("pro_monthly").await;
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

/// Stripe sends the customer back before its webhook arrives. The success page grants
/// nothing: it says what is on its way, then, once the webhook has landed, the plan and
/// whether a free trial began.
#[tokio::test]
async fn the_success_page_waits_for_a_held_back_webhook_and_says_what_was_bought() {
    for trial_days in [14, 0] {
        let app = spawn_app_with(|c| {
            // Deliveries go one after another: a short hold each is plenty.
            c.sandbox.chaos_delay = std::time::Duration::from_millis(250);
            c.trial_days = trial_days;
        })
        .await;
        // The catalog's own events first, so the checkout's are not queued behind them.
        app.webhooks_settled().await;
        let user = signed_up_user(&app, "patient").await;
        let pro: String = app.price_id("pro_monthly").await;
        let res = app.call("checkout", &[("price_id", &pro)]).await;
        assert_eq!(res.status(), StatusCode::OK);
        let paid = app
            .pay_checkout(location(&res), None, "4242424242424242")
            .await;
        assert_eq!(paid.status(), StatusCode::SEE_OTHER);
        let success = location(&paid).to_owned();

        let page = app.page(&success).await;
        assert!(page.contains("Finishing your subscription…"), "{page}");
        let stored: i64 =
            sqlx::query_scalar("select count(*) from subscriptions s join customers c on c.stripe_customer_id = s.stripe_customer_id where c.user_id = $1")
                .bind(user.id)
                .fetch_one(&app.db)
                .await
                .unwrap();
        assert_eq!(
            stored, 0,
            "the webhook was held back, and the page granted nothing"
        );

        let (title, detail) = if trial_days > 0 {
            ("Your free trial has started", "Your trial runs until")
        } else {
            // The apostrophe of "You're subscribed" may arrive escaped.
            ("re subscribed", "Your payment went through")
        };
        assert!(
            app.page_eventually_contains(&success, title).await,
            "{}",
            app.page(&success).await
        );
        let page = app.page(&success).await;
        assert!(
            page.contains(detail) && page.contains("Welcome to Pro"),
            "{page}"
        );
    }
}

/// After an outage longer than Stripe's retries, `reconcile` puts Postgres back to what
/// Stripe has: customers' cards, subscriptions and invoices, reporting what it repaired;
/// `--dry-run` only reports; a row a later webhook wrote is left alone.
#[tokio::test]
async fn reconcile_repairs_what_an_outage_left_behind_and_nothing_newer() {
    let app = spawn_app().await;
    let b = subscribed(&app, "pm_card_visa", None).await;
    assert!(eventually_status(&app, &b.customer, "active").await);
    let invoices = "select count(*) from invoices where stripe_customer_id = $1";
    let cards =
        "select count(*) from payment_methods where stripe_customer_id = $1 and last4 = '4242'";
    assert!(eventually(|| async { count_for(&app, invoices, &b.customer).await == 1 }).await);
    assert!(eventually(|| async { count_for(&app, cards, &b.customer).await == 1 }).await);
    app.webhooks_settled().await;

    // What an outage leaves: events that never arrived, so rows that are stale or missing.
    for statement in [
        "update subscriptions set status = 'canceled', stripe_as_of = 0 where stripe_customer_id = $1",
        "delete from invoices where stripe_customer_id = $1",
        "update payment_methods set last4 = '0000' where stripe_customer_id = $1",
        "update customers set card_last4 = null, default_payment_method = null where stripe_customer_id = $1",
    ] {
        sqlx::query(statement).bind(&b.customer).execute(&app.db).await.unwrap();
    }
    let status = || async {
        sqlx::query_scalar::<_, String>(
            "select status from subscriptions where stripe_customer_id = $1",
        )
        .bind(&b.customer)
        .fetch_one(&app.db)
        .await
        .unwrap()
    };

    let (fine, said) = app.run_command(&["reconcile", "--dry-run"]).await;
    assert!(fine, "{said}");
    for line in [
        "customers: 1 checked, 1 differ, 0 unchanged",
        "subscriptions: 1 checked, 1 differ, 0 unchanged",
        "invoices: 1 checked, 1 differ, 0 unchanged",
        "payment methods: 1 checked, 1 differ, 0 unchanged",
        "dry run: nothing was changed",
    ] {
        assert!(said.contains(line), "{line:?} in {said}");
    }
    assert_eq!(status().await, "canceled", "a dry run changes nothing");

    let (fine, said) = app
        .run_command(&["reconcile", "--customer", &b.customer])
        .await;
    assert!(fine, "{said}");
    assert!(
        said.contains("subscriptions: 1 checked, 1 repaired"),
        "{said}"
    );
    assert_eq!(status().await, "active");
    assert_eq!(count_for(&app, invoices, &b.customer).await, 1);
    let card: (Option<String>, String) = sqlx::query_as(
        "select c.card_last4, p.last4 from customers c join payment_methods p on p.stripe_customer_id = c.stripe_customer_id
          where c.stripe_customer_id = $1",
    )
    .bind(&b.customer)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(card, (Some("4242".into()), "4242".into()));

    // Run again: nothing left to repair.
    let (fine, said) = app.run_command(&["reconcile"]).await;
    assert!(
        fine && said.contains("subscriptions: 1 checked, 0 repaired, 1 unchanged"),
        "{said}"
    );
    assert!(said.contains("invoices: 1 checked, 0 repaired"), "{said}");

    // A webhook from a later second than reconcile's read wins, as between two events.
    sqlx::query("update subscriptions set status = 'past_due', stripe_as_of = 4102444800 where stripe_customer_id = $1")
        .bind(&b.customer)
        .execute(&app.db)
        .await
        .unwrap();
    let (fine, said) = app.run_command(&["reconcile"]).await;
    assert!(
        fine && said.contains("subscriptions: 1 checked, 0 repaired"),
        "{said}"
    );
    assert_eq!(status().await, "past_due");

    for args in [
        vec!["reconcile", "--customer", "nobody"],
        vec!["reconcile", "--since", "soon"],
        vec!["reconcile", "--everything"],
    ] {
        let (fine, said) = app.run_command(&args).await;
        assert!(!fine && said.contains("usage:"), "{args:?}: {said}");
    }
}

/// `select count(*) …` about one customer (`$1`).
async fn count_for(app: &TestApp, sql: &str, customer: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(customer)
        .fetch_one(&app.db)
        .await
        .unwrap()
}
