//! The `docflow` binary: parses the command line, starts tracing, calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

#[cfg(feature = "local")]
use docflow::cli::broker::BrokerCommand;
use docflow::cli::{
    self,
    dlq::{DlqCommand, Selection},
};
use docflow::config::Settings;
use docflow::telemetry::{self, LogFormat};
use docflow::{app, server};

/// mimalloc instead of the C library's allocator: glibc hands freed memory of its per-thread
/// arenas back to the kernel as it goes (`madvise`, with a TLB shoot-down on every core), which
/// on a request path was a few percent of all CPU time. Without transparent huge pages
/// (`no_thp`), as with them `docflow serve` took 72 MiB instead of 20 and twice as long to start.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const EXIT_CONFIG: u8 = cli::EXIT_CONFIG;

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
    #[cfg(feature = "local")]
    /// Run the app locally like `func start`: the handler, the embedded broker, the local blob store.
    Dev {
        /// The app root (host.json, function folders, servicebus.config.json).
        #[arg(long, default_value = ".")]
        app_root: PathBuf,
        /// Durable local state (broker and blobs).
        #[arg(long, default_value = ".docflow")]
        data_dir: PathBuf,
        /// Port of the HTTP triggers.
        #[arg(long, default_value_t = 7071)]
        http_port: u16,
        /// Port of the embedded broker (REST and AMQP, told apart by each connection's first bytes).
        #[arg(long, default_value_t = 7072)]
        broker_port: u16,
        /// An extra AMQP port of the embedded broker, for tools that insist on one (e.g. 5672).
        #[arg(long)]
        amqp_port: Option<u16>,
        /// Port of the dashboard (0 picks a free one).
        #[arg(long, default_value_t = docflow::dashboard::DEFAULT_PORT)]
        dashboard_port: u16,
        /// Address the dashboard listens on (loopback unless told otherwise).
        #[arg(long, default_value = "127.0.0.1")]
        dashboard_bind: std::net::IpAddr,
        /// Functions host instances, as Azure scales out: each its own handler process,
        /// competing for the same queues over the same broker and blob store.
        #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        instances: usize,
    },
    #[cfg(feature = "local")]
    /// Process documents end to end on the local stack and print the results.
    Run {
        /// Files or folders of documents (folders are searched recursively).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Only the files directly inside the given folders.
        #[arg(long)]
        no_recursive: bool,
        /// The Functions app root (the folder with host.json and the function folders).
        #[arg(long, default_value = ".")]
        app_root: PathBuf,
        /// Keep the state here (default: a temporary folder, removed afterwards).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Write every document's full status (as GET /api/documents/{id} returns it) to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Task kinds to run.
        #[arg(long, value_delimiter = ',', default_value = cli::run::DEFAULT_KINDS_ARG)]
        kinds: Vec<String>,
        /// Labels for classify.
        #[arg(long, value_delimiter = ',', default_value = cli::run::DEFAULT_LABELS_ARG)]
        labels: Vec<String>,
        /// Summary length in words.
        #[arg(long, default_value_t = 60)]
        max_words: u32,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout_secs: u64,
        /// Functions host instances, as Azure scales out: each its own handler process,
        /// competing for the same queues over the same broker and blob store.
        #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
        instances: usize,
    },
    #[cfg(feature = "local")]
    /// Run the embedded Service Bus broker (Service Bus REST API and AMQP 1.0 on 127.0.0.1).
    Broker {
        /// Topology in the Service Bus emulator's Config.json format.
        #[arg(long, default_value = "servicebus.config.json")]
        config: PathBuf,
        /// Folder of the durable store.
        #[arg(long, default_value = ".docflow/broker")]
        data_dir: PathBuf,
        /// Port of REST and AMQP, told apart by each connection's first bytes (0 picks a free one).
        #[arg(long, default_value_t = 7072)]
        port: u16,
        /// An extra port for AMQP clients that insist on a port of their own (e.g. 5672).
        #[arg(long)]
        amqp_port: Option<u16>,
        /// Connections served at once, over every port and both protocols.
        #[arg(long, default_value_t = 1000)]
        max_connections: usize,
        /// AMQP: links one session may hold.
        #[arg(long, default_value_t = 256)]
        max_links_per_session: usize,
        /// AMQP: seconds a silent peer is kept (announced in `open`; peers send heartbeats).
        #[arg(long, default_value_t = 120)]
        idle_timeout_secs: u64,
        /// Extra SAS policy NAME=KEY[:Rights], Rights from Manage, Send, Listen (repeatable).
        #[arg(long = "sas-rule")]
        sas_rules: Vec<String>,
    },
    /// Print a Shared Access Signature token (for curl against the broker or Azure).
    SasToken {
        /// The resource the token covers, e.g. http://127.0.0.1:7072/ai-tasks.
        #[arg(long, default_value = "http://127.0.0.1:7072/")]
        resource: String,
        /// Policy name.
        #[arg(long, default_value = docflow::servicebus::connection::EMULATOR_KEY_NAME)]
        key_name: String,
        /// Key (defaults to the emulator's well-known development key).
        #[arg(long, env = "DOCFLOW_SAS_KEY", hide_env_values = true, default_value = docflow::servicebus::connection::EMULATOR_KEY)]
        key: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
    /// Deployment helpers.
    Topology {
        #[command(subcommand)]
        what: TopologyWhat,
    },
    /// Build the deployable app: a zip for Azure Functions on Linux (binary linked for glibc 2.28).
    Package {
        /// The zip to write.
        #[arg(long, default_value = "dist/docflow-app.zip")]
        out: PathBuf,
        /// The app root (host.json, function folders, servicebus.config.json), also the Cargo project.
        #[arg(long, default_value = ".")]
        app_root: PathBuf,
        /// Cargo profile of the build.
        #[arg(long, default_value = "release")]
        profile: String,
        /// Target triple with the glibc version to link against (cargo-zigbuild form).
        #[arg(long, default_value = docflow::deploy::package::DEFAULT_TARGET)]
        target: String,
    },
    #[cfg(feature = "local")]
    /// An OpenAI-compatible endpoint that behaves like a rate-limited deployment (for benchmarks and tests).
    FakeLlm {
        /// Port on 127.0.0.1 (0 picks a free one; 7073 is `docflow dev`'s dashboard).
        #[arg(long, default_value_t = 7074)]
        port: u16,
        /// Tokens per minute (of the scaled clock).
        #[arg(long, default_value_t = 60_000)]
        tpm: u64,
        /// Requests per minute (of the scaled clock).
        #[arg(long, default_value_t = 600)]
        rpm: u64,
        /// Latency of an answer without output, in milliseconds (before scaling).
        #[arg(long, default_value_t = 2_000)]
        base_latency_ms: u64,
        /// Latency per output token, in milliseconds (before scaling).
        #[arg(long, default_value_t = 40)]
        per_token_latency_ms: u64,
        /// Divides latencies and the rate window (10: a minute lasts 6 s).
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Probability of a 503 for an admitted request.
        #[arg(long, default_value_t = 0.0)]
        error_rate: f64,
        /// Send only x-ratelimit-remaining-* (as Azure OpenAI does), not the limits.
        #[arg(long)]
        azure_headers: bool,
    },
    #[cfg(feature = "local")]
    /// Benchmarks that print figures (build with --release).
    Bench {
        #[command(subcommand)]
        what: cli::benches::Scenario,
    },
    #[cfg(feature = "local")]
    /// The dashboard pointed at a deployed app: its Service Bus namespace and storage account
    /// (read-only unless --allow-actions).
    Dashboard(cli::dashboard::DashboardOptions),
    /// Dead-letter triage against Azure Service Bus or the embedded broker.
    Dlq {
        /// Connection string; defaults to the connection setting below.
        #[arg(long, env = "DOCFLOW_SERVICEBUS_CONNECTION", hide_env_values = true)]
        connection: Option<String>,
        /// Functions connection setting to resolve from the environment or ./local.settings.json.
        #[arg(long, default_value = "ServiceBusConnection")]
        connection_setting: String,
        #[command(subcommand)]
        action: DlqAction,
    },
}

#[derive(Subcommand)]
enum TopologyWhat {
    /// Print a bash script of `az servicebus` commands creating every entity of the topology.
    AzCli {
        /// Topology in the Service Bus emulator's Config.json format.
        #[arg(long, default_value = "servicebus.config.json")]
        config: PathBuf,
    },
    /// Print the topology as a Config.json for Microsoft's Service Bus emulator, within its
    /// limits; each value clamped is named on stderr.
    Emulator {
        /// Topology in the Service Bus emulator's Config.json format.
        #[arg(long, default_value = "servicebus.config.json")]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// List dead-lettered messages of a queue or topic/subscriptions/sub.
    List {
        entity: String,
        /// Only this DeadLetterReason.
        #[arg(long)]
        reason: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// At most this many messages.
        #[arg(long, default_value_t = cli::dlq::DEFAULT_MAX)]
        max: usize,
    },
    /// Show one dead-lettered message whole.
    Show { entity: String, seq: i64 },
    /// Send copies back to the entity, then remove the originals.
    Resubmit {
        entity: String,
        #[command(flatten)]
        select: Select,
        /// Only list what would be resubmitted.
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove dead-lettered messages.
    Discard {
        entity: String,
        #[command(flatten)]
        select: Select,
        /// Only list what would be discarded.
        #[arg(long)]
        dry_run: bool,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct Select {
    /// Messages with this DeadLetterReason.
    #[arg(long)]
    reason: Option<String>,
    /// Every message.
    #[arg(long)]
    all: bool,
    /// These sequence numbers.
    seqs: Vec<i64>,
}

impl Select {
    fn selection(self) -> Selection {
        match (self.reason, self.all) {
            (Some(r), _) => Selection::Reason(r),
            (None, true) => Selection::All,
            (None, false) => Selection::Sequences(self.seqs),
        }
    }
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
        #[cfg(feature = "local")]
        Command::FakeLlm {
            port,
            tpm,
            rpm,
            base_latency_ms,
            per_token_latency_ms,
            time_scale,
            error_rate,
            azure_headers,
        } => runtime.block_on(async {
            telemetry::init(LogFormat::Text);
            let options = docflow::fake_llm::FakeLlmOptions {
                tpm,
                rpm,
                base_latency: std::time::Duration::from_millis(base_latency_ms),
                per_token_latency: std::time::Duration::from_millis(per_token_latency_ms),
                time_scale,
                error_rate,
                azure_headers,
            };
            ExitCode::from(cli::fake_llm::run(port, options, on_signal()).await)
        }),
        #[cfg(feature = "local")]
        Command::Broker {
            config,
            data_dir,
            port,
            amqp_port,
            max_connections,
            max_links_per_session,
            idle_timeout_secs,
            sas_rules,
        } => runtime.block_on(async {
            telemetry::init(LogFormat::Text);
            let shutdown = on_signal();
            ExitCode::from(
                cli::broker::run(
                    BrokerCommand {
                        config,
                        data_dir,
                        port,
                        amqp_port,
                        max_connections,
                        max_links_per_session,
                        idle_timeout: std::time::Duration::from_secs(idle_timeout_secs),
                        sas_rules,
                    },
                    shutdown,
                )
                .await,
            )
        }),
        #[cfg(feature = "local")]
        Command::Dev {
            app_root,
            data_dir,
            http_port,
            broker_port,
            amqp_port,
            dashboard_port,
            dashboard_bind,
            instances,
        } => runtime.block_on(async {
            let shutdown = on_signal();
            let options = docflow::host::DevOptions {
                app_root,
                data_dir,
                http_port,
                broker_port,
                amqp_port,
                handler_log: None,
                env: Vec::new(),
                instances,
            };
            let dashboard = std::net::SocketAddr::new(dashboard_bind, dashboard_port);
            ExitCode::from(cli::dev::run(options, dashboard, shutdown).await)
        }),
        #[cfg(feature = "local")]
        Command::Run {
            inputs,
            no_recursive,
            app_root,
            data_dir,
            out,
            kinds,
            labels,
            max_words,
            timeout_secs,
            instances,
        } => runtime.block_on(async {
            // The table is the output; keep host chatter to warnings unless RUST_LOG says more.
            telemetry::init_with_default(LogFormat::Text, "warn");
            let shutdown = on_signal();
            let command = cli::run::RunCommand {
                inputs,
                recursive: !no_recursive,
                app_root,
                data_dir,
                out,
                kinds,
                labels,
                max_words,
                timeout: std::time::Duration::from_secs(timeout_secs),
                instances,
            };
            ExitCode::from(cli::run::run(command, shutdown).await)
        }),
        Command::SasToken {
            resource,
            key_name,
            key,
            ttl,
        } => {
            let expiry = (chrono::Utc::now().timestamp().max(0) as u64).saturating_add(ttl);
            println!(
                "{}",
                docflow::servicebus::sas::sign(&resource, &key_name, &key, expiry)
            );
            ExitCode::SUCCESS
        }
        Command::Topology {
            what: TopologyWhat::AzCli { config },
        } => match docflow::topology::Topology::load(&config) {
            Ok(topology) => {
                print!("{}", docflow::deploy::az_cli_script(&topology));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("docflow topology az-cli: {e}");
                ExitCode::from(cli::EXIT_CONFIG)
            }
        },
        Command::Topology {
            what: TopologyWhat::Emulator { config },
        } => ExitCode::from(cli::topology::emulator(&config)),
        Command::Package {
            out,
            app_root,
            profile,
            target,
        } => ExitCode::from(cli::package::run(
            docflow::deploy::package::PackageOptions {
                build: docflow::deploy::package::BuildOptions {
                    root: app_root,
                    profile,
                    target,
                },
                out,
            },
        )),
        #[cfg(feature = "local")]
        Command::Bench { what } => runtime.block_on(async { ExitCode::from(what.run().await) }),
        #[cfg(feature = "local")]
        Command::Dashboard(options) => runtime.block_on(async {
            telemetry::init(LogFormat::Text);
            let local = local_settings();
            let lookup = |k: &str| std::env::var(k).ok().or_else(|| local.get(k).cloned());
            ExitCode::from(cli::dashboard::run(options, lookup, on_signal()).await)
        }),
        Command::Dlq {
            connection,
            connection_setting,
            action,
        } => runtime.block_on(dlq(connection, &connection_setting, action)),
    }
}

async fn serve(port_flag: Option<u16>) -> ExitCode {
    let telemetry = telemetry::init_exporting(LogFormat::Json, "docflow");
    let code = serve_app(port_flag).await;
    // Exported spans and metrics are flushed before the process ends (a blocking call).
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    code
}

async fn serve_app(port_flag: Option<u16>) -> ExitCode {
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
    let shutdown = on_signal();
    server::stop_with_local_host(shutdown.clone());
    server::serve(listener, registry, shutdown, settings.drain_timeout).await;
    ExitCode::SUCCESS
}

async fn dlq(connection: Option<String>, setting: &str, action: DlqAction) -> ExitCode {
    telemetry::init(LogFormat::Text);
    let command = match action {
        DlqAction::List {
            entity,
            reason,
            json,
            max,
        } => DlqCommand::List {
            entity,
            reason,
            json,
            max,
        },
        DlqAction::Show { entity, seq } => DlqCommand::Show { entity, seq },
        DlqAction::Resubmit {
            entity,
            select,
            dry_run,
        } => DlqCommand::Resubmit {
            entity,
            selection: select.selection(),
            dry_run,
        },
        DlqAction::Discard {
            entity,
            select,
            dry_run,
            yes,
        } => DlqCommand::Discard {
            entity,
            selection: select.selection(),
            dry_run,
            yes,
        },
    };
    let local = local_settings();
    let lookup = |k: &str| std::env::var(k).ok().or_else(|| local.get(k).cloned());
    ExitCode::from(cli::dlq::main(connection, setting, command, lookup).await)
}

/// `Values` of ./local.settings.json, for commands run from the app root.
fn local_settings() -> std::collections::BTreeMap<String, String> {
    docflow::app_config::local_settings(std::path::Path::new(".")).unwrap_or_else(|e| {
        eprintln!("docflow: ignoring local.settings.json: {e}");
        Default::default()
    })
}

/// A token cancelled on Ctrl-C or SIGTERM.
fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    tokio::spawn(wait_for_signal(token.clone()));
    token
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
