//! `docflow run FILE|DIR…`: the main job in one command. Starts the local stack, submits every
//! file (claim-check upload plus one `ai.task.v1` message per kind), waits while the queue
//! drains, prints a table per document and writes the full results as JSON.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::ai::TaskOutput;
use crate::blob::BlobStore;
use crate::broker::ReceiveMode;
use crate::host::{DevOptions, LocalHost};
use crate::poison::{PoisonRecords, sha256_hex};
use crate::servicebus::message::Message;
use crate::task::{OutcomeStatus, TaskOutcome, TaskResult, result_blob_name};

/// Task kinds run on every document.
pub const DEFAULT_KINDS: [&str; 5] = [
    "summarize",
    "classify",
    "extract_entities",
    "sentiment",
    "embed",
];
/// Labels offered to `classify`.
pub const DEFAULT_LABELS: [&str; 5] = [
    "contract",
    "invoice",
    "support request",
    "complaint",
    "thank you note",
];

/// Options of `docflow run`.
#[derive(Debug, Clone)]
pub struct RunCommand {
    /// Files and folders to process.
    pub inputs: Vec<PathBuf>,
    /// The app root.
    pub app_root: PathBuf,
    /// Keep state here instead of a temporary folder.
    pub data_dir: Option<PathBuf>,
    /// Write the full results here.
    pub out: Option<PathBuf>,
    /// Kinds to run.
    pub kinds: Vec<String>,
    /// Labels for `classify`.
    pub labels: Vec<String>,
    /// Summary length.
    pub max_words: u32,
    /// Give up after this long.
    pub timeout: Duration,
}

/// State of one task.
#[derive(Debug, Clone, PartialEq)]
enum TaskState {
    Pending,
    Succeeded,
    DeadLettered { reason: String, description: String },
}

struct Doc {
    id: String,
    path: PathBuf,
    tasks: BTreeMap<String, TaskState>,
}

/// Runs the command; returns the exit code.
pub async fn run(command: RunCommand, shutdown: CancellationToken) -> u8 {
    let files = match collect(&command.inputs) {
        Ok(f) if f.is_empty() => {
            eprintln!("docflow run: no files found in {:?}", command.inputs);
            return super::EXIT_CONFIG;
        }
        Ok(f) => f,
        Err(e) => {
            eprintln!("docflow run: {e}");
            return super::EXIT_CONFIG;
        }
    };
    let temp = match &command.data_dir {
        Some(_) => None,
        None => match tempfile_dir() {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("docflow run: cannot create a temporary folder: {e}");
                return super::EXIT_CONFIG;
            }
        },
    };
    let data_dir = command
        .data_dir
        .clone()
        .or(temp.clone())
        .expect("one of them is set");
    let log = data_dir.join("handler.log");
    let options = DevOptions {
        app_root: command.app_root.clone(),
        data_dir: data_dir.clone(),
        http_port: 0,
        broker_port: 0,
        handler_log: Some(log.clone()),
        env: vec![("RUST_LOG".into(), "warn".into())],
    };
    let host = match LocalHost::start(options, shutdown.clone()).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("docflow run: cannot start the local stack: {e}");
            return super::EXIT_CONFIG;
        }
    };
    let code = match process(&host, &command, &files, &shutdown).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("docflow run: {e} (handler log: {})", log.display());
            super::EXIT_FAILED
        }
    };
    host.shutdown().await;
    if let Some(dir) = temp {
        let _ = std::fs::remove_dir_all(dir);
    }
    code
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("docflow-run-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn collect(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| format!("cannot read {}: {e}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && !p
                            .file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            entries.sort();
            files.extend(entries);
        } else if input.is_file() {
            files.push(input.clone());
        } else {
            return Err(format!(
                "{} is neither a file nor a folder",
                input.display()
            ));
        }
    }
    Ok(files)
}

/// A document id from the file name and content: readable and unique.
fn document_id(path: &Path, content: &[u8]) -> String {
    let stem: String = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let stem: String = stem.trim_matches('-').chars().take(60).collect();
    format!("{stem}-{}", &sha256_hex(content)[..8])
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("txt" | "text" | "log") => "text/plain",
        Some("md" | "markdown") => "text/markdown",
        Some("json") => "application/json",
        Some("csv") => "text/csv",
        Some("html" | "htm") => "text/html",
        Some("xml") => "application/xml",
        _ => "application/octet-stream",
    }
}

async fn process(
    host: &LocalHost,
    command: &RunCommand,
    files: &[PathBuf],
    shutdown: &CancellationToken,
) -> Result<u8, String> {
    let ctx = host.context();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut docs = Vec::new();
    for path in files {
        let content =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let id = document_id(path, &content);
        let blob = format!(
            "{id}/{}",
            path.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default()
        );
        let ct = content_type(path);
        ctx.blobs
            .put("documents", &blob, Bytes::from(content.clone()), ct)
            .await
            .map_err(|e| format!("cannot store {}: {e}", path.display()))?;
        let mut tasks = BTreeMap::new();
        for kind in &command.kinds {
            let task_id = format!("{id}:{kind}");
            let parameters = match kind.as_str() {
                "summarize" => json!({"maxWords": command.max_words}),
                "classify" => json!({"labels": command.labels}),
                _ => json!({}),
            };
            let body = json!({
                "schema": "ai.task.v1", "taskId": task_id, "documentId": id, "correlationId": format!("run-{id}"),
                "kind": kind,
                "input": {"contentRef": {"container": "documents", "blob": blob, "contentType": ct,
                          "sizeBytes": content.len(), "sha256": sha256_hex(&content)}},
                "parameters": parameters,
            });
            let message = Message::new(body.to_string())
                // Unique per run: a rerun on a kept --data-dir must not be dropped by duplicate
                // detection; ProcessDocument's own effectively-once (by task id) reuses results.
                .with_message_id(message_id(&task_id, &run))
                .with_correlation_id(format!("run-{id}"))
                .with_content_type("application/json");
            ctx.broker
                .send("ai-tasks", vec![message])
                .await
                .map_err(|e| format!("cannot send {task_id}: {e}"))?;
            tasks.insert(task_id, TaskState::Pending);
        }
        docs.push(Doc {
            id,
            path: path.clone(),
            tasks,
        });
    }
    let total: usize = docs.iter().map(|d| d.tasks.len()).sum();
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(total as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} processing [{bar:40}] {pos}/{len} tasks ({elapsed})",
    ) {
        bar.set_style(style);
    }
    let started = Instant::now();
    let poison = PoisonRecords::new(std::sync::Arc::new(ctx.blobs.clone()), "state");
    let mut last_dlq_check = Instant::now() - Duration::from_secs(10);
    loop {
        let done = docs
            .iter()
            .flat_map(|d| d.tasks.values())
            .filter(|s| **s != TaskState::Pending)
            .count();
        bar.set_position(done as u64);
        if done == total || shutdown.is_cancelled() || started.elapsed() > command.timeout {
            break;
        }
        match ctx
            .broker
            .receive(
                "task-results",
                false,
                ReceiveMode::ReceiveAndDelete,
                Duration::from_millis(500),
            )
            .await
        {
            Ok(Some(m)) => {
                if let Ok(outcome) = serde_json::from_slice::<TaskOutcome>(&m.message.body) {
                    let state = match outcome.error {
                        Some(error) if outcome.status == OutcomeStatus::Failed => {
                            TaskState::DeadLettered {
                                reason: error.reason,
                                description: error.description,
                            }
                        }
                        _ => TaskState::Succeeded,
                    };
                    mark(&mut docs, &outcome.task_id, state);
                }
            }
            Ok(None) => {}
            Err(e) => return Err(format!("reading task outcomes failed: {e}")),
        }
        if last_dlq_check.elapsed() >= Duration::from_millis(500) {
            last_dlq_check = Instant::now();
            for dead in ctx
                .broker
                .browse("ai-tasks", true, 0, 10_000)
                .await
                .map_err(|e| e.to_string())?
            {
                let Some(task_id) = crate::task::task_id_of(&dead.message.body) else {
                    continue;
                };
                let record = poison.find(&task_id).await.ok().flatten();
                let (reason, description) = match record {
                    Some(r) => (r.reason, r.description),
                    None => (
                        dead.dead_letter_reason()
                            .unwrap_or("DeadLettered")
                            .to_string(),
                        dead.dead_letter_description()
                            .unwrap_or_default()
                            .to_string(),
                    ),
                };
                mark(
                    &mut docs,
                    &task_id,
                    TaskState::DeadLettered {
                        reason,
                        description,
                    },
                );
            }
        }
    }
    bar.finish_and_clear();
    let report = report(&docs, ctx.blobs.clone()).await;
    print_table(&docs, &report);
    if let Some(out) = &command.out {
        let text = serde_json::to_string_pretty(&report).unwrap_or_default();
        std::fs::write(out, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        println!("full results written to {}", out.display());
    }
    let pending = docs
        .iter()
        .flat_map(|d| d.tasks.values())
        .filter(|s| **s == TaskState::Pending)
        .count();
    if pending > 0 {
        eprintln!(
            "docflow run: {pending} task(s) did not finish within {:?}",
            command.timeout
        );
        return Ok(super::EXIT_FAILED);
    }
    Ok(0)
}

/// `{taskId}#{run}`, or a hash of the task id when that would pass Service Bus's 128 characters.
fn message_id(task_id: &str, run: &str) -> String {
    let readable = format!("{task_id}#{run}");
    if readable.chars().count() <= 128 {
        readable
    } else {
        format!("{}#{run}", &sha256_hex(task_id.as_bytes())[..32])
    }
}

fn mark(docs: &mut [Doc], task_id: &str, state: TaskState) {
    for doc in docs.iter_mut() {
        if let Some(slot) = doc.tasks.get_mut(task_id)
            && *slot == TaskState::Pending
        {
            *slot = state.clone();
        }
    }
}

/// The full results, one object per document.
async fn report(docs: &[Doc], blobs: crate::blob::LocalFolderStore) -> Value {
    let mut out = Vec::new();
    for doc in docs {
        let mut tasks = serde_json::Map::new();
        for (task_id, state) in &doc.tasks {
            let kind = task_id.rsplit(':').next().unwrap_or_default().to_string();
            let value = match state {
                TaskState::Pending => json!({"status": "pending"}),
                TaskState::DeadLettered {
                    reason,
                    description,
                } => {
                    json!({"status": "dead-lettered", "reason": reason, "description": description})
                }
                TaskState::Succeeded => {
                    match blobs.get("results", &result_blob_name(task_id)).await {
                        Ok(blob) => match serde_json::from_slice::<TaskResult>(&blob.data) {
                            Ok(result) => {
                                json!({"status": "succeeded", "model": result.model, "usage": result.usage, "output": result.output})
                            }
                            Err(e) => {
                                json!({"status": "succeeded", "error": format!("unreadable result: {e}")})
                            }
                        },
                        Err(e) => {
                            json!({"status": "succeeded", "error": format!("result missing: {e}")})
                        }
                    }
                }
            };
            tasks.insert(kind, value);
        }
        out.push(
            json!({"documentId": doc.id, "file": doc.path.display().to_string(), "tasks": tasks}),
        );
    }
    Value::Array(out)
}

fn print_table(docs: &[Doc], report: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<36} {:<8} {:<22} {:<20} {:>8}  SUMMARY",
        "DOCUMENT", "STATUS", "LABEL", "SENTIMENT", "ENTITIES"
    );
    for (doc, item) in docs.iter().zip(report.as_array().into_iter().flatten()) {
        let tasks = &item["tasks"];
        let output =
            |kind: &str| serde_json::from_value::<TaskOutput>(tasks[kind]["output"].clone()).ok();
        let label = match output("classify") {
            Some(TaskOutput::Classify { label, scores }) => {
                format!("{label} ({:.2})", scores.first().map_or(0.0, |s| s.score))
            }
            _ => status_of(&tasks["classify"]),
        };
        let sentiment = match output("sentiment") {
            Some(TaskOutput::Sentiment { label, score }) => {
                format!("{label:?} ({score:+.2})").to_lowercase()
            }
            _ => status_of(&tasks["sentiment"]),
        };
        let entities = match output("extract_entities") {
            Some(TaskOutput::ExtractEntities { entities }) => entities.len().to_string(),
            _ => status_of(&tasks["extract_entities"]),
        };
        let summary = match output("summarize") {
            Some(TaskOutput::Summarize { summary }) => {
                summary.split_whitespace().collect::<Vec<_>>().join(" ")
            }
            _ => status_of(&tasks["summarize"]),
        };
        let failed = doc
            .tasks
            .values()
            .filter(|s| matches!(s, TaskState::DeadLettered { .. }))
            .count();
        let pending = doc
            .tasks
            .values()
            .filter(|s| **s == TaskState::Pending)
            .count();
        let status = if pending > 0 {
            "pending"
        } else if failed > 0 {
            "partial"
        } else {
            "done"
        };
        let _ = writeln!(
            out,
            "{:<36} {:<8} {:<22} {:<20} {:>8}  {}",
            clip(&doc.id, 36),
            status,
            clip(&label, 22),
            clip(&sentiment, 20),
            entities,
            clip(&summary, 90)
        );
        for (task_id, state) in &doc.tasks {
            if let TaskState::DeadLettered {
                reason,
                description,
            } = state
            {
                let _ = writeln!(out, "    dead-lettered {task_id}: {reason}: {description}");
            }
        }
    }
}

fn status_of(task: &Value) -> String {
    task["status"].as_str().unwrap_or("-").to_string()
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(width - 1).collect::<String>())
    }
}
