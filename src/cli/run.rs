//! `docflow run FILE|DIR…`: the main job in one command, as a client of the running app. Starts
//! the local host like `docflow dev`, submits every file through `POST /api/documents`, polls
//! `GET /api/documents/{id}` until each document is final, prints a table and optionally writes
//! every document's status JSON. Nothing here knows how the pipeline works inside.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::host::{DevOptions, LocalHost};

/// Options of `docflow run`.
#[derive(Debug, Clone)]
pub struct RunCommand {
    /// Files and folders to process.
    pub inputs: Vec<PathBuf>,
    /// Search folders recursively.
    pub recursive: bool,
    /// The app root.
    pub app_root: PathBuf,
    /// Keep state here instead of a temporary folder.
    pub data_dir: Option<PathBuf>,
    /// Write every document's status JSON here.
    pub out: Option<PathBuf>,
    /// Analyses to run.
    pub kinds: Vec<String>,
    /// Labels for `classify`.
    pub labels: Vec<String>,
    /// Summary length.
    pub max_words: u32,
    /// Give up after this long.
    pub timeout: Duration,
    /// Functions host instances (as Azure scales out), each its own handler process.
    pub instances: usize,
}

/// Exit code of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// `--kinds` default, as typed: every analysis.
pub const DEFAULT_KINDS_ARG: &str = "summarize,classify,extract_entities,sentiment,embed";
/// `--labels` default, as typed: the API's default labels.
pub const DEFAULT_LABELS_ARG: &str = "contract,invoice,support request,complaint,thank you note";

/// One submitted file.
struct Doc {
    path: PathBuf,
    /// The API's answer: the id, or why it refused the file.
    submitted: Result<String, String>,
    /// The last status JSON.
    status: Option<Value>,
}

impl Doc {
    fn state(&self) -> &str {
        match (&self.submitted, &self.status) {
            (Err(_), _) => "refused",
            (Ok(_), Some(s)) => s["status"].as_str().unwrap_or("unknown"),
            (Ok(_), None) => "queued",
        }
    }

    fn is_final(&self) -> bool {
        matches!(self.state(), "refused" | "completed" | "partial" | "failed")
    }
}

/// Runs the command; returns the exit code.
pub async fn run(command: RunCommand, shutdown: CancellationToken) -> u8 {
    if !command.app_root.join("host.json").is_file() {
        eprintln!(
            "docflow run: {} is not a Functions app root (no host.json there); run from the app root or pass --app-root",
            command.app_root.display()
        );
        return super::EXIT_CONFIG;
    }
    let files = match collect(&command.inputs, command.recursive) {
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
        amqp_port: None,
        handler_log: Some(log.clone()),
        env: vec![("RUST_LOG".into(), "warn".into())],
        instances: command.instances,
    };
    let host = match LocalHost::start(options, shutdown.clone()).await {
        Ok(h) => h,
        Err(e) => {
            eprintln!("docflow run: cannot start the local stack: {e}");
            return super::EXIT_CONFIG;
        }
    };
    eprintln!("docflow run: AI: {}", super::dev::ai_description(&host));
    if host.instance_count() > 1 {
        eprintln!(
            "docflow run: {} instances, each its own handler process, on the same queues and store",
            host.instance_count()
        );
    }
    if let Err(e) = preflight(&host).await {
        eprintln!("docflow run: {e}");
        host.shutdown().await;
        if let Some(dir) = temp {
            let _ = std::fs::remove_dir_all(dir);
        }
        return super::EXIT_CONFIG;
    }
    let prefix = host
        .context()
        .app
        .host
        .route_prefix
        .trim_matches('/')
        .to_string();
    let base = if prefix.is_empty() {
        format!("http://127.0.0.1:{}", host.http_port())
    } else {
        format!("http://127.0.0.1:{}/{prefix}", host.http_port())
    };
    let code = match process(&base, &command, &files, &shutdown).await {
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

/// One call to the provider before any document is sent, so that a wrong URL, key or model
/// stops the run with a clear message instead of failing every task.
async fn preflight(host: &LocalHost) -> Result<(), String> {
    let settings = super::dev::handler_settings(host)
        .map_err(|e| format!("the AI settings are invalid: {e}"))?;
    let provider = crate::app::ai_provider(&settings.ai).map_err(|e| e.to_string())?;
    provider.probe().await.map(|_| ()).map_err(|e| {
        format!(
            "the AI provider is not usable: {e}\n(provider: {}; fix the DOCFLOW_* settings in the environment or local.settings.json)",
            settings.ai.describe()
        )
    })
}

fn tempfile_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("docflow-run-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The files to submit: files as given, folders' files sorted (recursively unless told not to),
/// hidden ones skipped.
fn collect(inputs: &[PathBuf], recursive: bool) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            walk(input, recursive, &mut files)?;
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

fn walk(dir: &Path, recursive: bool, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            if recursive {
                walk(&entry, recursive, files)?;
            }
        } else if entry.is_file() {
            files.push(entry);
        }
    }
    Ok(())
}

/// The content type a file is submitted with, by extension (the API's own mapping); the API
/// judges the rest.
fn content_type(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str());
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("log" | "csv") => "text/plain".into(),
        _ => crate::pipeline::submission::guess_type(name)
            .unwrap_or_else(|| "application/octet-stream".into()),
    }
}

async fn process(
    base: &str,
    command: &RunCommand,
    files: &[PathBuf],
    shutdown: &CancellationToken,
) -> Result<u8, String> {
    let started = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let query = [
        ("analyses", command.kinds.join(",")),
        ("labels", command.labels.join(",")),
        ("maxWords", command.max_words.to_string()),
    ];
    let mut docs = Vec::new();
    for path in files {
        let submitted = submit(&http, base, &query, path).await;
        docs.push(Doc {
            path: path.clone(),
            submitted,
            status: None,
        });
    }
    let bar = progress(docs.len());
    let deadline = Instant::now() + command.timeout;
    'poll: loop {
        for doc in docs.iter_mut().filter(|d| !d.is_final()) {
            if let Ok(id) = &doc.submitted {
                let url = format!("{base}/documents/{id}");
                match http.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        doc.status = r.json::<Value>().await.ok();
                    }
                    // Ctrl-C stops the local host too: what fails then is the interruption.
                    _ if shutdown.is_cancelled() => break 'poll,
                    Ok(r) => return Err(format!("GET {url} answered {}", r.status())),
                    Err(e) => return Err(format!("GET {url} failed: {e}")),
                }
            }
        }
        let finished = docs.iter().filter(|d| d.is_final()).count();
        if let Some(bar) = &bar {
            bar.set_position(finished as u64);
        }
        if finished == docs.len() || Instant::now() >= deadline || shutdown.is_cancelled() {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
            () = shutdown.cancelled() => {}
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    print_table(&docs);
    if let Some(out) = &command.out {
        let report: Vec<Value> = docs
            .iter()
            .map(|d| match (&d.submitted, &d.status) {
                (Ok(_), Some(status)) => {
                    let mut status = status.clone();
                    status["file"] = json!(d.path.display().to_string());
                    status
                }
                (Ok(id), None) => json!({"id": id, "file": d.path.display().to_string(), "status": "unknown"}),
                (Err(reason), _) => json!({"file": d.path.display().to_string(), "status": "refused", "error": reason}),
            })
            .collect();
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(out, text).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    }
    print_summary(&docs, started.elapsed());
    if shutdown.is_cancelled() {
        eprintln!("docflow run: interrupted; documents still in progress are listed as such");
        return Ok(EXIT_INTERRUPTED);
    }
    let unfinished = docs.iter().filter(|d| !d.is_final()).count();
    if unfinished > 0 {
        eprintln!(
            "docflow run: {unfinished} documents did not finish within {:?}",
            command.timeout
        );
        return Ok(super::EXIT_FAILED);
    }
    Ok(if docs.iter().all(|d| d.state() == "completed") {
        0
    } else {
        super::EXIT_FAILED
    })
}

/// Submits one file; `Err` holds the API's reason for refusing it.
async fn submit(
    http: &reqwest::Client,
    base: &str,
    query: &[(&str, String)],
    path: &Path,
) -> Result<String, String> {
    let body = std::fs::read(path).map_err(|e| format!("cannot read the file: {e}"))?;
    let mut url = reqwest::Url::parse(&format!("{base}/documents")).map_err(|e| e.to_string())?;
    url.query_pairs_mut()
        .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
    let answer = http
        .post(url)
        .header("content-type", content_type(path))
        .body(body)
        .send()
        .await
        .map_err(|e| format!("the API did not answer: {e}"))?;
    let status = answer.status();
    let value: Value = answer.json().await.unwrap_or(Value::Null);
    if status.as_u16() == 202 {
        return value["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| "the API accepted the file without an id".to_string());
    }
    let error = &value["error"];
    Err(format!(
        "{} {}: {}",
        status.as_u16(),
        error["code"].as_str().unwrap_or("Error"),
        error["message"].as_str().unwrap_or("no reason given")
    ))
}

fn progress(total: usize) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} documents final {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    Some(bar)
}

fn print_table(docs: &[Doc]) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{:<36} {:<10} {:<22} {:<20} {:>8}  SUMMARY",
        "DOCUMENT", "STATUS", "LABEL", "SENTIMENT", "ENTITIES"
    );
    for doc in docs {
        let name = doc
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let empty = Value::Null;
        let tasks = doc.status.as_ref().map_or(&empty, |s| &s["tasks"]);
        let output = |kind: &str| &tasks[kind]["output"];
        let or_status = |kind: &str, text: Option<String>| {
            text.unwrap_or_else(|| tasks[kind]["status"].as_str().unwrap_or("-").to_string())
        };
        let classify = output("classify");
        let label = or_status(
            "classify",
            classify["label"].as_str().map(|l| {
                format!(
                    "{l} ({:.2})",
                    classify["scores"][0]["score"].as_f64().unwrap_or(0.0)
                )
            }),
        );
        let sentiment = output("sentiment");
        let sentiment = or_status(
            "sentiment",
            sentiment["label"]
                .as_str()
                .map(|l| format!("{l} ({:+.2})", sentiment["score"].as_f64().unwrap_or(0.0))),
        );
        let entities = or_status(
            "extract_entities",
            output("extract_entities")["entities"]
                .as_array()
                .map(|e| e.len().to_string()),
        );
        let summary = or_status(
            "summarize",
            output("summarize")["summary"]
                .as_str()
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" ")),
        );
        let _ = writeln!(
            out,
            "{:<36} {:<10} {:<22} {:<20} {:>8}  {}",
            clip(&name, 36),
            doc.state(),
            clip(&label, 22),
            clip(&sentiment, 20),
            entities,
            clip(&summary, 90)
        );
        match (&doc.submitted, &doc.status) {
            (Err(reason), _) => {
                let _ = writeln!(out, "    refused: {}", clip(reason, 200));
            }
            (Ok(_), Some(status)) => {
                for failed in status["failed"].as_array().into_iter().flatten() {
                    let _ = writeln!(
                        out,
                        "    {} failed: {}: {}",
                        failed["kind"].as_str().unwrap_or("?"),
                        failed["reason"].as_str().unwrap_or("?"),
                        clip(failed["description"].as_str().unwrap_or(""), 200)
                    );
                }
            }
            (Ok(_), None) => {}
        }
    }
}

/// `4 documents: 4 completed, 0 partial, 0 failed, 0 refused; tasks 20 succeeded, 0 failed; 5123 tokens; 3.1 s`.
fn print_summary(docs: &[Doc], elapsed: Duration) {
    let count = |state: &str| docs.iter().filter(|d| d.state() == state).count();
    let mut succeeded = 0;
    let mut failed = 0;
    let mut tokens = 0;
    for status in docs.iter().filter_map(|d| d.status.as_ref()) {
        for task in status["tasks"]
            .as_object()
            .into_iter()
            .flat_map(|t| t.values())
        {
            match task["status"].as_str() {
                Some("succeeded") => succeeded += 1,
                Some("failed") => failed += 1,
                _ => {}
            }
        }
        tokens += status["usage"]["totalTokens"].as_u64().unwrap_or(0);
    }
    let _ = writeln!(
        std::io::stdout(),
        "{} documents: {} completed, {} partial, {} failed, {} refused; tasks {succeeded} succeeded, {failed} failed; {tokens} tokens; {:.1} s",
        docs.len(),
        count("completed"),
        count("partial"),
        count("failed"),
        count("refused"),
        elapsed.as_secs_f64()
    );
}

/// Clips a cell to `width` characters on one line: control characters (line breaks) become
/// spaces, so the table never breaks.
fn clip(s: &str, width: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= width {
        flat
    } else {
        format!("{}…", flat.chars().take(width - 1).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::submission::{ALL_ANALYSES, DEFAULT_LABELS};

    #[test]
    fn defaults_match_the_api() {
        assert_eq!(DEFAULT_KINDS_ARG, ALL_ANALYSES.join(","));
        assert_eq!(DEFAULT_LABELS_ARG, DEFAULT_LABELS.join(","));
    }

    #[test]
    fn cells_stay_on_one_line() {
        assert_eq!(clip("a\nb", 10), "a b");
        assert_eq!(clip("abcdef", 4), "abc…");
    }
}
