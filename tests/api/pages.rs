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
        bundle_dir(&page).len() > "/pkg/".len() && page.contains("/saas-billing.js"),
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
    // A kept copy of the page (`catalog::cache`) is forgotten once Postgres has told the app.
    assert!(app.page_eventually_contains("/pricing", "Enterprise").await);
    let page = assert_status(app.get("/pricing").await, StatusCode::OK).await;
    assert!(page.contains("Enterprise") && page.contains("$1,999"));
    assert!(!page.contains("Starter"));
}

/// The `'sha256-…'` sources a kept page's policy must name: one per inline script.
fn script_hashes(page: &str) -> Vec<String> {
    use base64::Engine as _;
    use sha2::Digest as _;
    page.split("<script")
        .skip(1)
        .filter_map(|tag| {
            let (attributes, rest) = tag.split_once('>')?;
            let body = rest.split_once("</script>")?.0;
            (!attributes.contains("src=")).then(|| {
                let hash = sha2::Sha256::digest(body.as_bytes());
                format!(
                    "'sha256-{}'",
                    base64::engine::general_purpose::STANDARD.encode(hash)
                )
            })
        })
        .collect()
}

fn csp(res: &reqwest::Response) -> String {
    res.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Strangers get the pricing page kept as rendered: the same bytes, its scripts allowed by
/// their hashes (a nonce could not be fresh), gzipped once; a logged-in visitor's page is
/// rendered for them.
#[tokio::test]
async fn strangers_get_a_kept_pricing_page_whose_policy_names_its_scripts() {
    let app = spawn_app().await;
    // The catalog's seeding is delivered: each change makes the app forget the page.
    app.webhooks_settled().await;
    let visitor = new_client();
    let get = |path: &'static str| visitor.get(app.at(path)).send();
    let first = get("/pricing").await.unwrap();
    assert!(csp(&first).contains("'nonce-"), "the first is rendered");
    let first = first.text().await.unwrap();
    // Kept once the app follows the catalog's changes (its listener connects at start-up).
    let is_kept = || async { !csp(&get("/pricing").await.unwrap()).contains("'nonce-") };
    assert!(eventually(is_kept).await, "the page is kept");
    let kept = get("/pricing").await.unwrap();
    let policy = csp(&kept);
    assert!(
        !policy.contains("'nonce-") && !policy.contains("unsafe-inline"),
        "{policy}"
    );
    assert_eq!(kept.headers()[header::CACHE_CONTROL], "no-cache");
    let kept = kept.text().await.unwrap();
    let again = get("/pricing").await.unwrap().text().await.unwrap();
    assert_eq!(again, kept, "the same bytes each time");
    // The page as rendered, but for the nonce of the render it was kept from.
    let nonce = |page: &str| {
        let start = page.find("nonce=\"").expect("a nonce") + "nonce=\"".len();
        page[start..start + page[start..].find('"').unwrap()].to_owned()
    };
    assert_eq!(
        first.replace(&nonce(&first), &nonce(&kept)),
        kept,
        "the same page, kept"
    );
    let hashes = script_hashes(&kept);
    assert!(
        !hashes.is_empty(),
        "the page hydrates with an inline script"
    );
    for hash in &hashes {
        assert!(
            policy.contains(hash.as_str()),
            "{hash} missing from {policy}"
        );
    }
    assert_eq!(
        policy.matches("'sha256-").count(),
        hashes.len(),
        "nothing else inline is allowed: {policy}"
    );

    // Gzipped once, for clients that take it: the same page.
    let zipped = visitor
        .get(app.at("/pricing"))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
    let mut unzipped = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(&zipped.bytes().await.unwrap()[..]),
        &mut unzipped,
    )
    .unwrap();
    assert_eq!(unzipped, kept);

    // The yearly page is kept apart; a query of a stranger's making is rendered every time.
    let yearly = get("/pricing?interval=year")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(yearly.contains("$290"));
    for _ in 0..2 {
        let made_up = visitor
            .get(app.at("/pricing?interval=year&x=1"))
            .send()
            .await
            .unwrap();
        assert!(csp(&made_up).contains("'nonce-"));
    }

    // Logged in, the page is theirs: rendered, with their navigation.
    signed_up_user(&app, "kept").await;
    let theirs = app.get("/pricing").await;
    assert!(csp(&theirs).contains("'nonce-"));
    let theirs = theirs.text().await.unwrap();
    assert!(theirs.contains("Log out") && !kept.contains("Log out"));
}

/// A kept page follows the catalog whoever changes it (a webhook here, or a write to the
/// tables as another instance or `sync-catalog` makes), also across a lost connection to
/// Postgres, when a change may go unheard.
#[tokio::test]
async fn the_kept_pricing_page_follows_every_catalog_change() {
    use stripe_product::product::UpdateProduct;
    let app = spawn_app().await;
    let visitor = new_client();
    let page = || async {
        let res = visitor.get(app.at("/pricing")).send().await.unwrap();
        res.text().await.unwrap()
    };
    let kept_shows = |text: &'static str| async move {
        eventually(|| async { page().await.contains(text) }).await
    };
    assert!(page().await.contains("Pro"));
    assert!(page().await.contains("Pro"), "kept");

    // Through Stripe and its webhook.
    app.stripe()
        .await
        .post(
            &UpdateProduct::new("prod_pro").name("Professional"),
            "kept-rename",
        )
        .await
        .unwrap();
    assert!(kept_shows("Professional").await);

    // Straight into the tables, as another instance writes them.
    sqlx::query("update products set name = 'Pro Plus' where id = 'prod_pro'")
        .execute(&app.db)
        .await
        .unwrap();
    assert!(kept_shows("Pro Plus").await);

    // The listener's connection is cut, and the catalog changes before it is back: what the
    // app kept is not trusted once it cannot know.
    assert!(page().await.contains("Pro Plus"));
    let cut: i64 = sqlx::query_scalar(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity
         where datname = current_database() and query ilike 'listen%'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(cut, 1, "the app listens on a connection of its own");
    sqlx::query("update products set name = 'Pro Max' where id = 'prod_pro'")
        .execute(&app.db)
        .await
        .unwrap();
    assert!(kept_shows("Pro Max").await);
    let listening = eventually(|| async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from pg_stat_activity
             where datname = current_database() and query ilike 'listen%'",
        )
        .fetch_one(&app.db)
        .await
        .unwrap()
            == 1
    })
    .await;
    assert!(listening, "it listens again");
    sqlx::query("update products set name = 'Pro Again' where id = 'prod_pro'")
        .execute(&app.db)
        .await
        .unwrap();
    assert!(kept_shows("Pro Again").await);
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

/// A bundle folder of the test's own: the files' contents say which variant was sent.
fn bundle_site(js: &str) -> String {
    let root = format!("target/site/test-bundle-{}", uuid::Uuid::new_v4().simple());
    let pkg = std::path::Path::new(&root).join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    for (name, body) in [
        ("saas-billing.js", js.to_owned()),
        ("saas-billing.js.br", format!("{js} as brotli")),
        ("saas-billing.js.gz", format!("{js} as gzip")),
        ("saas-billing.wasm", "wasm".to_owned()),
        ("saas-billing.css", "body{}".to_owned()),
    ] {
        std::fs::write(pkg.join(name), body).unwrap();
    }
    // What `public/` holds, at the top of the site.
    std::fs::write(std::path::Path::new(&root).join("favicon.svg"), "<svg/>").unwrap();
    root
}

/// `/pkg/<version>/` from a page: what a browser would fetch.
fn bundle_dir(page: &str) -> String {
    let start = page.find("/pkg/").expect("the page links the bundle");
    let version_end = start + 5 + page[start + 5..].find('/').expect("a versioned path");
    page[start..=version_end].to_owned()
}

#[tokio::test]
async fn the_bundle_is_versioned_precompressed_and_cached_for_good_while_pages_are_not() {
    let site = bundle_site("JS one");
    let database = TestDatabase::create().await;
    let app = spawn_app_on(&database, |c| c.site_root = site.clone()).await;
    let res = app.get("/pricing").await;
    assert_eq!(
        res.headers()[header::CACHE_CONTROL],
        "no-cache",
        "pages are asked for again"
    );
    let page = res.text().await.unwrap();
    let dir = bundle_dir(&page);
    assert!(
        page.contains(&format!("{dir}saas-billing.js"))
            && page.contains(&format!("{dir}saas-billing.wasm"))
            && page.contains(&format!("{dir}saas-billing.css")),
        "script, wasm and stylesheet come from one versioned folder: {dir}"
    );

    // No automatic decoding: the test sees the bytes and headers a browser gets.
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let fetch = |encoding: &'static str, path: String| {
        let raw = raw.clone();
        let url = app.at(&path);
        async move {
            raw.get(url)
                .header(header::ACCEPT_ENCODING, encoding)
                .send()
                .await
                .unwrap()
        }
    };
    for (accepts, encoding, body) in [
        ("br, gzip", Some("br"), "JS one as brotli"),
        ("gzip", Some("gzip"), "JS one as gzip"),
        ("identity", None, "JS one"),
    ] {
        let res = fetch(accepts, format!("{dir}saas-billing.js")).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert_eq!(
            res.headers()
                .get(header::CONTENT_ENCODING)
                .map(|v| v.to_str().unwrap()),
            encoding,
            "Accept-Encoding: {accepts}"
        );
        assert!(res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("javascript"));
        assert_eq!(
            res.text().await.unwrap(),
            body,
            "Accept-Encoding: {accepts}"
        );
    }

    // `public/`'s files keep their names: kept for a day, not for good.
    let icon = fetch("identity", "/favicon.svg".to_owned()).await;
    assert_eq!(icon.status(), StatusCode::OK);
    assert_eq!(
        icon.headers()[header::CACHE_CONTROL],
        "public, max-age=86400"
    );
    assert!(icon.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("image/svg+xml"));
    assert_eq!(icon.text().await.unwrap(), "<svg/>");

    // What is not there, or not this build's, is a 404 nobody may keep.
    for path in [
        format!("{dir}nothing.js"),
        "/pkg/0123456789abcdef/saas-billing.js".to_owned(),
        "/pkg/saas-billing.js".to_owned(),
    ] {
        let res = fetch("identity", path.clone()).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            res.headers().get(header::CACHE_CONTROL).is_none(),
            "{path} must not be cached"
        );
    }

    // A new build is a new URL, and the old one is gone from the new instance.
    let rebuilt = bundle_site("JS two");
    let next = spawn_app_on(&database, |c| c.site_root = rebuilt.clone()).await;
    let next_dir = bundle_dir(&next.page("/pricing").await);
    assert_ne!(next_dir, dir, "the version follows the contents");
    let res = fetch("identity", format!("{dir}saas-billing.js")).await;
    assert_eq!(res.text().await.unwrap(), "JS one", "the first instance");
    let old_on_new = raw
        .get(next.at(&format!("{dir}saas-billing.js")))
        .send()
        .await
        .unwrap();
    assert_eq!(old_on_new.status(), StatusCode::NOT_FOUND);
    for root in [site, rebuilt] {
        let _ = std::fs::remove_dir_all(root);
    }
}

/// Reading a page writes no session: a visitor without one is not given one (no cookie, no
/// row), and a logged-in user's page views leave their session row as it was.
#[tokio::test]
async fn page_views_write_no_session() {
    let app = spawn_app().await;
    let sessions = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from tower_sessions.session")
            .fetch_one(&app.db)
            .await
            .unwrap()
    };
    let visitor = new_client();
    for path in ["/", "/pricing", "/login", "/signup"] {
        let res = visitor.get(app.at(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        assert!(
            !res.headers().contains_key(header::SET_COOKIE),
            "{path} gave a visitor a session"
        );
    }
    assert_eq!(sessions().await, 0);

    signed_up_user(&app, "views").await;
    let expiry = || async {
        sqlx::query_scalar::<_, time::OffsetDateTime>(
            "select expiry_date from tower_sessions.session",
        )
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    let before = expiry().await;
    for path in ["/", "/pricing", "/dashboard"] {
        assert_status(app.get(path).await, StatusCode::OK).await;
    }
    assert_eq!(expiry().await, before, "the session was written again");
}
