//! `docflow dev`: the app running locally like `func start`.

use tokio_util::sync::CancellationToken;

use crate::host::{DevOptions, LocalHost};

/// The settings the app's handler runs with under `host`.
pub fn handler_settings(
    host: &LocalHost,
) -> Result<crate::config::Settings, crate::config::ConfigError> {
    crate::config::Settings::from_lookup(|k| host.handler_setting(k))
}

/// The AI provider the handler runs with, described without secrets (or why its settings are
/// invalid).
pub fn ai_description(host: &LocalHost) -> String {
    match handler_settings(host) {
        Ok(s) => s.ai.describe(),
        Err(e) => format!("invalid AI settings: {e}"),
    }
}

/// Starts the local host, prints the function table, serves until Ctrl-C or SIGTERM.
pub async fn run(options: DevOptions, shutdown: CancellationToken) -> u8 {
    let host = match LocalHost::start(options, shutdown.clone()).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("docflow dev: {e}");
            return super::EXIT_CONFIG;
        }
    };
    println!("{}", host.function_table());
    println!("AI: {}\n", ai_description(&host));
    println!("For detailed output, set RUST_LOG=debug. Press Ctrl-C to stop.");
    shutdown.cancelled().await;
    host.shutdown().await;
    0
}
