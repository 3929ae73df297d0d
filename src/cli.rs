//! The command line: serve the app (default), run the sandbox alone, or operate on a live
//! installation (sync the catalog, replay missed events).

use crate::{config::Config, startup};
use std::process::ExitCode;

const USAGE: &str = "usage:
  saas-billing [serve]                       run the web app
  saas-billing sandbox [--port N]            run only the Stripe sandbox (API at /v1; default port 12111)
  saas-billing sync-catalog                  copy products and prices from Stripe into Postgres
  saas-billing configure-portal              create or update the Customer Portal configuration
  saas-billing register-webhook [--url URL] [--rotate | --finish-rotation]
                                             create or update Stripe's endpoint for the app's
                                             webhook route (default APP_URL/api/webhooks/stripe)
  saas-billing reconcile-usage [--previous]  compare each metered subscription's usage this period
                                             (or the previous one) with Stripe's meter
  saas-billing reconcile [--customer cus_…] [--since WHEN] [--dry-run]
                                             compare customers, subscriptions, invoices and cards
                                             with Stripe and repair what differs
  saas-billing replay-events [--since WHEN] [--undelivered]
                                             apply events the app may have missed; WHEN is unix
                                             seconds, RFC 3339, or an age like 6h / 3d (default 3d)";

pub async fn run(args: Vec<String>) -> ExitCode {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if matches!(args.as_slice(), ["-h" | "--help" | "help"]) {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    startup::init_tracing();
    // The endpoint's signing secret is what register-webhook prints: it cannot need it yet.
    let config = if args.first() == Some(&"register-webhook") {
        Config::from_env_before_webhook()
    } else {
        Config::from_env()
    };
    let mut config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let app = match args.as_slice() {
        [] | ["serve"] => startup::Application::build(config).await,
        ["sandbox"] => {
            config.addr.set_port(12111);
            startup::Application::build_sandbox(config).await
        }
        ["sandbox", "--port", port] => match port.parse() {
            Ok(p) => {
                config.addr.set_port(p);
                startup::Application::build_sandbox(config).await
            }
            Err(_) => return usage_error("--port takes a number"),
        },
        ["sync-catalog"] => return sync_catalog(&config).await,
        ["configure-portal"] => return configure_portal(&config).await,
        ["register-webhook", rest @ ..] => return register_webhook(&config, rest).await,
        ["replay-events", rest @ ..] => return replay_events(&config, rest).await,
        ["reconcile", rest @ ..] => return reconcile(&config, rest).await,
        ["reconcile-usage"] => return reconcile_usage(&config, false).await,
        ["reconcile-usage", "--previous"] => return reconcile_usage(&config, true).await,
        _ => return usage_error("unknown command"),
    };
    let app = match app {
        Ok(app) => app,
        Err(e) => {
            tracing::error!(error = %e, "start-up failed");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(url = %app.url(), "saas-billing is listening");
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server stopped with an error");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(problem: &str) -> ExitCode {
    eprintln!("{problem}\n{USAGE}");
    ExitCode::from(2)
}

async fn configure_portal(config: &Config) -> ExitCode {
    let result = async {
        let (db, stripe) = startup::connect_for_command(config)
            .await
            .map_err(|e| e.to_string())?;
        // The portal offers the catalog's prices: bring the catalog up to date first.
        crate::catalog::sync::sync_catalog(&stripe, &db)
            .await
            .map_err(|e| e.to_string())?;
        let back = config.url("/settings/billing");
        crate::billing::portal::configure_portal(&stripe, &db, &back)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(id) => {
            println!("customer portal configuration: {id}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("configure-portal failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn register_webhook(config: &Config, args: &[&str]) -> ExitCode {
    use crate::webhooks::register::{register, Mode, Registration};
    let mut url = config.url("/api/webhooks/stripe");
    let mut mode = Mode::Ensure;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--url" => match rest.next().map(|u| url::Url::parse(u)) {
                Some(Ok(u)) if matches!(u.scheme(), "http" | "https") => url = u.to_string(),
                _ => return usage_error("--url takes an http(s) URL"),
            },
            "--rotate" if mode == Mode::Ensure => mode = Mode::Rotate,
            "--finish-rotation" if mode == Mode::Ensure => mode = Mode::FinishRotation,
            other => return usage_error(&format!("unexpected {other}")),
        }
    }
    let result = async {
        let (_db, stripe) = startup::connect_for_command(config)
            .await
            .map_err(|e| e.to_string())?;
        register(&stripe, &url, mode)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    let events = crate::webhooks::register::HANDLED_EVENTS.len();
    let version = crate::webhooks::register::api_version();
    match result {
        Ok(Registration::Created { id, secret }) => {
            println!("created webhook endpoint {id} for {url}");
            println!("  {events} event types, API version {version}");
            println!("signing secret (shown once; set it as STRIPE_WEBHOOK_SECRET):");
            println!("{secret}");
        }
        Ok(Registration::Updated { id, what }) => {
            println!(
                "webhook endpoint {id} for {url} updated: {}",
                what.join(", ")
            );
            println!("  (its signing secret is unchanged; it was shown when it was created)");
        }
        Ok(Registration::Unchanged { id }) => {
            println!("webhook endpoint {id} for {url} is already registered and up to date");
            println!(
                "  (its signing secret was shown when it was created; --rotate makes a new one)"
            );
        }
        Ok(Registration::Rotating { id, secret, older }) => {
            if older.is_empty() {
                println!("created webhook endpoint {id} for {url} (there was none to rotate)");
            } else {
                println!(
                    "created webhook endpoint {id} for {url} beside {}",
                    older.join(", ")
                );
            }
            println!("new signing secret (shown once):");
            println!("{secret}");
            println!("next: add it to STRIPE_WEBHOOK_SECRET (comma-separated, the old one kept), deploy,");
            println!("then run `saas-billing register-webhook --finish-rotation` and drop the old secret");
        }
        Ok(Registration::RotationFinished { kept, deleted }) if deleted.is_empty() => {
            println!("webhook endpoint {kept} is the only one for {url}: nothing to finish");
        }
        Ok(Registration::RotationFinished { kept, deleted }) => {
            println!(
                "deleted {}; webhook endpoint {kept} stays for {url}",
                deleted.join(", ")
            );
        }
        Ok(Registration::Missing) => {
            eprintln!("no webhook endpoint for {url}: run `saas-billing register-webhook` first");
            return ExitCode::FAILURE;
        }
        Ok(Registration::WrongVersion {
            id,
            version: theirs,
        }) => {
            eprintln!("webhook endpoint {id} for {url} renders events as API version {theirs}, the app reads {version};");
            eprintln!("Stripe cannot change it: run `saas-billing register-webhook --rotate` to replace the endpoint");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("register-webhook failed: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

async fn sync_catalog(config: &Config) -> ExitCode {
    let result = async {
        let (db, stripe) = startup::connect_for_command(config)
            .await
            .map_err(|e| e.to_string())?;
        crate::catalog::sync::sync_catalog(&stripe, &db)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok((products, prices)) => {
            println!("synced {products} products and {prices} prices");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sync failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints one line per metered subscription; exits 1 when Stripe's meter differs from what
/// the app sent.
async fn reconcile_usage(config: &Config, previous: bool) -> ExitCode {
    use crate::usage::reconcile::{reconcile, Period};
    let period = if previous {
        Period::Previous
    } else {
        Period::Current
    };
    let result = async {
        let (db, stripe) = startup::connect_for_command(config)
            .await
            .map_err(|e| e.to_string())?;
        reconcile(&db, &stripe, period).await
    }
    .await;
    let lines = match result {
        Ok(lines) => lines,
        Err(e) => {
            eprintln!("reconcile-usage failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let date = |t: time::OffsetDateTime| crate::ui::format::long_date(t);
    for l in &lines {
        println!(
            "{} ({}) {} – {}: counted {}, sent {}, unsent {}, refused {}, Stripe {}: {}",
            l.subscription,
            l.customer,
            date(l.from),
            date(l.to),
            l.counted,
            l.sent,
            l.unsent(),
            l.refused,
            l.stripe,
            if l.differs() { "DIFFERENT" } else { "ok" }
        );
    }
    let differ = lines.iter().filter(|l| l.differs()).count();
    println!("{} subscriptions, {differ} with a difference", lines.len());
    if differ == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn reconcile(config: &Config, args: &[&str]) -> ExitCode {
    use crate::billing::reconcile::{reconcile, Options};
    let mut options = Options::default();
    let mut rest = args.iter();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    while let Some(arg) = rest.next() {
        match *arg {
            "--customer" => match rest.next() {
                Some(id) if id.starts_with("cus_") && id.len() <= 255 => {
                    options.customer = Some((*id).to_owned())
                }
                _ => return usage_error("--customer takes a Stripe customer id (cus_…)"),
            },
            "--since" => match rest.next().and_then(|v| parse_since(v, now)) {
                Some(t) => options.since = Some(t),
                None => return usage_error("--since: use unix seconds, RFC 3339 (2026-11-20T00:00:00Z), or an age such as 6h or 3d"),
            },
            "--dry-run" => options.dry_run = true,
            other => return usage_error(&format!("unknown option {other}")),
        }
    }
    let result = async {
        let (db, stripe) = startup::connect_for_command(config)
            .await
            .map_err(|e| e.to_string())?;
        reconcile(&db, &stripe, config.grace_days, &options)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    let summary = match result {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("reconcile failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let verb = if options.dry_run {
        "differ"
    } else {
        "repaired"
    };
    for (kind, t) in [
        ("customers", &summary.customers),
        ("subscriptions", &summary.subscriptions),
        ("invoices", &summary.invoices),
        ("payment methods", &summary.payment_methods),
    ] {
        println!(
            "{kind}: {} checked, {} {verb}, {} unchanged",
            t.checked,
            t.repaired,
            t.unchanged()
        );
    }
    if options.dry_run {
        println!("dry run: nothing was changed");
    }
    ExitCode::SUCCESS
}

async fn replay_events(config: &Config, args: &[&str]) -> ExitCode {
    let mut since = "3d";
    let mut undelivered = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--since" => match rest.next() {
                Some(v) => since = v,
                None => return usage_error("--since needs a value"),
            },
            "--undelivered" => undelivered = true,
            other => return usage_error(&format!("unknown option {other}")),
        }
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let Some(since) = parse_since(since, now) else {
        return usage_error("--since: use unix seconds, RFC 3339 (2026-11-20T00:00:00Z), or an age such as 6h or 3d");
    };
    let result = async {
        let (db, stripe) = startup::connect_for_command(config)
            .await
            .map_err(|e| e.to_string())?;
        crate::webhooks::replay::replay_events(
            &db,
            &stripe,
            crate::webhooks::Deployment::of(config),
            since,
            undelivered,
        )
        .await
        .map_err(|e| e.to_string())
    }
    .await;
    match result {
        Ok(r) => {
            println!(
                "{} events: {} applied, {} already processed, {} failed",
                r.seen, r.applied, r.already_processed, r.failed
            );
            if r.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("replay failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Unix seconds, RFC 3339, or an age (`90m`, `6h`, `3d`) before `now`.
pub fn parse_since(raw: &str, now: i64) -> Option<i64> {
    if let Ok(ts) = raw.parse::<i64>() {
        return Some(ts);
    }
    if let Ok(t) = time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
    {
        return Some(t.unix_timestamp());
    }
    let (number, unit) = raw.split_at(raw.len().checked_sub(1)?);
    let n: i64 = number.parse().ok().filter(|n| *n >= 0)?;
    let seconds = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    Some(now - n * seconds)
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn since_accepts_timestamps_dates_and_ages() {
        let now = 1_800_000_000;
        assert_eq!(parse_since("1700000000", now), Some(1_700_000_000));
        assert_eq!(
            parse_since("2023-11-14T22:13:20Z", now),
            Some(1_700_000_000)
        );
        assert_eq!(parse_since("3d", now), Some(now - 3 * 86400));
        assert_eq!(parse_since("6h", now), Some(now - 6 * 3600));
        for bad in ["", "d", "-1d", "3w", "yesterday"] {
            assert_eq!(parse_since(bad, now), None, "{bad:?}");
        }
    }
}
