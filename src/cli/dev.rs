//! `docflow dev`: the app running locally like `func start`, with its dashboard.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::dashboard::sources::{LocalBroker, Sources};
use crate::dashboard::traces::forward::{ForwardOptions, Forwarder};
use crate::dashboard::{Bound, HandlerEndpoint};
use crate::host::{DevOptions, LocalHost};
use crate::telemetry::export::ExportSettings;
use crate::telemetry::{self, LogFormat};

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

/// What the dashboard reads: the handler's own store (the same settings, so the same local
/// folder or Azurite account) and the host's broker.
pub fn dashboard_sources(host: &LocalHost) -> Result<Sources, String> {
    // The host gives the handler its own blob folder (`DOCFLOW_BLOB_DIR`, over the app's).
    let blob_dir = host.context().blobs.root().display().to_string();
    let settings = crate::config::Settings::from_lookup(|k| match k {
        "DOCFLOW_BLOB_DIR" => Some(blob_dir.clone()),
        _ => host.handler_setting(k),
    })
    .map_err(|e| e.to_string())?;
    let blobs = crate::app::blob_store(&settings).map_err(|e| e.to_string())?;
    let bus = Arc::new(LocalBroker(host.context().broker.clone()));
    Ok(Sources::of_app(blobs, &settings, bus))
}

/// How often spans leave for the dashboard: a page shows them at once.
const BATCH_DELAY: std::time::Duration = std::time::Duration::from_millis(200);

/// The dashboard's OTLP/HTTP traces endpoint.
fn traces_url(port: u16) -> String {
    format!("http://127.0.0.1:{port}/v1/traces")
}

/// What the handler is started with so that its spans reach the dashboard listening on `port`
/// (over the user's own `OTEL_EXPORTER_OTLP_*`, which the dashboard forwards to): OTLP/JSON,
/// batches every 200 ms so that a page shows them at once.
pub fn trace_env(port: u16) -> Vec<(String, String)> {
    [
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces_url(port)),
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json".into()),
        (
            "OTEL_BSP_SCHEDULE_DELAY",
            BATCH_DELAY.as_millis().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Starts the local host and the dashboard on `dashboard`, prints the function table, serves
/// until Ctrl-C or SIGTERM.
pub async fn run(options: DevOptions, dashboard: SocketAddr, shutdown: CancellationToken) -> u8 {
    // The dashboard's port first: the handler is told where to send its spans.
    let listener = match tokio::net::TcpListener::bind(dashboard).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "docflow dev: dashboard: cannot listen on {dashboard}: {e} (pick another with --dashboard-port, 0 for a free one)"
            );
            return super::EXIT_CONFIG;
        }
    };
    let port = listener.local_addr().map_or(dashboard.port(), |a| a.port());
    // The local host's own spans (receive, settle, lock renewal) go to the dashboard with the
    // handler's, so that its waterfall shows them; it forwards them all to the user's endpoint.
    let telemetry = telemetry::init_exporting_with(
        LogFormat::Text,
        "docflow-local-host",
        &ExportSettings::from_env().traces_to(&traces_url(port), BATCH_DELAY),
    );
    let code = serve(listener, port, options, shutdown).await;
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    code
}

async fn serve(
    listener: tokio::net::TcpListener,
    port: u16,
    mut options: DevOptions,
    shutdown: CancellationToken,
) -> u8 {
    // Read before the handler's environment points elsewhere: the user's endpoint.
    let forward = ForwardOptions::from_lookup(|k| std::env::var(k).ok());
    options.env.extend(trace_env(port));
    let host = match LocalHost::start(options, shutdown.clone()).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("docflow dev: {e}");
            return super::EXIT_CONFIG;
        }
    };
    let bound = match dashboard_sources(&host) {
        Ok(sources) => Bound::from_listener(listener, sources),
        Err(e) => {
            eprintln!("docflow dev: dashboard: {e}");
            host.shutdown().await;
            return super::EXIT_CONFIG;
        }
    };
    if let Some(forwarder) = Forwarder::start(forward) {
        let _ = bound.dashboard().forward.set(forwarder);
    }
    // Every instance's handler serves its own metrics: the dashboard adds them up.
    let handler_metrics = host
        .handler_instances()
        .into_iter()
        .map(|(instance, port)| HandlerEndpoint {
            instance,
            url: format!("http://127.0.0.1:{port}/metrics"),
        })
        .collect();
    let _ = bound.dashboard().handler_metrics.set(handler_metrics);
    println!("{}", host.function_table());
    println!("Dashboard: {}", bound.url());
    println!("AI: {}\n", ai_description(&host));
    println!("For detailed output, set RUST_LOG=debug. Press Ctrl-C to stop.");
    let serving = tokio::spawn(bound.serve(shutdown.clone()));
    shutdown.cancelled().await;
    host.shutdown().await;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), serving).await;
    0
}
