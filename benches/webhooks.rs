//! Webhook throughput: signed `product.updated` events POSTed to the real server at a fixed
//! concurrency, each one verified, recorded in the ledger and applied in one transaction;
//! then pgbench running a comparable one-row write transaction on the same Postgres.
//! Run with `scripts/bench` (it provides DATABASE_URL); results go to BENCHMARKS.md by hand.

use futures::StreamExt;
use saas_billing::{config::Config, startup::Application};
use sqlx::{Connection, Executor, PgConnection};
use std::time::{Duration, Instant};

const EVENTS: usize = 4000;
const CONCURRENCY: usize = 16;

#[tokio::main]
async fn main() {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (scripts/bench sets it)");
    let mut url = url::Url::parse(&base).expect("DATABASE_URL is a URL");
    url.set_path("/postgres");
    let mut admin = PgConnection::connect(url.as_str()).await.expect("connects");
    let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
    admin
        .execute(format!("create database {name}").as_str())
        .await
        .expect("creates the bench database");
    url.set_path(&format!("/{name}"));
    let db_url = url.to_string();

    let config = Config::from_lookup(|n| match n {
        "DATABASE_URL" => Some(db_url.clone()),
        "PORT" => Some("0".into()),
        "DATABASE_MAX_CONNECTIONS" => Some("20".into()),
        "RUST_LOG" => Some("warn".into()),
        _ => None,
    })
    .expect("config");
    let app = Application::build(config).await.expect("app builds");
    let app_url = app.url().to_owned();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client
            .get(format!("{app_url}/readyz"))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut conn = PgConnection::connect(&db_url).await.expect("connects");
    let secret: String =
        sqlx::query_scalar("select value from app_settings where name = 'sandbox_webhook_secret'")
            .fetch_one(&mut conn)
            .await
            .expect("the app registered its endpoint");

    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let bodies: Vec<String> = (0..EVENTS)
        .map(|i| {
            serde_json::json!({
                "id": format!("evt_bench_{i}"), "object": "event", "type": "product.updated", "created": now,
                "livemode": false, "api_version": "2026-09-30.endive", "pending_webhooks": 1,
                "data": { "object": {
                    "id": format!("prod_bench_{i}"), "object": "product", "active": true, "created": now,
                    "images": [], "livemode": false, "marketing_features": [], "metadata": {},
                    "name": format!("Bench {i}"), "type": "service", "updated": now } }
            })
            .to_string()
        })
        .collect();

    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(bodies)
        .map(|body| {
            let client = client.clone();
            let url = format!("{app_url}/api/webhooks/stripe");
            let header = stripe_sandbox::signature_header(&secret, now, body.as_bytes());
            async move {
                let t = Instant::now();
                let res = client
                    .post(url)
                    .header("stripe-signature", header)
                    .body(body)
                    .send()
                    .await
                    .expect("request");
                assert!(
                    res.status().is_success(),
                    "webhook answered {}",
                    res.status()
                );
                t.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let applied: i64 = sqlx::query_scalar("select count(*) from stripe_events where id like 'evt_bench_%' and processed_at is not null")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(applied as usize, EVENTS, "every event processed once");
    println!("webhooks: {EVENTS} events, concurrency {CONCURRENCY}");
    println!(
        "  throughput  {:.0} events/s",
        EVENTS as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  latency     p50 {:.2} ms   p99 {:.2} ms",
        ms(pct(0.50)),
        ms(pct(0.99))
    );

    // The same database, the same concurrency: a transaction that inserts one row and
    // updates it, the floor under what a webhook does.
    conn.execute("create table pgbench_webhooks (id bigserial primary key, payload text not null, processed_at timestamptz)")
        .await
        .unwrap();
    let script = std::env::temp_dir().join(format!("{name}.sql"));
    std::fs::write(
        &script,
        "BEGIN;\nINSERT INTO pgbench_webhooks (payload) VALUES (md5(random()::text)) RETURNING id \\gset\nUPDATE pgbench_webhooks SET processed_at = now() WHERE id = :id;\nCOMMIT;\n",
    )
    .unwrap();
    let out =
        std::process::Command::new(std::env::var("PGBENCH").unwrap_or_else(|_| "pgbench".into()))
            .args([
                "-n",
                "-c",
                &CONCURRENCY.to_string(),
                "-j",
                "2",
                "-T",
                "10",
                "-f",
            ])
            .arg(&script)
            .arg(&db_url)
            .output()
            .expect("pgbench runs");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("pgbench: one-row insert + update transaction, {CONCURRENCY} clients, 10 s");
    for line in report
        .lines()
        .filter(|l| l.starts_with("tps") || l.starts_with("latency average"))
    {
        println!("  {line}");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
