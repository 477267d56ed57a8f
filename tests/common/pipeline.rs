//! The whole app under the local host, in process: a copy of the repository's app root whose
//! handler is the built docflow binary, the embedded broker, a temporary data folder, and a
//! scripted OpenAI-compatible endpoint that records every call.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use docflow::host::{DevOptions, LocalHost};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use warp::Filter;

/// One call the fake endpoint received.
#[derive(Debug, Clone)]
pub struct Call {
    /// `summarize`, `classify`, `extract_entities`, `sentiment` or `embed`.
    pub kind: String,
    /// The user text (the document, or a chunk with the running summary).
    pub text: String,
}

/// What the endpoint answers: status, headers, JSON body.
pub type Answer = (u16, Vec<(String, String)>, Value);

/// Decides an answer for a call; `None` means the normal successful answer.
pub type Script = Arc<dyn Fn(&Call) -> Option<Answer> + Send + Sync>;

/// A scripted OpenAI-compatible endpoint.
pub struct FakeLlm {
    /// Base URL ending in `/v1`.
    pub url: String,
    calls: Arc<Mutex<Vec<Call>>>,
    stop: CancellationToken,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn kind_of(system: &str) -> &'static str {
    if system.starts_with("Summarize") {
        "summarize"
    } else if system.starts_with("Classify") {
        "classify"
    } else if system.starts_with("Extract") {
        "extract_entities"
    } else {
        "sentiment"
    }
}

/// The normal successful answer of a call.
pub fn normal_answer(call: &Call) -> Answer {
    let content = match call.kind.as_str() {
        "summarize" => call
            .text
            .split_whitespace()
            .take(12)
            .collect::<Vec<_>>()
            .join(" "),
        "classify" => json!({"label": "invoice", "scores": {"invoice": 0.8}}).to_string(),
        "extract_entities" => json!({"entities": []}).to_string(),
        _ => json!({"label": "neutral", "score": 0.0}).to_string(),
    };
    if call.kind == "embed" {
        return (
            200,
            vec![],
            json!({"model": "fake-embed", "data": [{"embedding": [0.6, 0.8]}], "usage": {"prompt_tokens": 3, "total_tokens": 3}}),
        );
    }
    (
        200,
        vec![],
        json!({"model": "fake-chat", "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}}),
    )
}

impl FakeLlm {
    /// Starts the endpoint on a free loopback port; each call waits `latency` before answering.
    pub async fn start(script: Script, latency: Duration) -> Self {
        Self::start_on(0, script, latency).await
    }

    /// Stops answering: the port refuses connections until [`FakeLlm::start_on`] binds it again.
    pub async fn stop(&self) {
        self.stop.cancel();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url
            .trim_end_matches("/v1")
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Starts the endpoint on `port` (0: a free one).
    pub async fn start_on(port: u16, script: Script, latency: Duration) -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let recorded = calls.clone();
        let route = warp::post()
            .and(warp::path::full())
            .and(warp::body::json())
            .then(move |path: warp::path::FullPath, body: Value| {
                let recorded = recorded.clone();
                let script = script.clone();
                async move {
                    let call = if path.as_str().ends_with("/embeddings") {
                        Call {
                            kind: "embed".into(),
                            text: body["input"].as_str().unwrap_or_default().to_string(),
                        }
                    } else {
                        let system = body["messages"][0]["content"].as_str().unwrap_or_default();
                        Call {
                            kind: kind_of(system).into(),
                            text: body["messages"][1]["content"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        }
                    };
                    recorded.lock().unwrap().push(call.clone());
                    tokio::time::sleep(latency).await;
                    let (status, headers, body) =
                        script(&call).unwrap_or_else(|| normal_answer(&call));
                    let mut response = warp::reply::with_status(
                        warp::reply::json(&body),
                        warp::http::StatusCode::from_u16(status).unwrap(),
                    )
                    .into_response();
                    for (k, v) in headers {
                        response.headers_mut().insert(
                            warp::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                            warp::http::HeaderValue::from_str(&v).unwrap(),
                        );
                    }
                    response
                }
            });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = CancellationToken::new();
        let signal = stop.clone();
        tokio::spawn(
            warp::serve(route)
                .incoming(listener)
                .graceful(async move { signal.cancelled().await })
                .run(),
        );
        Self {
            url: format!("http://127.0.0.1:{port}/v1"),
            calls,
            stop,
        }
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    /// The calls whose text contains `marker`, of one kind.
    pub fn calls_for(&self, kind: &str, marker: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.kind == kind && c.text.contains(marker))
            .count()
    }
}

use warp::Reply as _;

/// Handler settings pointing the OpenAI-compatible provider at `llm`, plus `extra`.
pub fn provider_env(llm: &FakeLlm, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("DOCFLOW_AI_PROVIDER", "openai".to_string()),
        ("DOCFLOW_OPENAI_BASE_URL", llm.url.clone()),
        ("DOCFLOW_CHAT_MODEL", "fake-chat".into()),
        ("DOCFLOW_EMBEDDING_MODEL", "fake-embed".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

/// A received callback: its headers and body.
#[derive(Debug, Clone)]
pub struct Callback {
    /// `X-Docflow-Signature`.
    pub signature: Option<String>,
    /// The body bytes.
    pub body: Bytes,
}

/// A loopback server recording callbacks.
pub struct CallbackServer {
    /// `http://127.0.0.1:{port}/hook`.
    pub url: String,
    received: Arc<Mutex<Vec<Callback>>>,
    stop: CancellationToken,
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl CallbackServer {
    /// Starts it.
    pub async fn start() -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let store = received.clone();
        let route = warp::post()
            .and(warp::path("hook"))
            .and(warp::header::optional::<String>("x-docflow-signature"))
            .and(warp::body::bytes())
            .map(move |signature: Option<String>, body: Bytes| {
                store.lock().unwrap().push(Callback { signature, body });
                warp::reply()
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let signal = stop.clone();
        tokio::spawn(
            warp::serve(route)
                .incoming(listener)
                .graceful(async move { signal.cancelled().await })
                .run(),
        );
        Self {
            url: format!("http://127.0.0.1:{}/hook", addr.port()),
            received,
            stop,
        }
    }

    /// Everything received.
    pub fn received(&self) -> Vec<Callback> {
        self.received.lock().unwrap().clone()
    }
}

/// Sets values in an app root's `local.settings.json`.
pub fn set_local_settings(root: &Path, values: &[(&str, &str)]) {
    let file = root.join("local.settings.json");
    let mut settings: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    for (k, v) in values {
        settings["Values"][*k] = json!(v);
    }
    std::fs::write(file, settings.to_string()).unwrap();
}

/// The app under the local host.
pub struct PipelineApp {
    /// The host.
    pub host: LocalHost,
    /// The blob store the handler uses (the local folder, or Azure Blob when configured).
    pub store: Arc<dyn docflow::blob::BlobStore>,
    /// The handler's settings as far as storage goes (to open the store elsewhere).
    pub settings: docflow::config::Settings,
    /// `http://127.0.0.1:{port}/api`.
    pub api: String,
    /// The data folder (`blobs/`, `broker/`).
    pub data: tempfile::TempDir,
    _root: tempfile::TempDir,
    http: reqwest::Client,
}

/// Copies the repository's app root (host.json, function folders, topology, settings) into a
/// temporary folder whose host.json starts the built docflow binary.
pub fn app_root() -> tempfile::TempDir {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = tempfile::tempdir().unwrap();
    let mut host: Value =
        serde_json::from_slice(&std::fs::read(repo.join("host.json")).unwrap()).unwrap();
    host["customHandler"]["description"]["defaultExecutablePath"] =
        json!(env!("CARGO_BIN_EXE_docflow"));
    std::fs::write(root.path().join("host.json"), host.to_string()).unwrap();
    for file in ["servicebus.config.json", "local.settings.json"] {
        std::fs::copy(repo.join(file), root.path().join(file)).unwrap();
    }
    for entry in std::fs::read_dir(repo).unwrap() {
        let path = entry.unwrap().path();
        let function = path.join("function.json");
        if function.is_file() {
            let dir = root.path().join(path.file_name().unwrap());
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::copy(&function, dir.join("function.json")).unwrap();
        }
    }
    root
}

impl PipelineApp {
    /// Starts the app with extra handler settings.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        Self::start_in(tempfile::tempdir().unwrap(), env).await
    }

    /// Starts the app with owned settings, on `data` when given (a restart).
    pub async fn start_with(
        env: &[(&'static str, String)],
        data: Option<tempfile::TempDir>,
    ) -> Self {
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Self::start_in(data.unwrap_or_else(|| tempfile::tempdir().unwrap()), &pairs).await
    }

    /// Starts the app on an existing data folder (a restart).
    pub async fn start_in(data: tempfile::TempDir, env: &[(&str, &str)]) -> Self {
        let root = app_root();
        let options = DevOptions {
            app_root: root.path().to_path_buf(),
            data_dir: data.path().to_path_buf(),
            http_port: 0,
            broker_port: 0,
            amqp_port: None,
            handler_log: Some(data.path().join("handler.log")),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([("RUST_LOG".to_string(), "info".to_string())])
                .collect(),
            instances: 1,
        };
        let host = LocalHost::start(options, CancellationToken::new())
            .await
            .unwrap();
        let api = format!("http://127.0.0.1:{}/api", host.http_port());
        let blob_dir = data.path().join("blobs").display().to_string();
        let settings = docflow::config::Settings::from_lookup(|k| {
            if k == "DOCFLOW_BLOB_DIR" {
                return Some(blob_dir.clone());
            }
            env.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        })
        .unwrap();
        let store = docflow::app::blob_store(&settings).unwrap();
        Self {
            host,
            store,
            settings,
            api,
            data,
            _root: root,
            http: reqwest::Client::new(),
        }
    }

    /// POSTs a submission; returns the status, headers and JSON body.
    pub async fn submit(
        &self,
        query: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = self.http.post(format!("{}/documents{query}", self.api));
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let answer = request.body(body).send().await.unwrap();
        let status = answer.status().as_u16();
        let headers = answer.headers().clone();
        (status, headers, answer.json().await.unwrap_or(Value::Null))
    }

    /// GETs a document's status.
    pub async fn get(&self, id: &str, query: &str) -> (u16, Value) {
        let answer = self
            .http
            .get(format!("{}/documents/{id}{query}", self.api))
            .send()
            .await
            .unwrap();
        (answer.status().as_u16(), answer.json().await.unwrap())
    }

    /// Polls until the document's status is final.
    pub async fn wait_final(&self, id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, doc) = self.get(id, "").await;
            if matches!(
                doc["status"].as_str(),
                Some("completed" | "partial" | "failed")
            ) {
                return doc;
            }
            assert!(
                Instant::now() < deadline,
                "document {id} not final in time: {doc:#}\nhandler log: {}",
                self.handler_log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of the handler's log.
    pub fn handler_log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.data.path().join("handler.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The blob names in a container, sorted.
    pub async fn blob_names(&self, container: &str) -> Vec<String> {
        self.store
            .list(container, "")
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect()
    }

    /// Stops the host.
    pub async fn stop(self) -> tempfile::TempDir {
        self.host.shutdown().await;
        self.data
    }
}

/// A one-page PDF whose page shows `text` in Helvetica; `None` makes a page without text.
pub fn pdf(text: Option<&str>) -> Vec<u8> {
    let stream = match text {
        Some(t) => format!("BT /F1 12 Tf 72 720 Td ({t}) Tj ET"),
        None => "0 0 1 rg 72 72 200 200 re f".to_string(),
    };
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_string(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}
