//! `docflow dashboard`: the dashboard of `docflow dev` pointed at a deployed app: its Service
//! Bus namespace (a connection string, or the app's own `ServiceBusConnection` setting, SAS or
//! identity) and its storage account (`--storage`, or the app's `DOCFLOW_BLOB_CONNECTION`).
//! Read-only unless `--allow-actions`: dead letters are shown, never resubmitted or discarded.
//! The views are the dev dashboard's, over [`crate::dashboard::sources::NamespaceBus`];
//! Azure's REST API cannot browse, so reading a dead-letter queue locks and releases its
//! messages, and the Queues view has counts but no oldest age or rates.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::blob::connection::BlobConnection;
use crate::config::Settings;
use crate::dashboard::sources::{Bus, NamespaceBus, Sources};
use crate::dashboard::{Bound, HandlerEndpoint};
use crate::servicebus::{Namespace, ServiceBusClient, ServiceBusClientOptions};

/// What `docflow dashboard` is started with (its command-line arguments).
#[derive(Debug, Clone, clap::Args)]
pub struct DashboardOptions {
    /// Service Bus connection string; defaults to the connection setting below.
    #[arg(long, env = "DOCFLOW_SERVICEBUS_CONNECTION", hide_env_values = true)]
    pub connection: Option<String>,
    /// Functions connection setting to resolve from the environment or ./local.settings.json
    /// (a connection string or NAME__fullyQualifiedNamespace for an identity).
    #[arg(long, default_value = "ServiceBusConnection")]
    pub connection_setting: String,
    /// Storage connection string of the app's documents; defaults to the app's own
    /// DOCFLOW_BLOB_CONNECTION setting.
    #[arg(long, env = "DOCFLOW_DASHBOARD_STORAGE", hide_env_values = true)]
    pub storage: Option<String>,
    /// Port (0 picks a free one).
    #[arg(long, default_value_t = crate::dashboard::DEFAULT_PORT)]
    pub port: u16,
    /// Address to listen on (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Serve resubmit and discard (audited); without it the dashboard only reads.
    #[arg(long)]
    pub allow_actions: bool,
    /// A handler's metrics endpoint (http://host:port/metrics) for the LLM budget view; once
    /// per instance of the app, whose figures then add up.
    #[arg(long)]
    pub handler_metrics: Vec<String>,
}

/// The dashboard's sources for a namespace and a storage account, read from `options` and the
/// app's settings (`lookup`: the environment, then local.settings.json).
pub fn sources(
    options: &DashboardOptions,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<(Sources, String), String> {
    let namespace = match &options.connection {
        Some(text) => Namespace::from_connection_string(text),
        None => Namespace::from_setting(&options.connection_setting, &lookup),
    }
    .map_err(|e| format!("Service Bus: {e}"))?;
    let described = namespace.base_url.clone();
    let client = ServiceBusClient::new(namespace, ServiceBusClientOptions::default())
        .map_err(|e| format!("Service Bus: {e}"))?;
    let mut settings = Settings::from_lookup(&lookup).map_err(|e| e.to_string())?;
    if let Some(text) = &options.storage {
        let connection =
            BlobConnection::from_connection_string(text).map_err(|e| format!("--storage: {e}"))?;
        settings.blob_connection = Some(connection);
    }
    if settings.blob_connection.is_none() && !settings.blob_dir.is_dir() {
        return Err(format!(
            "no storage to read documents from: pass --storage (a storage connection string) or set DOCFLOW_BLOB_CONNECTION as the app does (no local folder {} either)",
            settings.blob_dir.display()
        ));
    }
    let blobs = crate::app::blob_store(&settings).map_err(|e| format!("storage: {e}"))?;
    let bus: Arc<dyn Bus> = Arc::new(NamespaceBus(client));
    Ok((Sources::of_app(blobs, &settings, bus), described))
}

/// Checks that both ends answer before serving, so that a wrong connection is one clear line.
async fn preflight(sources: &Sources) -> Result<usize, String> {
    let entities = sources
        .bus
        .entities()
        .await
        .map_err(|e| format!("cannot read the Service Bus namespace: {e}"))?;
    sources
        .store
        .recent(None, 1)
        .await
        .map_err(|e| format!("cannot read the documents in storage: {e}"))?;
    Ok(entities.len())
}

/// Serves the dashboard until `shutdown`; returns the exit code.
pub async fn run(
    options: DashboardOptions,
    lookup: impl Fn(&str) -> Option<String>,
    shutdown: CancellationToken,
) -> u8 {
    let (sources, namespace) = match sources(&options, lookup) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("docflow dashboard: {e}");
            return super::EXIT_CONFIG;
        }
    };
    let entities = match preflight(&sources).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("docflow dashboard: {e}");
            return super::EXIT_CONFIG;
        }
    };
    let listen = SocketAddr::new(options.bind, options.port);
    let bound = match Bound::bind(listen, sources).await {
        Ok(b) => b,
        Err(e) => {
            eprintln!("docflow dashboard: {e} (pick another with --port, 0 for a free one)");
            return super::EXIT_CONFIG;
        }
    };
    let bound = if options.allow_actions {
        bound
    } else {
        bound.read_only()
    };
    if !options.handler_metrics.is_empty() {
        let _ = bound
            .dashboard()
            .handler_metrics
            .set(handler_endpoints(options.handler_metrics));
    }
    println!("Dashboard: {}", bound.url());
    println!("Service Bus: {namespace} ({entities} queues and subscriptions)");
    println!(
        "{}",
        if options.allow_actions {
            "Actions: resubmit and discard are allowed (and audited)"
        } else {
            "Actions: none (read-only; --allow-actions to resubmit or discard)"
        }
    );
    println!("Press Ctrl-C to stop.");
    bound.serve(shutdown).await;
    0
}

/// The endpoints of `urls`, one per instance: several are told apart by their address.
fn handler_endpoints(urls: Vec<String>) -> Vec<HandlerEndpoint> {
    let several = urls.len() > 1;
    urls.into_iter()
        .map(|url| HandlerEndpoint {
            instance: several.then(|| {
                let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
                rest.split('/').next().unwrap_or(rest).to_owned()
            }),
            url,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_handlers_are_told_apart_by_their_address() {
        assert_eq!(
            handler_endpoints(vec!["http://127.0.0.1:7071/metrics".into()]),
            HandlerEndpoint::single("http://127.0.0.1:7071/metrics")
        );
        let two = handler_endpoints(vec![
            "http://10.0.0.4:8080/metrics".into(),
            "http://10.0.0.5:8080/metrics".into(),
        ]);
        let ids: Vec<_> = two.iter().map(|e| e.instance.as_deref()).collect();
        assert_eq!(ids, [Some("10.0.0.4:8080"), Some("10.0.0.5:8080")]);
    }
}
