//! What the benchmarks share: waiting for the server, running pgbench beside it, and
//! milliseconds. Each bench includes it (`mod common;`); cargo does not take a folder under
//! `benches/` for a bench of its own.

#![allow(dead_code)] // each bench uses its own part of it

use std::time::Duration;

/// Clients pgbench runs, as many as the benches' own callers.
pub const CONCURRENCY: usize = 16;

/// Waits until the server at `url` says it is ready (30 s at most).
pub async fn wait_until_ready(client: &reqwest::Client, url: &str) {
    for _ in 0..300 {
        if client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a pgbench run measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pgbench {
    /// Transactions per second (0 if it failed).
    pub tps: f64,
    /// The 99th percentile of its transactions' latency, in ms (0 if unknown).
    pub p99_ms: f64,
}

/// Runs pgbench for 10 s with `script` on `db_url` at [`CONCURRENCY`], prints its rate and
/// latency (average, and p50 / p99 from its per-transaction log) under `what`, and returns
/// them (zeros if it failed, with pgbench's words).
pub fn pgbench(what: &str, script: &str, db_url: &str) -> Pgbench {
    let run = std::env::temp_dir().join(format!("bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&run).expect("makes the pgbench folder");
    let path = run.join("script.sql");
    std::fs::write(&path, script).expect("writes the pgbench script");
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
                "--log",
            ])
            .arg(format!("--log-prefix={}", run.join("log").display()))
            .arg("-f")
            .arg(&path)
            .arg(db_url)
            .output()
            .expect("pgbench runs");
    let latencies = logged_latencies(&run);
    let _ = std::fs::remove_dir_all(&run);
    println!("pgbench: {what}, {CONCURRENCY} clients, 10 s");
    let report = String::from_utf8_lossy(&out.stdout);
    let mut tps = 0.0;
    for line in report
        .lines()
        .filter(|l| l.starts_with("tps") || l.starts_with("latency average"))
    {
        println!("  {line}");
        if let Some(v) = line
            .strip_prefix("tps = ")
            .and_then(|r| r.split_whitespace().next())
        {
            tps = v.parse().unwrap_or(0.0);
        }
    }
    let mut p99_ms = 0.0;
    if !latencies.is_empty() {
        let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
        p99_ms = at(0.99);
        println!("  latency p50 {:.2} ms   p99 {:.2} ms", at(0.50), p99_ms);
    }
    if !out.status.success() {
        println!("  pgbench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Pgbench { tps, p99_ms }
}

/// Says whether the server under the benchmark makes its commits durable: the ratios to
/// pgbench differ with `fsync` off (the project-local cluster runs so), and the issue's
/// comparison is with it on.
pub async fn print_fsync(conn: &mut sqlx::PgConnection) {
    let fsync: String = sqlx::query_scalar("show fsync")
        .fetch_one(conn)
        .await
        .unwrap_or_else(|_| "unknown".into());
    println!("Postgres fsync: {fsync}");
}

/// Every transaction's latency in ms, sorted, from pgbench's `--log` files in `dir` (one per
/// thread; the third field of a line is the latency in microseconds).
fn logged_latencies(dir: &std::path::Path) -> Vec<f64> {
    let mut all: Vec<f64> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("log"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.split_whitespace().nth(2)?.parse::<f64>().ok())
                .map(|us| us / 1000.0)
                .collect::<Vec<_>>()
        })
        .collect();
    all.sort_by(f64::total_cmp);
    all
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints this process's resident memory (`VmRSS`). The server runs inside the bench, beside
/// its load client and the sandbox, so this is an upper bound for the server's own.
pub fn print_rss(when: &str) {
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:").map(|v| v.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown".into());
    println!("resident memory {when}: {rss} (server, load client and sandbox in one process)");
}
