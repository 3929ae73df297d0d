//! Static files beside pages: requests per second for the bundle (versioned, precompressed),
//! the favicon, `/pricing` (kept for strangers, and rendered), and `/healthz`, each over 1 and 16 kept-alive
//! connections, in one run; then the bundle's raw, gzip and brotli sizes.
//! Run with `scripts/bench`: it builds the release bundle and sets `LEPTOS_SITE_ROOT`.

mod common;

use saas_billing::{config::Config, startup::Application};
use std::time::{Duration, Instant};
use stripe_sandbox::testing::TestDatabase;

const RUN_FOR: Duration = Duration::from_secs(3);
const FILES: [&str; 3] = ["saas-billing.js", "saas-billing.wasm", "saas-billing.css"];

#[tokio::main]
async fn main() {
    let site = std::env::var("LEPTOS_SITE_ROOT").expect("LEPTOS_SITE_ROOT (scripts/bench sets it)");
    let database = TestDatabase::create().await;
    let config = Config::from_lookup(|n| match n {
        "DATABASE_URL" => Some(database.url.clone()),
        "PORT" => Some("0".into()),
        "LEPTOS_SITE_ROOT" => Some(site.clone()),
        "RUST_LOG" => Some("warn".into()),
        _ => None,
    })
    .expect("config");
    let app = Application::build(config).await.expect("app builds");
    let url = app.url().to_owned();
    tokio::spawn(app.run_until_stopped());
    let probe = reqwest::Client::new();
    common::wait_until_ready(&probe, &url).await;
    let page = probe
        .get(format!("{url}/pricing"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = page.find("/pkg/").expect("the page links its bundle");
    let dir = &page[start..start + 5 + page[start + 5..].find('/').unwrap() + 1];

    let targets = [
        ("bundle css (br)", format!("{dir}saas-billing.css")),
        ("bundle js (br)", format!("{dir}saas-billing.js")),
        ("favicon.svg", "/favicon.svg".to_owned()),
        // Kept for visitors without a session (`catalog::cache`)…
        ("/pricing", "/pricing".to_owned()),
        // …and rendered: a query it does not keep.
        (
            "/pricing rendered",
            "/pricing?interval=month&rendered".to_owned(),
        ),
        // A page without database reads: what rendering a page costs by itself.
        ("/signup/check-email", "/signup/check-email".to_owned()),
        ("/healthz", "/healthz".to_owned()),
    ];
    println!("pages and static files: requests/s over kept-alive connections, {RUN_FOR:?} each");
    println!("  {:<20} {:>12} {:>12}", "what", "1 conn", "16 conns");
    let mut rates = Vec::new();
    for (name, path) in &targets {
        let one = rate(&format!("{url}{path}"), 1).await;
        let sixteen = rate(&format!("{url}{path}"), 16).await;
        println!("  {name:<20} {one:>12.0} {sixteen:>12.0}");
        rates.push((*name, one, sixteen));
    }
    let of = |name: &str| {
        rates
            .iter()
            .find(|r| r.0 == name)
            .map(|r| (r.1, r.2))
            .unwrap()
    };
    let (css, pricing) = (of("bundle css (br)"), of("/pricing"));
    println!(
        "  /pricing / bundle css: {:.2} at 1 conn, {:.2} at 16 (goal: at least 0.5)",
        pricing.0 / css.0,
        pricing.1 / css.1
    );

    println!("bundle sizes (bytes): raw, gzip -9, brotli -q 11");
    let pkg = std::path::Path::new(&site).join("pkg");
    let size = |name: &str| {
        std::fs::metadata(pkg.join(name))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let mut totals = [0u64; 3];
    for file in FILES {
        let sizes = [
            size(file),
            size(&format!("{file}.gz")),
            size(&format!("{file}.br")),
        ];
        for (total, s) in totals.iter_mut().zip(sizes) {
            *total += s;
        }
        println!(
            "  {file:<18} {:>10} {:>10} {:>10}",
            sizes[0], sizes[1], sizes[2]
        );
    }
    println!(
        "  {:<18} {:>10} {:>10} {:>10}",
        "total", totals[0], totals[1], totals[2]
    );
}

/// Requests per second from `connections` clients, each on one kept-alive connection,
/// asking one after another (as a browser does on each of its connections).
async fn rate(url: &str, connections: usize) -> f64 {
    let until = Instant::now() + RUN_FOR;
    let workers = (0..connections).map(|_| {
        let url = url.to_owned();
        tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut done = 0u64;
            while Instant::now() < until {
                let res = client
                    .get(&url)
                    .header("accept-encoding", "br, gzip")
                    .send()
                    .await
                    .expect("request");
                assert!(res.status().is_success(), "{url} answered {}", res.status());
                res.bytes().await.expect("body");
                done += 1;
            }
            done
        })
    });
    let mut total = 0;
    for worker in workers.collect::<Vec<_>>() {
        total += worker.await.unwrap();
    }
    total as f64 / RUN_FOR.as_secs_f64()
}
