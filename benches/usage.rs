//! Metered actions: 16 users, each with a metered subscription, run reports at once, first
//! through the real server's `POST /api/v1/reports` (token, plan, limit check, usage event,
//! commit), then as the metered transaction alone (in process); then pgbench runs a
//! single-row upsert of a counter (the floor under the limit check) on the same Postgres.
//! Run with `scripts/bench`; results go to BENCHMARKS.md by hand.

mod common;

use futures::StreamExt;
use saas_billing::{config::Config, startup::Application, usage::meter};
use sqlx::{Connection, Executor, PgConnection};
use std::time::{Duration, Instant};

const USERS: usize = 16;
/// How long each load runs: as long as pgbench does beside it (`common::pgbench`).
const LOAD: Duration = Duration::from_secs(10);
use common::{ms, CONCURRENCY};

#[tokio::main]
async fn main() {
    // A database of the run's own on `DATABASE_URL`'s server, dropped when the run ends.
    let database = stripe_sandbox::testing::TestDatabase::create().await;
    let db_url = database.url.clone();
    let lookup = |n: &str| match n {
        "DATABASE_URL" => Some(db_url.clone()),
        "PORT" => Some("0".into()),
        "DATABASE_MAX_CONNECTIONS" => Some("20".into()),
        // What test and live mode do: real time, no test clocks to follow.
        "SANDBOX_TEST_CLOCKS" => Some("false".into()),
        _ => None,
    };
    let config = Config::from_lookup(lookup).expect("config");
    let app = Application::build(config).await.expect("app builds");
    let app_url = app.url().to_owned();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    common::wait_until_ready(&client, &app_url).await;
    let mut conn = PgConnection::connect(&db_url).await.expect("connects");
    common::print_fsync(&mut conn).await;
    let key: String =
        sqlx::query_scalar("select value from app_settings where name = 'sandbox_secret_key'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let price = |k: &'static str| {
        sqlx::query_scalar::<_, String>("select id from prices where lookup_key = $1").bind(k)
    };
    // Pro by the year: its hard limit (60,000 a year) leaves room for both loads' reports.
    let plan = price("pro_yearly").fetch_one(&mut conn).await.unwrap();
    let metered = price("pro_yearly_reports")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let stripe = |path: String, form: Vec<(&'static str, String)>| {
        let (key, app_url) = (key.clone(), app_url.clone());
        async move {
            let res = reqwest::Client::new()
                .post(format!("{app_url}/sandbox/v1{path}"))
                .bearer_auth(key)
                .form(&form)
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{path}");
            res.json::<serde_json::Value>().await.unwrap()
        }
    };

    // Sixteen users, each subscribed to Pro with its metered item, each with a token.
    let mut tokens = Vec::new();
    let mut users = Vec::new();
    for i in 0..USERS {
        let user = reqwest::Client::builder()
            .cookie_store(true)
            .build()
            .unwrap();
        let email = format!("bench-{i}-{}@example.com", uuid::Uuid::new_v4().simple());
        user.post(format!("{app_url}/api/signup"))
            .form(&[
                ("email", email.as_str()),
                ("password", "correct horse battery"),
            ])
            .send()
            .await
            .unwrap();
        user.post(format!("{app_url}/api/tokens/create"))
            .form(&[("name", "bench")])
            .send()
            .await
            .unwrap();
        let listed: serde_json::Value = user
            .post(format!("{app_url}/api/tokens"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        tokens.push(listed["fresh"].as_str().unwrap().to_owned());
        let id: uuid::Uuid = sqlx::query_scalar("select id from users where email = $1")
            .bind(&email)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let customer = stripe(
            "/customers".into(),
            vec![("metadata[user_id]", id.to_string())],
        )
        .await;
        let customer = customer["id"].as_str().unwrap().to_owned();
        stripe(
            "/payment_methods/pm_card_visa/attach".into(),
            vec![("customer", customer.clone())],
        )
        .await;
        stripe(
            "/subscriptions".into(),
            vec![
                ("customer", customer.clone()),
                ("items[0][price]", plan.clone()),
                ("items[1][price]", metered.clone()),
                ("trial_period_days", "14".into()),
                ("metadata[user_id]", id.to_string()),
            ],
        )
        .await;
        users.push(id);
    }
    for _ in 0..300 {
        let ready: i64 = sqlx::query_scalar(
            "select count(*) from subscriptions where metered_price_id is not null",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if ready as usize == USERS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 1. Through the API.
    let http = reqwest::Client::new();
    let url = format!("{app_url}/api/v1/reports");
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..)
        .take_while(|_| std::future::ready(started.elapsed() < LOAD))
        .map(|i| {
            let request = http.post(&url).bearer_auth(&tokens[i % USERS]);
            async move {
                let t = Instant::now();
                let res = request.send().await.unwrap();
                assert_eq!(res.status(), reqwest::StatusCode::CREATED);
                t.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let through_api = latencies.len();
    let api = through_api as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |l: &[Duration], p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
    println!(
        "metered actions: {USERS} users, concurrency {CONCURRENCY}, {} s each way",
        LOAD.as_secs()
    );
    println!(
        "  through POST /api/v1/reports   {api:.0} actions/s   p50 {:.2} ms   p99 {:.2} ms   ({through_api} reports)",
        ms(pct(&latencies, 0.5)),
        ms(pct(&latencies, 0.99))
    );

    // 2. The metered transaction alone.
    // Pooled as the app pools its own.
    let db = saas_billing::startup::pool_options(20)
        .connect(&db_url)
        .await
        .unwrap();
    let config = Config::from_lookup(lookup).expect("config");
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(0..)
        .take_while(|_| std::future::ready(started.elapsed() < LOAD))
        .map(|i| {
            let (db, config, user) = (&db, &config, users[i % USERS]);
            async move {
                let t = Instant::now();
                let now = time::OffsetDateTime::now_utc();
                meter::record(db, config, user, meter::Source::Api, now)
                    .await
                    .map_err(|_| "refused")
                    .unwrap();
                t.elapsed()
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let in_process = latencies.len();
    let alone = in_process as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "  the metered transaction alone  {alone:.0} actions/s   p50 {:.2} ms   p99 {:.2} ms   ({in_process} reports)",
        ms(pct(&latencies, 0.5)),
        ms(pct(&latencies, 0.99))
    );
    let counted: i64 =
        sqlx::query_scalar("select coalesce(sum(used), 0)::bigint from usage_counters")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(
        counted as usize,
        through_api + in_process,
        "every action counted once"
    );

    // 3. pgbench: the counter upsert alone, one of sixteen rows per transaction.
    conn.execute("create table pgbench_counters (k int primary key, used bigint not null)")
        .await
        .unwrap();
    let tps = common::pgbench(
        "single-row counter upsert",
        "\\set k random(1, 16)\nINSERT INTO pgbench_counters (k, used) VALUES (:k, 1) ON CONFLICT (k) DO UPDATE SET used = pgbench_counters.used + 1;\n",
        &db_url,
    )
    .tps;
    if tps > 0.0 {
        println!(
            "ratios to pgbench: API {:.2}, metered transaction {:.2}",
            api / tps,
            alone / tps
        );
    }

    // 4. pgbench running the metered statement itself (what `meter::record` sends): the
    // database's share of the cost, without the app around it.
    conn.execute("create table bench_users (n int primary key, id uuid not null)")
        .await
        .unwrap();
    for (n, id) in users.iter().enumerate() {
        sqlx::query("insert into bench_users values ($1, $2)")
            .bind(n as i32 + 1)
            .bind(id)
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let statement = saas_billing::usage::repo::COUNT_ACTION
        .replace("$1", "(select id from bench_users where n = :n)")
        .replace("$2", "'api'")
        .replace("$3", "now()");
    common::pgbench(
        "the metered statement itself",
        &format!(
            "\\set n random(1, 16)\n{};\n",
            statement.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
        &db_url,
    );
}
