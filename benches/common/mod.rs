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

/// Runs pgbench for 10 s with `script` on `db_url` at [`CONCURRENCY`], prints its rate and
/// latency under `what`, and returns the rate (0 if it failed, with pgbench's words).
pub fn pgbench(what: &str, script: &str, db_url: &str) -> f64 {
    let path = std::env::temp_dir().join(format!("bench-{}.sql", uuid::Uuid::new_v4().simple()));
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
                "-f",
            ])
            .arg(&path)
            .arg(db_url)
            .output()
            .expect("pgbench runs");
    let _ = std::fs::remove_file(&path);
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
    if !out.status.success() {
        println!("  pgbench failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    tps
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
