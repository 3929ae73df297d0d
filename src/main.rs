//! The saas-billing binary: see `saas-billing --help` (the commands live in `cli`).

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    saas_billing::cli::run(std::env::args().skip(1).collect()).await
}

#[cfg(not(feature = "ssr"))]
fn main() {}
