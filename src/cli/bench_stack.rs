//! The whole local app under a benchmark: the local host (broker, blob folder, handler) in a
//! fresh data folder, driven through its public HTTP API as a client would.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::host::{DevOptions, LocalHost};

/// A running app and a client of its API.
pub struct Stack {
    host: LocalHost,
    stop: CancellationToken,
    data_dir: PathBuf,
    base: String,
    http: reqwest::Client,
}

/// A submission: the document's id and how long the `202` took.
pub struct Submitted {
    /// The document's id.
    pub id: String,
    /// From sending the request to reading the whole `202`.
    pub latency: Duration,
}

impl Stack {
    /// Starts the app at `app_root` with `env` on top of the environment, its state in a
    /// fresh folder named after `name`; `stop` also stops what the caller started beside it.
    pub async fn start(
        app_root: PathBuf,
        name: &str,
        env: Vec<(String, String)>,
        stop: CancellationToken,
    ) -> Result<Self, String> {
        Self::start_instances(app_root, name, env, stop, 1).await
    }

    /// [`Stack::start`] with `instances` Functions host instances, each its own handler
    /// process, on the one broker and blob folder.
    pub async fn start_instances(
        app_root: PathBuf,
        name: &str,
        env: Vec<(String, String)>,
        stop: CancellationToken,
        instances: usize,
    ) -> Result<Self, String> {
        let data_dir = std::env::temp_dir().join(format!(
            "docflow-bench-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let host = LocalHost::start(
            DevOptions {
                app_root,
                data_dir: data_dir.clone(),
                http_port: 0,
                broker_port: 0,
                amqp_port: None,
                handler_log: Some(data_dir.join("handler.log")),
                env,
                instances,
            },
            stop.clone(),
        )
        .await
        .map_err(|e| format!("cannot start the local stack: {e}"))?;
        let base = format!("http://127.0.0.1:{}/api/documents", host.http_port());
        Ok(Self {
            host,
            stop,
            data_dir,
            base,
            http: reqwest::Client::new(),
        })
    }

    /// Submits `text` for `analyses` (comma-separated kinds); anything but a `202` is an error.
    pub async fn submit(&self, text: String, analyses: &str) -> Result<Submitted, String> {
        let started = Instant::now();
        let answer = self
            .http
            .post(format!("{}?analyses={analyses}", self.base))
            .header("content-type", "text/plain")
            .body(text)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = answer.status();
        let body: Value = answer.json().await.map_err(|e| e.to_string())?;
        let latency = started.elapsed();
        if status.as_u16() != 202 {
            return Err(format!("a submission answered {status}: {body}"));
        }
        Ok(Submitted {
            id: body["id"].as_str().unwrap_or_default().to_string(),
            latency,
        })
    }

    /// Polls every document until it is completed, partial or failed, or until `deadline`;
    /// `None` for a document that did not finish.
    pub async fn wait_all(
        &self,
        ids: &[String],
        deadline: Duration,
    ) -> Result<Vec<Option<Value>>, String> {
        let deadline = Instant::now() + deadline;
        let mut finals: Vec<Option<Value>> = vec![None; ids.len()];
        while finals.iter().any(Option::is_none) && Instant::now() < deadline {
            for (id, slot) in ids.iter().zip(finals.iter_mut()) {
                if slot.is_some() {
                    continue;
                }
                let doc = self.status(id).await?;
                if finished(&doc) {
                    *slot = Some(doc);
                } else {
                    // The first unfinished one: the rest are likely behind it.
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(finals)
    }

    /// A document's status (`GET /api/documents/{id}`).
    pub async fn status(&self, id: &str) -> Result<Value, String> {
        self.http
            .get(format!("{}/{id}", self.base))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())
    }

    /// Where the local host's invocations spent their time so far, per function.
    pub fn timings(
        &self,
    ) -> std::collections::BTreeMap<String, crate::host::timings::FunctionTimings> {
        self.host.timings()
    }

    /// Every instance's handler `GET /metrics` (Prometheus text), the first instance's first.
    pub async fn handler_metrics(&self) -> Result<Vec<String>, String> {
        let mut all = Vec::new();
        for (_, port) in self.host.handler_instances() {
            let url = format!("http://127.0.0.1:{port}/metrics");
            let answer = self.http.get(&url).send().await;
            let text = match answer {
                Ok(r) if r.status().is_success() => r.text().await,
                Ok(r) => return Err(format!("GET {url} answered {}", r.status())),
                Err(e) => Err(e),
            };
            all.push(text.map_err(|e| format!("GET {url}: {e}"))?);
        }
        Ok(all)
    }

    /// Stops the app and removes its data.
    pub async fn shutdown(self) {
        self.host.shutdown().await;
        self.stop.cancel();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// The exit code of scenario `name`: 0, or the error printed and [`super::EXIT_FAILED`].
pub fn exit_code(name: &str, result: Result<(), String>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("docflow bench {name}: {e}");
            super::EXIT_FAILED
        }
    }
}

/// The settings of an app whose provider is the OpenAI-compatible endpoint on `port` (a
/// `fake-llm`), with an OpenAI model's name: both sides count tokens with its tokenizer.
pub fn fake_llm_env(port: u16) -> Vec<(String, String)> {
    vec![
        ("RUST_LOG".into(), "warn".into()),
        ("DOCFLOW_AI_PROVIDER".into(), "openai".into()),
        (
            "DOCFLOW_OPENAI_BASE_URL".into(),
            format!("http://127.0.0.1:{port}/v1"),
        ),
        ("DOCFLOW_CHAT_MODEL".into(), "gpt-4o-mini".into()),
    ]
}

/// Whether a status says the document reached its terminal state.
pub fn finished(doc: &Value) -> bool {
    matches!(
        doc["status"].as_str(),
        Some("completed" | "partial" | "failed")
    )
}

/// Document `i` of a burst: 1 to 40 sentences (a line to a few pages).
pub fn document(i: usize) -> String {
    let sentences = 1 + (i * 7919) % 40;
    (0..sentences)
        .map(|s| format!("Sentence {s} of document {i}: the shipment was late and the invoice total was wrong. "))
        .collect()
}

/// The `q` quantile of sorted figures (0 when there are none).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// A timestamp field of a status document.
pub fn at(doc: &Value, field: &str) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    doc[field]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
}

/// Seconds from `from` to `to`.
pub fn seconds(
    from: chrono::DateTime<chrono::FixedOffset>,
    to: chrono::DateTime<chrono::FixedOffset>,
) -> f64 {
    (to - from).num_microseconds().unwrap_or(0) as f64 / 1e6
}
