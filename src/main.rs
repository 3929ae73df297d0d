//! The saas-billing binary.
//!
//! `saas-billing` (or `saas-billing serve`) runs the web app; `saas-billing sandbox [--port N]`
//! runs only the offline Stripe sandbox, serving Stripe's API at `/v1` for any SDK.

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    use saas_billing::{
        config::Config,
        startup::{self, Application},
    };
    use std::process::ExitCode;

    const USAGE: &str = "usage: saas-billing [serve | sandbox [--port N]]";
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    startup::init_tracing();
    let mut config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let app = match args.as_slice() {
        [] | ["serve"] => Application::build(config).await,
        ["sandbox", rest @ ..] => {
            match rest {
                [] => config.addr.set_port(12111),
                ["--port", port] => match port.parse() {
                    Ok(p) => config.addr.set_port(p),
                    Err(_) => {
                        eprintln!("--port takes a number\n{USAGE}");
                        return ExitCode::from(2);
                    }
                },
                _ => {
                    eprintln!("{USAGE}");
                    return ExitCode::from(2);
                }
            }
            Application::build_sandbox(config).await
        }
        ["-h" | "--help" | "help"] => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
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

#[cfg(not(feature = "ssr"))]
fn main() {}
