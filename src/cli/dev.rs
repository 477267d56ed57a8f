//! `docflow dev`: the app running locally like `func start`.

use tokio_util::sync::CancellationToken;

use crate::host::{DevOptions, LocalHost};

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
    println!("AI: {}\n", host.ai_description());
    println!("For detailed output, set RUST_LOG=debug. Press Ctrl-C to stop.");
    shutdown.cancelled().await;
    host.shutdown().await;
    0
}
