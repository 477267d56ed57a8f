//! A local Azure Functions host for custom handlers (`docflow dev`): runs an app as
//! `func start` does, on the embedded broker and the local blob store, treating the handler
//! exactly as the real host. It runs any custom handler: it knows the host's protocol and the
//! app's files, never the handler's functions.
//!
//! # Layout
//! - [`config`]: host.json, function.json, local.settings.json (from `docflow-custom-handler`).
//! - [`handler`]: the handler process (start, readiness, restart, timeouts).
//! - [`instance`]: several host instances over one broker and store (`--instances N`).
//! - [`invoke`]: requests built and replies read by the host's rules.
//! - [`outputs`]: a reply's outputs applied (Service Bus messages, blobs, the HTTP reply).
//! - [`listener`]: Service Bus triggers (queues, subscriptions, sessions, batches).
//! - [`http`]: HTTP triggers.
//! - [`timings`]: queue wait, handler call and settle time per function.
//!
//! The broker's port serves REST and AMQP 1.0 (`docflow-broker-amqp`), so a user's own
//! services reach the running app's queues with Microsoft's SDKs.
//!
//! Depends on `docflow-broker`, `docflow-broker-amqp`, `docflow-custom-handler`, `docflow-blob`
//! and `docflow-servicebus`; never on the app.

pub use docflow_custom_handler::app_config as config;
pub mod handler;
pub mod http;
pub mod instance;
pub mod invoke;
pub mod listener;
pub mod outputs;
pub mod timings;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use self::config::{AppConfig, AppError, FunctionDef, Trigger};
use self::handler::{Handler, HandlerSpec, resolve_executable};
use self::instance::RoundRobin;
use self::invoke::BindingData;
use docflow_blob::LocalFolderStore;
use docflow_broker::{Broker, BrokerOptions, Entities};
use docflow_broker_amqp::ListenOptions;
use docflow_servicebus::connection::Namespace;

/// Options of the local host.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// The app root (host.json, function folders, servicebus.config.json).
    pub app_root: PathBuf,
    /// Durable local state: `broker/` and `blobs/` below it.
    pub data_dir: PathBuf,
    /// HTTP trigger port (0: a free one).
    pub http_port: u16,
    /// The broker's port, REST and AMQP (0: a free one).
    pub broker_port: u16,
    /// An extra AMQP port of the broker, for tools that insist on one.
    pub amqp_port: Option<u16>,
    /// Handler stdout/stderr go to this file instead of the terminal.
    pub handler_log: Option<PathBuf>,
    /// Extra environment for the handler (overrides local.settings.json).
    pub env: Vec<(String, String)>,
    /// How many Functions host instances run, as Azure scales an app out (0 counts as 1):
    /// each has its own handler process and its own Service Bus listeners, competing for the
    /// same queues with the host.json concurrency of one instance; HTTP requests are taken by
    /// the instances in turn. All share the settings, the broker and the blob store.
    pub instances: usize,
}

/// Errors starting the local host.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// The app is invalid.
    #[error(transparent)]
    App(#[from] AppError),
    /// The topology is invalid or the broker cannot start.
    #[error("servicebus.config.json: {0}")]
    Broker(String),
    /// A port cannot be bound.
    #[error("cannot listen on 127.0.0.1:{port}: {message}")]
    Bind {
        /// The port.
        port: u16,
        /// Why.
        message: String,
    },
    /// The handler did not start.
    #[error(transparent)]
    Handler(#[from] handler::HandlerError),
    /// A function's trigger names an entity the topology lacks.
    #[error(
        "{function}/function.json: its trigger's entity {entity:?} is not in servicebus.config.json"
    )]
    UnknownEntity {
        /// The function.
        function: String,
        /// The entity.
        entity: String,
    },
}

/// One instance of the host: what its listeners and the HTTP requests it takes share. The
/// instances of a local host share everything here but the handler and the id.
pub struct Context {
    /// The app.
    pub app: AppConfig,
    /// The embedded broker.
    pub broker: Broker,
    /// The local blob store.
    pub blobs: LocalFolderStore,
    /// The instance's handler process.
    pub handler: Handler,
    /// The instance's id, as its handler sees it in `WEBSITE_INSTANCE_ID` (none when the host
    /// runs a single instance).
    pub instance_id: Option<String>,
    /// The namespace name shown in trigger metadata.
    pub namespace: String,
    /// Shutdown signal.
    pub shutdown: CancellationToken,
    /// Where invocations spend their time, per function (over every instance).
    pub timings: Arc<timings::Timings>,
}

/// The Functions host's HTTP request body limit when `FUNCTIONS_REQUEST_BODY_SIZE_LIMIT` is
/// not set: 100 MB.
pub const DEFAULT_REQUEST_BODY_LIMIT: usize = 104_857_600;

impl Context {
    /// The largest HTTP trigger request body accepted (`413` beyond it), as the Functions host
    /// reads it from the `FUNCTIONS_REQUEST_BODY_SIZE_LIMIT` app setting.
    pub fn max_request_body_bytes(&self) -> usize {
        const SETTING: &str = "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT";
        std::env::var(SETTING)
            .ok()
            .or_else(|| self.app.settings.get(SETTING).cloned())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_REQUEST_BODY_LIMIT)
    }

    /// The lock duration of an entity (for renewal timing).
    pub fn lock_duration(&self, entity: &str) -> Duration {
        self.broker
            .entities()
            .resolve(entity)
            .map_or(Duration::from_secs(60), |t| t.settings().lock_duration)
    }

    /// Sends one invocation, reads the reply, logs its `Logs`, applies its outputs.
    pub async fn invoke(
        &self,
        def: &FunctionDef,
        invocation_id: &str,
        request: &Value,
        data: &BindingData,
    ) -> Result<Option<Value>, String> {
        let body = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        let response = self
            .handler
            .invoke(
                &def.name,
                invocation_id,
                body,
                self.app.host.function_timeout,
            )
            .await
            .map_err(|e| e.to_string())?;
        let reply = invoke::read_reply(response).await?;
        for line in &reply.logs {
            info!(function = %def.name, invocation_id, "{line}");
        }
        outputs::apply_outputs(def, &reply, data, &self.broker, &self.blobs).await
    }
}

/// A running local host.
pub struct LocalHost {
    /// Its instances, at least one; HTTP requests go to them in turn.
    instances: Arc<RoundRobin<Arc<Context>>>,
    env: Vec<(String, String)>,
    http_port: u16,
    broker_port: u16,
    /// Listeners and the HTTP server: they stop taking work on shutdown and finish what they
    /// have.
    draining: Vec<JoinHandle<()>>,
    /// The broker's REST server, which the handler uses until the last invocation is over.
    serving: Vec<JoinHandle<()>>,
    /// Stops the broker's REST server and the handler process, once the draining is over.
    stopped: CancellationToken,
}

/// How long a shutdown waits for the invocations in flight.
const DRAIN: Duration = Duration::from_secs(30);

impl LocalHost {
    /// Loads the app, starts the broker, the blob store, each instance's handler and listeners,
    /// and the HTTP server.
    pub async fn start(options: DevOptions, shutdown: CancellationToken) -> Result<Self, DevError> {
        let app = AppConfig::load_with(&options.app_root, &options.env)?;
        let topology = std::fs::read_to_string(options.app_root.join("servicebus.config.json"))
            .map_err(|e| DevError::Broker(e.to_string()))?;
        let entities = Entities::parse(&topology).map_err(|e| DevError::Broker(e.to_string()))?;
        for f in &app.functions {
            if let Trigger::ServiceBus(t) = &f.trigger
                && entities.resolve(&t.entity).is_none()
            {
                return Err(DevError::UnknownEntity {
                    function: f.name.clone(),
                    entity: t.entity.clone(),
                });
            }
        }
        let namespace = entities.namespace.clone();
        let broker = Broker::open(
            entities,
            BrokerOptions::new(options.data_dir.join("broker")),
        )
        .map_err(|e| DevError::Broker(e.to_string()))?;
        let blob_dir = options.data_dir.join("blobs");
        let blobs = LocalFolderStore::new(&blob_dir);

        let bind = |port: u16| async move {
            tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .map_err(|e| DevError::Bind {
                    port,
                    message: e.to_string(),
                })
        };
        let broker_listener = bind(options.broker_port).await?;
        let broker_port = broker_listener
            .local_addr()
            .map_err(|e| DevError::Bind {
                port: options.broker_port,
                message: e.to_string(),
            })?
            .port();
        let mut broker_listeners = vec![broker_listener];
        if let Some(port) = options.amqp_port {
            broker_listeners.push(bind(port).await?);
        }
        let http_listener = bind(options.http_port).await?;
        let http_port = http_listener
            .local_addr()
            .map_err(|e| DevError::Bind {
                port: options.http_port,
                message: e.to_string(),
            })?
            .port();
        // The broker and the handler outlive the shutdown signal: invocations in flight still
        // use them (outputs, reschedules, lock renewals) while the listeners drain.
        let stopped = CancellationToken::new();
        let stop = stopped.clone();
        let serving = vec![tokio::spawn(docflow_broker_amqp::serve(
            broker.clone(),
            broker_listeners,
            ListenOptions::default(),
            async move { stop.cancelled().await },
        ))];

        let connection = Namespace::emulator_connection_string(broker_port);
        let mut env: Vec<(String, String)> = app
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for f in &app.functions {
            if let Trigger::ServiceBus(t) = &f.trigger {
                let name = if t.connection.is_empty() {
                    "AzureWebJobsServiceBus".to_string()
                } else {
                    t.connection.clone()
                };
                env.push((name, connection.clone()));
            }
        }
        env.push(("ServiceBusConnection".into(), connection));
        env.push(("DOCFLOW_BLOB_DIR".into(), blob_dir.display().to_string()));
        env.extend(options.env.clone());
        let spec = HandlerSpec {
            program: resolve_executable(&app.root, &app.host.executable),
            args: app.host.arguments.clone(),
            cwd: app
                .root
                .join(app.host.working_directory.as_deref().unwrap_or(".")),
            env,
            initialization_timeout: app.host.initialization_timeout,
            log_file: options.handler_log.clone(),
        };
        let ids = instance::instance_ids(options.instances.max(1));
        let handlers = instance::start_handlers(&spec, &ids, &stopped, &shutdown).await?;
        let timings = Arc::new(timings::Timings::default());
        let contexts: Vec<Arc<Context>> = handlers
            .into_iter()
            .zip(ids)
            .map(|(handler, instance_id)| {
                Arc::new(Context {
                    app: app.clone(),
                    broker: broker.clone(),
                    blobs: blobs.clone(),
                    handler,
                    instance_id,
                    namespace: namespace.clone(),
                    shutdown: shutdown.clone(),
                    timings: timings.clone(),
                })
            })
            .collect();
        let mut draining = Vec::new();
        for ctx in &contexts {
            for f in &ctx.app.functions {
                if let Trigger::ServiceBus(t) = &f.trigger {
                    draining.push(tokio::spawn(listener::run(
                        ctx.clone(),
                        f.clone(),
                        t.clone(),
                    )));
                }
            }
        }
        let instances = Arc::new(RoundRobin::new(contexts));
        let stop = shutdown.clone();
        let server = warp::serve(http::routes(instances.clone()))
            .incoming(http_listener)
            .graceful(async move { stop.cancelled().await });
        draining.push(tokio::spawn(server.run()));
        Ok(Self {
            instances,
            env: options.env.clone(),
            http_port,
            broker_port,
            draining,
            serving,
            stopped,
        })
    }

    /// The first instance's context: the broker, blob store and app every instance shares,
    /// and the first instance's handler.
    pub fn context(&self) -> &Arc<Context> {
        self.instances.first()
    }

    /// Every instance's context, the first one first.
    pub fn instances(&self) -> &[Arc<Context>] {
        self.instances.items()
    }

    /// How many instances run.
    pub fn instance_count(&self) -> usize {
        self.instances().len()
    }

    /// Where Service Bus triggered invocations spent their time so far, per function, over
    /// every instance.
    pub fn timings(&self) -> std::collections::BTreeMap<String, timings::FunctionTimings> {
        self.context().timings.snapshot()
    }

    /// The HTTP trigger port.
    pub fn http_port(&self) -> u16 {
        self.http_port
    }

    /// The broker's REST port.
    pub fn broker_port(&self) -> u16 {
        self.broker_port
    }

    /// Every instance's id (none for a single instance) and its handler's port, the first
    /// instance's first: each handler process has its own `GET /metrics`, counting what that
    /// process did.
    pub fn handler_instances(&self) -> Vec<(Option<String>, u16)> {
        self.instances()
            .iter()
            .map(|c| (c.instance_id.clone(), c.handler.port()))
            .collect()
    }

    /// A setting as the handler sees it: the host's extra environment, then the app settings
    /// (the environment already winning over local.settings.json), then the environment. A
    /// handler's own settings are read through this by whoever knows them.
    pub fn handler_setting(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| self.context().app.settings.get(name).cloned())
            .or_else(|| std::env::var(name).ok())
    }

    /// The functions with their triggers, as `func start` prints them.
    pub fn function_table(&self) -> String {
        let app = &self.context().app;
        let mut out = String::from("Functions:\n\n");
        for f in &app.functions {
            match &f.trigger {
                Trigger::Http(t) => {
                    let methods = if t.methods.is_empty() {
                        "GET,POST,PUT,DELETE,PATCH".to_string()
                    } else {
                        t.methods.join(",")
                    };
                    let prefix = if app.host.route_prefix.is_empty() {
                        String::new()
                    } else {
                        format!("/{}", app.host.route_prefix)
                    };
                    out.push_str(&format!(
                        "\t{}: [{methods}] http://127.0.0.1:{}{prefix}/{}\n\n",
                        f.name, self.http_port, t.route
                    ));
                }
                Trigger::ServiceBus(t) => {
                    let mut extra = Vec::new();
                    if t.sessions {
                        extra.push("sessions".to_string());
                    }
                    if t.many {
                        extra.push(format!("batches of up to {}", t.max_batch_size));
                    }
                    let extra = if extra.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", extra.join(", "))
                    };
                    out.push_str(&format!(
                        "\t{}: serviceBusTrigger on {}{extra}\n\n",
                        f.name, t.entity
                    ));
                }
            }
        }
        out.push_str(&format!(
            "Service Bus (embedded): {}\n",
            Namespace::emulator_connection_string(self.broker_port)
        ));
        if self.instance_count() > 1 {
            out.push_str(&format!(
                "Instances: {} (each its own handler process; Service Bus triggers compete for the same queues, HTTP requests go to each in turn)\n",
                self.instance_count()
            ));
        }
        out
    }

    /// Stops everything, as the Functions host does: the listeners stop receiving and the HTTP
    /// server stops accepting, the invocations and requests in flight finish (for up to 30 s),
    /// then the handler gets SIGTERM and the broker's REST server closes.
    pub async fn shutdown(mut self) {
        self.context().shutdown.cancel();
        let deadline = tokio::time::Instant::now() + DRAIN;
        for task in std::mem::take(&mut self.draining) {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!(
                    "invocations were still running {DRAIN:?} after the shutdown signal; stopping the handler under them"
                );
                break;
            }
        }
        self.stopped.cancel();
        for task in std::mem::take(&mut self.serving) {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
    }
}

impl Drop for LocalHost {
    /// A host dropped without [`LocalHost::shutdown`] still stops its handler process.
    fn drop(&mut self) {
        self.context().shutdown.cancel();
        self.stopped.cancel();
    }
}

/// A free loopback port.
pub fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}
