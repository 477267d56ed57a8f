//! The `docflow` binary: parses the command line, starts tracing, calls into the library.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use docflow::config::Settings;
use docflow::telemetry::{self, LogFormat};
use docflow::{app, server};

/// Exit code for a configuration or start-up problem.
const EXIT_CONFIG: u8 = 2;

#[derive(Parser)]
#[command(
    name = "docflow",
    version,
    about = "Asynchronous AI document processing on Azure Functions and Service Bus"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Functions (the custom handler the Functions host starts).
    Serve {
        /// Port to listen on; defaults to FUNCTIONS_CUSTOMHANDLER_PORT, then FUNCTIONS_HTTPWORKER_PORT.
        #[arg(long)]
        port: Option<u16>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("docflow: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match cli.command {
        Command::Serve { port } => runtime.block_on(serve(port)),
    }
}

async fn serve(port_flag: Option<u16>) -> ExitCode {
    telemetry::init(LogFormat::Json);
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };
    let Some(port) = port_flag.or(settings.port) else {
        return fail(
            "no port: set FUNCTIONS_CUSTOMHANDLER_PORT (the Functions host does) or pass --port",
        );
    };
    let registry = match app::registry(&settings) {
        Ok(r) => Arc::new(r),
        Err(e) => return fail(&e.to_string()),
    };
    let listener = match server::bind(port).await {
        Ok(l) => l,
        Err(e) => return fail(&e.to_string()),
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(wait_for_signal(shutdown.clone()));
    server::serve(listener, registry, shutdown, settings.drain_timeout).await;
    ExitCode::SUCCESS
}

/// Cancels `token` on Ctrl-C or SIGTERM.
async fn wait_for_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    let _ = ctrl_c.await;
                    token.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown requested; draining in-flight invocations");
    token.cancel();
}

fn fail(message: &str) -> ExitCode {
    eprintln!("docflow: {message}");
    ExitCode::from(EXIT_CONFIG)
}
