use crate::helpers::*;
use reqwest::{header, StatusCode};

#[tokio::test]
async fn signup_logs_in_and_stores_only_a_password_hash() {
    let app = spawn_app().await;
    let email = unique_email("Ann");
    let res = app.signup(&email, PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    // The hydrated app navigates on this header; the Location says where.
    assert!(res.headers().contains_key("serverfnredirect"));
    assert_eq!(location(&res), "/dashboard");

    let page = assert_status(app.get("/dashboard").await, StatusCode::OK).await;
    assert!(
        page.contains(&email.to_lowercase()),
        "dashboard shows the user's email"
    );

    let (stored, hash): (String, String) = sqlx::query_as("select email, password_hash from users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(stored, email.to_lowercase());
    assert!(hash.starts_with("$argon2"), "argon2 hash, got {hash}");
    assert!(!hash.contains(PASSWORD));

    let sessions: i64 = sqlx::query_scalar("select count(*) from tower_sessions.session")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(sessions, 1, "the session lives in Postgres");
}

#[tokio::test]
async fn a_taken_email_gets_no_second_account_and_its_owner_hears_of_it() {
    let app = spawn_app().await;
    let email = unique_email("dupe");
    assert_eq!(app.signup(&email, PASSWORD).await.status(), StatusCode::OK);

    // Whatever its case, the same address: the answer looks like any sign-up's ...
    let other = new_client();
    let res = app
        .call_with(
            &other,
            "signup",
            &[("email", &email.to_uppercase()), ("password", PASSWORD)],
        )
        .await;
    assert_status(res, StatusCode::OK).await;
    assert_eq!(app.user_count().await, 1);
    // ... but nobody is logged in as the owner, and the owner gets a note instead.
    let wall = other.get(app.at("/dashboard")).send().await.unwrap();
    assert_eq!(wall.status(), StatusCode::SEE_OTHER);
    let notices: i64 = sqlx::query_scalar(
        "select count(*) from email_outbox where to_address = $1 and kind = 'signup_address_taken'",
    )
    .bind(email.to_lowercase())
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(notices, 1);
}

#[tokio::test]
async fn bad_input_gets_a_4xx_and_writes_nothing() {
    let app = spawn_app().await;
    for (email, password, field) in [
        ("not-an-email", PASSWORD, "email"),
        ("", PASSWORD, "email"),
        ("ok@example.com", "short", "password"),
    ] {
        let body = assert_status(
            app.signup(email, password).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert!(
            body.contains(&format!("\"field\":\"{field}\"")),
            "{email}/{password}: {body}"
        );
    }
    // A missing argument is a malformed request, not a server error.
    let res = app.call("signup", &[("email", "x@example.com")]).await;
    assert_status(res, StatusCode::BAD_REQUEST).await;
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_answer_alike() {
    let app = spawn_app().await;
    let email = unique_email("known");
    app.signup(&email, PASSWORD).await;

    let anon = new_client();
    let wrong = app
        .call_with(
            &anon,
            "login",
            &[("email", &email), ("password", "wrong password")],
        )
        .await;
    let unknown = app
        .call_with(
            &anon,
            "login",
            &[
                ("email", &unique_email("ghost")),
                ("password", "wrong password"),
            ],
        )
        .await;
    let (wrong_status, unknown_status) = (wrong.status(), unknown.status());
    let (wrong_body, unknown_body) = (wrong.text().await.unwrap(), unknown.text().await.unwrap());
    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_status, wrong_status);
    assert_eq!(unknown_body, wrong_body);
    assert!(wrong_body.contains("InvalidCredentials"));
}

#[tokio::test]
async fn login_is_limited_per_email_and_ip() {
    let app = spawn_app_with(|c| c.login_max_failures = 3).await;
    let email = unique_email("limited");
    app.signup(&email, PASSWORD).await;
    let anon = new_client();
    for _ in 0..3 {
        let res = app
            .call_with(
                &anon,
                "login",
                &[("email", &email), ("password", "guess guess")],
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused while the limit holds.
    let res = app
        .call_with(&anon, "login", &[("email", &email), ("password", PASSWORD)])
        .await;
    assert_status(res, StatusCode::TOO_MANY_REQUESTS).await;
    // Another email from the same address is not affected.
    let other = unique_email("other");
    app.call_with(
        &new_client(),
        "signup",
        &[("email", &other), ("password", PASSWORD)],
    )
    .await;
    let res = app
        .call_with(&anon, "login", &[("email", &other), ("password", PASSWORD)])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_cycles_the_session_id() {
    let app = spawn_app().await;
    let email = unique_email("cycle");
    let first =
        session_cookie(&app.signup(&email, PASSWORD).await).expect("signup sets a session cookie");
    let second =
        session_cookie(&app.login(&email, PASSWORD).await).expect("login sets a session cookie");
    assert_ne!(first, second);

    // Whoever held the old id has nothing.
    let stale = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = stale
        .get(app.at("/dashboard"))
        .header(header::COOKIE, format!("sb_session={first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let res = stale
        .get(app.at("/dashboard"))
        .header(header::COOKIE, format!("sb_session={second}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn session_cookie_is_httponly_and_lax() {
    let app = spawn_app().await;
    let res = app.signup(&unique_email("cookie"), PASSWORD).await;
    let raw = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(raw.contains("HttpOnly"), "{raw}");
    assert!(raw.contains("SameSite=Lax"), "{raw}");
    assert!(!raw.contains("Secure"), "plain-http test config: {raw}");
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    let email = unique_email("bye");
    let cookie = session_cookie(&app.signup(&email, PASSWORD).await).unwrap();
    let res = app.call("logout", &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(location(&res), "/");

    let res = app.get("/dashboard").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    // Replaying the old cookie does not bring the session back.
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = replay
        .get(app.at("/dashboard"))
        .header(header::COOKIE, format!("sb_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn protected_pages_and_functions_need_a_login() {
    let app = spawn_app().await;
    for (path, next) in [
        ("/dashboard", "/dashboard"),
        ("/settings/billing", "/settings/billing"),
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&res), format!("/login?next={next}"));
    }
    let res = app.get("/dashboard?tab=a&b=c").await;
    assert_eq!(location(&res), "/login?next=/dashboard%3Ftab%3Da%26b%3Dc");
    // The data behind the pages is refused too, not just hidden.
    for (endpoint, args) in [
        ("dashboard", &[][..]),
        ("billing", &[("page", "1")][..]),
        ("billing/portal", &[][..]),
    ] {
        assert_status(app.call(endpoint, args).await, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn login_returns_to_a_local_next_only() {
    let app = spawn_app().await;
    let email = unique_email("next");
    app.signup(&email, PASSWORD).await;
    let res = app
        .call(
            "login",
            &[
                ("email", &email),
                ("password", PASSWORD),
                ("next", "/settings/billing"),
            ],
        )
        .await;
    assert_eq!(location(&res), "/settings/billing");
    for evil in [
        "//evil.example",
        "https://evil.example/x",
        "/\\evil.example",
    ] {
        let res = app
            .call(
                "login",
                &[("email", &email), ("password", PASSWORD), ("next", evil)],
            )
            .await;
        assert_eq!(location(&res), "/dashboard", "{evil}");
    }
}

#[tokio::test]
async fn plain_html_forms_work_without_javascript() {
    let app = spawn_app().await;
    let html_post = |form: Vec<(&'static str, String)>| {
        app.client
            .post(app.at("/api/signup"))
            .header(header::ACCEPT, "text/html,application/xhtml+xml")
            .header(header::REFERER, app.at("/signup"))
            .form(&form)
            .send()
    };
    // An error comes back as a redirect to the form, which then shows the message.
    let res = html_post(vec![
        ("email", "nope".into()),
        ("password", PASSWORD.into()),
    ])
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    let back = location(&res).to_owned();
    assert!(
        back.contains("/signup?") && back.contains("__err="),
        "{back}"
    );
    let page = assert_status(app.client.get(&back).send().await.unwrap(), StatusCode::OK).await;
    assert!(
        page.contains("Enter a valid email address"),
        "the form shows the server's message"
    );
    assert!(
        page.contains(r#"value="nope""#) && !page.contains(PASSWORD),
        "the form keeps the typed address, never the password"
    );
    let again = assert_status(app.client.get(&back).send().await.unwrap(), StatusCode::OK).await;
    assert!(
        !again.contains(r#"value="nope""#),
        "the typed address is shown once"
    );

    let email = unique_email("nojs");
    let res = html_post(vec![
        ("email", email.clone()),
        ("password", PASSWORD.into()),
    ])
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::FOUND);
    assert_eq!(location(&res), "/dashboard");
    let page = assert_status(app.get("/dashboard").await, StatusCode::OK).await;
    assert!(page.contains(&email));
}

#[tokio::test]
async fn a_user_gets_exactly_one_stripe_customer_even_from_concurrent_clicks() {
    let app = spawn_app().await;
    let user = signed_up_user(&app, "customer").await;
    let stripe = app.stripe().await;

    let clicks = (0..5)
        .map(|_| saas_billing::billing::customer::ensure_customer(&app.db, &stripe, &user, false));
    let ids: Vec<String> = futures::future::join_all(clicks)
        .await
        .into_iter()
        .map(|r| r.expect("a customer"))
        .collect();
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");

    let in_stripe: Vec<serde_json::Value> =
        sqlx::query_scalar("select data from stripe_sandbox.objects where object = 'customer' and data ->> 'email' = $1")
            .bind(&user.email)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(in_stripe.len(), 1, "one customer at Stripe");
    assert_eq!(in_stripe[0]["metadata"]["user_id"], user.id.to_string());
    let rows: i64 = sqlx::query_scalar("select count(*) from customers")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 1);
    // Later calls find it without asking Stripe again.
    assert_eq!(
        saas_billing::billing::customer::ensure_customer(&app.db, &stripe, &user, false)
            .await
            .unwrap(),
        ids[0]
    );
}

/// A sign-up from a fresh client (no session, as a stranger's script would send it).
async fn sign_up_anew(app: &TestApp, email: &str) -> reqwest::Response {
    app.call_with(
        &new_client(),
        "signup",
        &[("email", email), ("password", PASSWORD)],
    )
    .await
}

#[tokio::test]
async fn sign_ups_are_limited_per_network_and_per_address() {
    // Each sign-up hashes a password and sends an email: a stranger gets a bounded number.
    let database = TestDatabase::create().await;
    let app = spawn_app_env(&database, &[("SIGNUP_MAX_PER_NETWORK", "4")], |_| {}).await;
    for i in 0..4 {
        let res = sign_up_anew(&app, &unique_email(&format!("many{i}"))).await;
        assert_eq!(res.status(), StatusCode::OK, "sign-up {i}");
    }
    let refused = unique_email("fifth");
    let res = sign_up_anew(&app, &refused).await;
    let body = assert_status(res, StatusCode::TOO_MANY_REQUESTS).await;
    // The page shows this error in words.
    assert!(body.contains("RateLimited"), "{body}");
    assert!(saas_billing::error::ApiError::RateLimited
        .to_string()
        .starts_with("Too many attempts"));
    let made: i64 = sqlx::query_scalar("select count(*) from users where email = $1")
        .bind(refused.to_lowercase())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(made, 0, "nothing written for the refused one");

    // One address, again and again (its owner is emailed when it is taken): three an hour
    // by default, whoever sends them.
    let app = spawn_app().await;
    let email = unique_email("bombed");
    for _ in 0..3 {
        assert_eq!(sign_up_anew(&app, &email).await.status(), StatusCode::OK);
    }
    let told = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from email_outbox where to_address = $1 and kind = 'signup_address_taken'",
        )
        .bind(email.to_lowercase())
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    let before = told().await;
    assert!(before >= 1, "the owner heard of the taken attempts");
    assert_status(
        sign_up_anew(&app, &email).await,
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    assert_eq!(told().await, before, "a refused attempt sends nothing");
}
