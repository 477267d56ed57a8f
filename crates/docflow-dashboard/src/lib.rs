//! The dashboard of `docflow dev` and `docflow dashboard`: the app's documents, its queues, its dead letters and its
//! LLM budget, live in a browser, with dead-letter triage on the page. One binary, no build
//! step, no CDN: HTML rendered on the server (maud), live updates by server-sent events, a
//! small stylesheet and script embedded in the binary.
//!
//! # Layout
//! - [`sources`]: what it reads and acts on (the document store, a [`sources::Bus`]), behind
//!   traits; [`sources::LocalBroker`] is the embedded broker in process (`docflow dev`),
//!   [`sources::NamespaceBus`] a namespace over the network (`docflow dashboard`, pointed at
//!   a deployed app, read-only unless told otherwise).
//! - [`live`]: the poll loop and the snapshots every view renders from.
//! - [`documents`]: document rows and the Documents view's filters.
//! - [`queues`]: queue samples and in/out rates.
//! - [`triage`]: the Dead letters view's groups and actions (over `docflow_app::dead_letters`).
//! - [`guard`]: the action token, the `Origin` and `Host` checks, JSON errors.
//! - [`events`]: the server-sent event stream of each open page.
//! - [`metrics`]: `GET /metrics`: the broker's gauges per entity, then the handler's metrics.
//! - [`traces`]: `POST /v1/traces`: the handler's spans (OTLP/JSON) kept by trace, and passed
//!   on to the user's own OTLP endpoint.
//! - [`waterfall`]: a document's trace laid out as rows of bars.
//! - [`budget`]: the LLM budget view's figures, from the handler's metrics and the backlog.
//! - [`handler_metrics`]: the handler's `GET /metrics` read into figures per model deployment.
//! - [`routes`]: the warp routes.
//! - [`pages`]: the HTML: the shell and one module per view.
//!
//! Depends on the app (`docflow-app`: its store, records and dead-letter functions), the
//! broker (for [`sources::LocalBroker`]), `docflow-blob` and `docflow-servicebus`; never on
//! the local host, which knows nothing of the app.

pub mod budget;
pub mod documents;
pub mod events;
pub mod guard;
pub mod handler_metrics;
pub mod live;
pub mod metrics;
pub mod pages;
pub mod queues;
pub mod routes;
pub mod sources;
pub mod traces;
pub mod triage;
pub mod waterfall;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use self::guard::Guard;
use self::live::Live;
use self::sources::Sources;

/// Where one instance's handler serves its `GET /metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerEndpoint {
    /// The instance (`WEBSITE_INSTANCE_ID`); none when the app runs a single one.
    pub instance: Option<String>,
    /// `http://127.0.0.1:{port}/metrics`.
    pub url: String,
}

impl HandlerEndpoint {
    /// The endpoint of a single instance's handler.
    pub fn single(url: impl Into<String>) -> Vec<Self> {
        vec![Self {
            instance: None,
            url: url.into(),
        }]
    }
}

/// The dashboard's port unless told otherwise.
pub const DEFAULT_PORT: u16 = 7073;

/// A dashboard: its live state and its guard.
pub struct Dashboard {
    /// The live state over the sources.
    pub live: Arc<Live>,
    /// The token and the checks.
    pub guard: Guard,
    /// Where the handlers serve their metrics, one per instance of the app; appended to the
    /// dashboard's own `GET /metrics` once set, and added up in the LLM budget view.
    pub handler_metrics: std::sync::OnceLock<Vec<HandlerEndpoint>>,
    /// The spans received on `POST /v1/traces`.
    pub traces: traces::TraceStore,
    /// Where received spans are passed on, once set.
    pub forward: std::sync::OnceLock<traces::forward::Forwarder>,
    /// The samples of the handler's metrics the LLM budget view reads.
    pub budget: budget::Sampler,
}

/// A dashboard bound to its address, ready to serve.
pub struct Bound {
    listener: TcpListener,
    dashboard: Arc<Dashboard>,
}

/// Errors starting the dashboard.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {message}")]
pub struct BindError {
    /// The address.
    pub addr: SocketAddr,
    /// Why.
    pub message: String,
}

impl Bound {
    /// Binds `addr` (port 0: a free one) for a dashboard over `sources`. A loopback address
    /// also limits the `Host` names served to loopback ones.
    pub async fn bind(addr: SocketAddr, sources: Sources) -> Result<Self, BindError> {
        let listener = TcpListener::bind(addr).await.map_err(|e| BindError {
            addr,
            message: e.to_string(),
        })?;
        Ok(Self::from_listener(listener, sources))
    }

    /// A dashboard over `sources` on a listener bound earlier (so that its port could be
    /// handed to the handler before the dashboard's sources existed).
    pub fn from_listener(listener: TcpListener, sources: Sources) -> Self {
        let local = listener
            .local_addr()
            .expect("a bound listener has an address");
        let dashboard = Arc::new(Dashboard {
            live: Live::new(sources),
            guard: Guard::new(local.port(), local.ip().is_loopback()),
            handler_metrics: std::sync::OnceLock::new(),
            traces: traces::TraceStore::default(),
            forward: std::sync::OnceLock::new(),
            budget: budget::Sampler::default(),
        });
        Self {
            listener,
            dashboard,
        }
    }

    /// The same dashboard refusing every action (read-only pages, 403 `ReadOnly` to a POST).
    pub fn read_only(mut self) -> Self {
        let dashboard =
            Arc::get_mut(&mut self.dashboard).expect("a dashboard not yet served is not shared");
        dashboard.guard = dashboard.guard.clone().read_only();
        self
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// `http://host:port/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.local_addr())
    }

    /// The dashboard.
    pub fn dashboard(&self) -> &Arc<Dashboard> {
        &self.dashboard
    }

    /// Serves until `shutdown`; open event streams end with it.
    pub async fn serve(self, shutdown: CancellationToken) {
        tokio::spawn(self.dashboard.live.clone().run(shutdown.clone()));
        let stop = shutdown.clone();
        warp::serve(routes::routes(self.dashboard))
            .incoming(self.listener)
            .graceful(async move { stop.cancelled().await })
            .run()
            .await;
    }
}
