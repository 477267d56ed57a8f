//! Shared test helpers: fixtures, host-encoded requests, counting and scripted providers, and
//! an in-process app with a temporary blob folder.
#![allow(dead_code)]

pub mod azurite;
pub mod broker;
pub mod documents;
pub mod pipeline;
pub mod recall;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use docflow::ai::offline::OfflineProvider;
use docflow::ai::{AiOutput, AiProvider, AiRequest, ProviderError};
use docflow::blob::{BlobStore, LocalFolderStore};
use docflow::functions::process_document::ProcessOptions;
use docflow::functions::{ProcessDocument, Registry};
use docflow::server::routes;
use serde_json::{Value, json};

/// The test fixtures folder.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture's bytes, by path under `tests/fixtures`.
pub fn fixture(relative: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(relative))
        .unwrap_or_else(|e| panic!("fixture {relative}: {e}"))
}

/// A fixture parsed as JSON.
pub fn fixture_json(relative: &str) -> Value {
    serde_json::from_slice(&fixture(relative)).unwrap()
}

/// `JsonConvert.SerializeObject` of a string: the host's double encoding.
pub fn host_string(s: &str) -> Value {
    Value::String(serde_json::to_string(s).unwrap())
}

/// The request the real host sends for a Service Bus message with this body: the
/// `servicebus-single` fixture with its body replaced, the old body's properties removed from
/// `Metadata` and the new body's merged in exactly as the host does (§1.4).
pub fn host_request(body: &str, delivery_count: u32) -> Vec<u8> {
    let mut request = fixture_json("custom-handler/servicebus-single.request.json");
    request["Data"]["message"] = host_string(body);
    let metadata = request["Metadata"].as_object_mut().unwrap();
    for key in ["documentId", "blobPath", "task", "tenantId"] {
        metadata.remove(key);
    }
    metadata.insert(
        "DeliveryCount".into(),
        Value::String(delivery_count.to_string()),
    );
    if let Ok(Value::Object(props)) = serde_json::from_str::<Value>(body) {
        for (key, value) in props {
            let encoded = match value {
                Value::Array(_) => continue,
                Value::Object(_) => value,
                Value::String(s) => host_string(&s),
                other => Value::String(other.to_string()),
            };
            // The binding-data dictionary is case-insensitive: an existing key keeps its casing.
            let existing = metadata
                .keys()
                .find(|k| k.eq_ignore_ascii_case(&key))
                .cloned();
            metadata.insert(existing.unwrap_or(key), encoded);
        }
    }
    serde_json::to_vec(&request).unwrap()
}

/// A valid `ai.task.v1` body.
pub fn task_body(task_id: &str, kind: &str, input: Value, parameters: Value) -> String {
    let document_id = task_id.split(':').next().unwrap();
    json!({
        "schema": "ai.task.v1", "taskId": task_id, "documentId": document_id,
        "correlationId": format!("corr-{document_id}"), "kind": kind,
        "input": input, "parameters": parameters,
    })
    .to_string()
}

/// A provider that counts its calls and answers from a script, then from the offline provider.
#[derive(Default)]
pub struct ScriptedProvider {
    calls: AtomicUsize,
    script: Mutex<VecDeque<ProviderError>>,
}

impl ScriptedProvider {
    /// Fails the next calls with these errors, in order.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = ProviderError>) {
        self.script.lock().unwrap().extend(errors);
    }

    /// Calls so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl AiProvider for ScriptedProvider {
    fn name(&self) -> &str {
        "scripted"
    }

    async fn run(&self, request: &AiRequest) -> Result<AiOutput, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let next = self.script.lock().unwrap().pop_front();
        match next {
            Some(error) => Err(error),
            None => OfflineProvider.run(request).await,
        }
    }
}

/// The app in process: ProcessDocument over a temporary folder and a scripted provider.
pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub blobs: Arc<LocalFolderStore>,
    pub provider: Arc<ScriptedProvider>,
    pub registry: Arc<Registry>,
}

/// A reply as the host sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Value,
}

impl TestApp {
    pub fn new() -> Self {
        Self::with_options(ProcessOptions::default())
    }

    pub fn with_options(options: ProcessOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Arc::new(LocalFolderStore::new(dir.path()));
        let provider = Arc::new(ScriptedProvider::default());
        let function = ProcessDocument::new(blobs.clone(), provider.clone(), options);
        let registry = Arc::new(Registry::new().with(Arc::new(function)));
        Self {
            dir,
            blobs,
            provider,
            registry,
        }
    }

    /// POSTs a raw body to `/{function}` through the real router.
    pub async fn post(&self, function: &str, body: &[u8]) -> Reply {
        let response = warp::test::request()
            .method("POST")
            .path(&format!("/{function}"))
            .header(
                "X-Azure-Functions-InvocationId",
                "6f0c7d1e-0000-4000-8000-000000000001",
            )
            .header("Content-Type", "application/json; charset=utf-8")
            .body(body)
            .reply(&routes(self.registry.clone()))
            .await;
        to_reply(response)
    }

    /// Sends a request through any method and path.
    pub async fn request(&self, method: &str, path: &str) -> Reply {
        let response = warp::test::request()
            .method(method)
            .path(path)
            .reply(&routes(self.registry.clone()))
            .await;
        to_reply(response)
    }

    /// Whether a blob exists.
    pub async fn blob_exists(&self, container: &str, name: &str) -> bool {
        self.blobs
            .properties(container, name)
            .await
            .unwrap()
            .is_some()
    }

    /// A blob's JSON.
    pub async fn blob_json(&self, container: &str, name: &str) -> Value {
        serde_json::from_slice(&self.blobs.get(container, name).await.unwrap().data).unwrap()
    }

    /// Every file under the temporary folder (to prove that nothing was written).
    pub fn files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.dir.path().to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(path);
                }
            }
        }
        out
    }
}

fn to_reply(response: warp::http::Response<bytes::Bytes>) -> Reply {
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let body = serde_json::from_slice(response.body())
        .unwrap_or_else(|e| panic!("reply is not JSON ({e}): {:?}", response.body()));
    Reply {
        status: response.status().as_u16(),
        content_type,
        body,
    }
}

/// The outcome message bodies in a success reply's `outcome` binding.
pub fn outcome_messages(reply: &Reply) -> Vec<Value> {
    let bodies =
        docflow::protocol::host_rules::service_bus_bodies(&reply.body["Outputs"]["outcome"]);
    bodies
        .iter()
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect()
}

/// A short wait used where a test needs time to pass on the real clock.
pub const SHORT: Duration = Duration::from_millis(50);

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process killed when the test ends, whatever happens.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls a document's status URL until it is `completed` and returns it; panics with the last
/// answer after `within`.
pub async fn completed(http: &reqwest::Client, url: &str, within: Duration) -> Value {
    let deadline = std::time::Instant::now() + within;
    loop {
        let doc: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        if doc["status"] == "completed" {
            return doc;
        }
        assert!(std::time::Instant::now() < deadline, "not completed: {doc}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts `docflow dev` on the repository's app with its state in `data`, HTTP triggers on
/// `http_port` and the broker on `broker_port` (0: any), and waits until it serves HTTP.
pub fn start_dev(
    data: &std::path::Path,
    http_port: u16,
    broker_port: u16,
    stdout: std::process::Stdio,
) -> Running {
    start_dev_with_dashboard(data, http_port, broker_port, 0, stdout)
}

/// [`start_dev`] with the dashboard on `dashboard_port` (0: a free one).
pub fn start_dev_with_dashboard(
    data: &std::path::Path,
    http_port: u16,
    broker_port: u16,
    dashboard_port: u16,
    stdout: std::process::Stdio,
) -> Running {
    let ports = (http_port, broker_port, dashboard_port);
    start_dev_with_env(data, ports, &[], stdout)
}

/// [`start_dev_with_dashboard`] with extra environment variables; `ports` are the HTTP, broker
/// and dashboard ports.
pub fn start_dev_with_env(
    data: &std::path::Path,
    ports: (u16, u16, u16),
    env: &[(&str, String)],
    stdout: std::process::Stdio,
) -> Running {
    start_dev_with_args(data, ports, env, &[], stdout)
}

/// [`start_dev_with_env`] with extra arguments of `docflow dev` (`--instances 3`).
pub fn start_dev_with_args(
    data: &std::path::Path,
    (http_port, broker_port, dashboard_port): (u16, u16, u16),
    env: &[(&str, String)],
    args: &[&str],
    stdout: std::process::Stdio,
) -> Running {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_docflow"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(["dev", "--app-root", env!("CARGO_MANIFEST_DIR")])
        .args(args)
        .args(["--http-port", &http_port.to_string()])
        .args(["--broker-port", &broker_port.to_string()])
        .args(["--dashboard-port", &dashboard_port.to_string()])
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(stdout)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", http_port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "docflow dev did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    running
}

/// The processes whose parent is `pid`, from `/proc/*/stat`, and whether each still runs.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            children.push(head.split_whitespace().next().unwrap().parse().unwrap());
        }
    }
    children
}

/// Running (not gone, not a zombie waiting for a parent to reap it).
pub fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

/// A process's environment at its start, from `/proc/{pid}/environ` (empty if it is gone).
pub fn environ_of(pid: u32) -> std::collections::HashMap<String, String> {
    std::fs::read(format!("/proc/{pid}/environ"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (k, v) = entry.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// The Python of the virtual environment holding Microsoft's `azure-servicebus` SDK
/// (`DOCFLOW_SB_PYTHON` overrides it), installed by scripts/install-test-tools.sh.
pub fn servicebus_sdk_python() -> PathBuf {
    let python = std::env::var("DOCFLOW_SB_PYTHON").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/.tools/servicebus-sdk-venv/bin/python"
        )
        .to_string()
    });
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run bash scripts/install-test-tools.sh (it installs azure-servicebus)"
    );
    PathBuf::from(python)
}
