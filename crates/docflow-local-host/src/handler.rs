//! The custom handler process, managed as the real host manages it: started with a free port in
//! `FUNCTIONS_CUSTOMHANDLER_PORT` and the app settings in its environment, ready when `GET /`
//! answers anything, restarted when it dies or an invocation times out (which fails every
//! invocation in flight, as on Azure).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::{Mutex, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// How often readiness is probed (the real host: every 25 ms).
const PROBE_INTERVAL: Duration = Duration::from_millis(25);
/// Start failures in a row after which the host gives up (the real host: 3).
const MAX_START_FAILURES: u32 = 3;

/// How to start the handler.
#[derive(Debug, Clone)]
pub struct HandlerSpec {
    /// Executable.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Environment added to the host's own.
    pub env: Vec<(String, String)>,
    /// Readiness deadline.
    pub initialization_timeout: Duration,
    /// Where its stdout and stderr go (`None`: the host's own).
    pub log_file: Option<PathBuf>,
}

/// Errors of the handler process or of one invocation.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HandlerError {
    /// It could not be started or did not become ready.
    #[error("the custom handler could not be started: {0}")]
    Start(String),
    /// The invocation ran past `functionTimeout`.
    #[error("the invocation exceeded functionTimeout ({0:?}); the handler is being restarted")]
    Timeout(Duration),
    /// The HTTP exchange failed (connection refused or reset: the process died).
    #[error("the handler connection failed: {0}")]
    Connection(String),
}

/// Which process generation serves, and whether a new one is starting.
#[derive(Debug, Clone, Copy)]
struct Lifecycle {
    generation: u64,
    starting: bool,
}

/// A managed handler process.
#[derive(Clone)]
pub struct Handler {
    inner: Arc<Inner>,
}

struct Inner {
    spec: HandlerSpec,
    port: u16,
    http: reqwest::Client,
    /// The current process's kill switch; held only by a restart, across start-up.
    restarting: Mutex<Option<oneshot::Sender<()>>>,
    /// Invocations read the generation here and, during a restart, wait for its end.
    lifecycle: watch::Sender<Lifecycle>,
    /// Stops the process for good.
    shutdown: CancellationToken,
    /// Cancelled when the handler cannot be started: the host stops.
    give_up: CancellationToken,
}

impl Handler {
    /// Starts the handler on `port` and waits until it is ready. `shutdown` stops it for good;
    /// `give_up` is cancelled if it cannot be (re)started, to stop the host.
    pub async fn start(
        spec: HandlerSpec,
        port: u16,
        shutdown: CancellationToken,
        give_up: CancellationToken,
    ) -> Result<Self, HandlerError> {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| HandlerError::Start(e.to_string()))?;
        let handler = Self {
            inner: Arc::new(Inner {
                spec,
                port,
                http,
                restarting: Mutex::new(None),
                lifecycle: watch::Sender::new(Lifecycle {
                    generation: 0,
                    starting: false,
                }),
                shutdown,
                give_up,
            }),
        };
        handler.launch(0).await?;
        Ok(handler)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// The current process generation (increases on every restart). During a restart this
    /// waits, on a notification, until the new process is ready (or start-up gave up).
    pub async fn generation(&self) -> u64 {
        let mut lifecycle = self.inner.lifecycle.subscribe();
        match lifecycle.wait_for(|l| !l.starting).await {
            Ok(l) => l.generation,
            Err(_) => self.inner.lifecycle.borrow().generation,
        }
    }

    /// Restarts the handler if it is still generation `seen` (so that several failures of one
    /// process restart it once).
    pub async fn restart(&self, seen: u64, reason: &str) -> Result<(), HandlerError> {
        warn!(reason, "restarting the custom handler");
        self.launch(seen).await
    }

    /// Kills the current process (if generation `seen`) and starts the next, waiting for it.
    /// Only restarters wait on the restart lock; invocations wait on the lifecycle notification.
    async fn launch(&self, seen: u64) -> Result<(), HandlerError> {
        let mut kill = self.inner.restarting.lock().await;
        if self.inner.lifecycle.borrow().generation != seen
            || self.inner.shutdown.is_cancelled()
            || self.inner.give_up.is_cancelled()
        {
            return Ok(());
        }
        self.inner.lifecycle.send_modify(|l| l.starting = true);
        if let Some(switch) = kill.take() {
            let _ = switch.send(());
        }
        let mut failures = 0;
        let mut generation = seen;
        loop {
            generation += 1;
            match self.spawn(generation).await {
                Ok(switch) => {
                    *kill = Some(switch);
                    self.inner.lifecycle.send_replace(Lifecycle {
                        generation,
                        starting: false,
                    });
                    return Ok(());
                }
                Err(e) if failures + 1 < MAX_START_FAILURES => {
                    failures += 1;
                    error!(error = %e, attempt = failures, "custom handler failed to start; trying again");
                }
                Err(e) => {
                    error!(error = %e, "custom handler failed to start {MAX_START_FAILURES} times; giving up");
                    self.inner.give_up.cancel();
                    // Nobody waits for a start that will not come.
                    self.inner.lifecycle.send_replace(Lifecycle {
                        generation,
                        starting: false,
                    });
                    return Err(e);
                }
            }
        }
    }

    async fn spawn(&self, generation: u64) -> Result<oneshot::Sender<()>, HandlerError> {
        let spec = &self.inner.spec;
        let mut command = Command::new(&spec.program);
        command
            .args(&spec.args)
            .current_dir(&spec.cwd)
            .kill_on_drop(true);
        for (k, v) in &spec.env {
            command.env(k, v);
        }
        let port = self.inner.port.to_string();
        command
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", &port)
            .env("FUNCTIONS_HTTPWORKER_PORT", &port)
            .env(
                "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
                uuid::Uuid::new_v4().to_string(),
            )
            .env("FUNCTIONS_HTTPWORKER_ID", uuid::Uuid::new_v4().to_string())
            .env("FUNCTIONS_APP_ROOT_PATH", &spec.cwd)
            .env(
                docflow_custom_handler::HOST_PID_ENV,
                std::process::id().to_string(),
            );
        if let Some(path) = &spec.log_file {
            let open = || {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
            };
            let (out, err) = open()
                .and_then(|a| Ok((a, open()?)))
                .map_err(|e| HandlerError::Start(format!("cannot open {}: {e}", path.display())))?;
            command.stdout(out).stderr(err);
        }
        let mut child = command.spawn().map_err(|e| {
            HandlerError::Start(format!("cannot run {}: {e}", spec.program.display()))
        })?;
        info!(generation, pid = child.id(), port = self.inner.port, program = %spec.program.display(), "custom handler started");
        if let Err(e) = self.wait_ready(&mut child).await {
            let _ = child.kill().await;
            return Err(e);
        }
        let (kill, killed) = oneshot::channel();
        tokio::spawn(self.clone().watch(child, generation, killed));
        Ok(kill)
    }

    async fn wait_ready(&self, child: &mut Child) -> Result<(), HandlerError> {
        let deadline = tokio::time::Instant::now() + self.inner.spec.initialization_timeout;
        let url = format!("http://127.0.0.1:{}/", self.inner.port);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(HandlerError::Start(format!(
                    "the handler exited during start-up with {status}"
                )));
            }
            // Any HTTP answer, 404 included, means ready.
            if self
                .inner
                .http
                .get(&url)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok()
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(HandlerError::Start(format!(
                    "GET / did not answer within initializationTimeout ({:?})",
                    self.inner.spec.initialization_timeout
                )));
            }
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    /// Waits for the process to exit; an unexpected exit restarts it.
    async fn watch(self, mut child: Child, generation: u64, killed: oneshot::Receiver<()>) {
        tokio::select! {
            status = child.wait() => {
                if self.inner.shutdown.is_cancelled() {
                    return;
                }
                error!(generation, status = ?status.ok(), "custom handler exited unexpectedly; restarting it");
                self.relaunch(generation).await;
            }
            _ = killed => {
                let _ = child.kill().await;
            }
            () = self.inner.shutdown.cancelled() => {
                terminate(&mut child).await;
            }
        }
    }

    /// Restarts after a crash. Boxed: `launch` spawns `watch`, which calls this.
    fn relaunch(
        self,
        generation: u64,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(async move {
            if let Err(e) = self.launch(generation).await {
                error!(error = %e, "custom handler could not be restarted");
            }
        })
    }

    /// POSTs an invocation to `/{function}`; `timeout` is `functionTimeout`.
    pub async fn invoke(
        &self,
        function: &str,
        invocation_id: &str,
        body: Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, HandlerError> {
        let generation = self.generation().await;
        let request = self
            .inner
            .http
            .post(format!("http://127.0.0.1:{}/{function}", self.inner.port))
            .header("X-Azure-Functions-InvocationId", invocation_id)
            .header("X-Azure-Functions-HostVersion", HOST_VERSION)
            .header(
                "User-Agent",
                format!("Azure-Functions-Host/{HOST_VERSION} (docflow dev)"),
            )
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body);
        self.send_within(request, timeout, generation).await
    }

    /// Sends `request` to the handler; past `timeout` (`functionTimeout`) the handler is
    /// restarted, as the Functions host recycles a worker whose invocation timed out.
    async fn send_within(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Option<Duration>,
        generation: u64,
    ) -> Result<reqwest::Response, HandlerError> {
        let result = match timeout {
            Some(limit) => match tokio::time::timeout(limit, request.send()).await {
                Ok(r) => r,
                Err(_) => {
                    let _ = self
                        .restart(generation, "an invocation exceeded functionTimeout")
                        .await;
                    return Err(HandlerError::Timeout(limit));
                }
            },
            None => request.send().await,
        };
        result.map_err(|e| HandlerError::Connection(e.to_string()))
    }

    /// A request for forwarding an HTTP request unchanged (`enableForwardingHttpRequest`).
    pub fn forward(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
    ) -> reqwest::RequestBuilder {
        self.inner.http.request(
            method,
            format!("http://127.0.0.1:{}{path_and_query}", self.inner.port),
        )
    }

    /// Sends a forwarded HTTP request, under `functionTimeout` like every invocation.
    pub async fn send_forwarded(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, HandlerError> {
        let generation = self.generation().await;
        self.send_within(request, timeout, generation).await
    }
}

/// The host version docflow's local host reports.
pub const HOST_VERSION: &str = "4.1037.0.0";

/// SIGTERM, a moment to drain, then SIGKILL.
async fn terminate(child: &mut Child) {
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .is_ok()
        {
            return;
        }
    }
    let _ = child.kill().await;
}

/// The handler executable: `defaultExecutablePath` under the app root, else on `PATH`, else
/// the running docflow binary itself.
pub fn resolve_executable(root: &Path, path: &str) -> PathBuf {
    let candidate = root.join(path);
    if candidate.is_file() {
        return candidate;
    }
    if Path::new(path).is_absolute() && Path::new(path).is_file() {
        return PathBuf::from(path);
    }
    if let Some(dirs) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&dirs) {
            let found = dir.join(path);
            if found.is_file() {
                return found;
            }
        }
    }
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from(path))
}
