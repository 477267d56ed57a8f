//! `docflow bench handler`: a real `docflow serve` process called over loopback HTTP as the
//! Functions host calls it (the host's request shape, taken from its fixture), at concurrency
//! 1 and 16. Prints invocations per second, p50/p99 latency, the process's resident memory,
//! and the start-up time from exec to the first successful `GET /`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::bench_stack::{exit_code, quantile};
use crate::host::free_port;

/// Options of the handler benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct HandlerBench {
    /// Invocations timed per scenario and concurrency.
    #[arg(long, default_value_t = 2_000)]
    pub invocations: usize,
}

/// The host's request for a Service Bus trigger (from the host's own payloads).
const HOST_REQUEST: &str =
    include_str!("../../tests/fixtures/custom-handler/servicebus-single.request.json");

/// Runs the benchmark and prints its figures; returns the exit code.
pub async fn run(bench: HandlerBench) -> u8 {
    exit_code("handler", measure(&bench).await)
}

/// The handler process; killed when dropped.
struct Handler {
    child: Child,
    port: u16,
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Handler {
    /// Starts `docflow serve` and waits for its first `200` to `GET /`; returns it and the
    /// time from exec to that answer.
    async fn start(
        blob_dir: &std::path::Path,
        http: &reqwest::Client,
    ) -> Result<(Self, Duration), String> {
        let port = free_port()?;
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let started = Instant::now();
        let child = Command::new(exe)
            .arg("serve")
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("DOCFLOW_BLOB_DIR", blob_dir)
            .env("DOCFLOW_AI_PROVIDER", "offline")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start docflow serve: {e}"))?;
        let mut handler = Self { child, port };
        let url = format!("http://127.0.0.1:{port}/");
        loop {
            if let Ok(answer) = http.get(&url).send().await
                && answer.status().is_success()
            {
                return Ok((handler, started.elapsed()));
            }
            if let Ok(Some(status)) = handler.child.try_wait() {
                return Err(format!("docflow serve exited with {status}"));
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err("docflow serve did not answer GET / within 30 s".into());
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
    }

    /// Resident memory now and at its peak, in MiB (Linux `/proc`).
    fn memory(&self) -> Option<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let kib = |key: &str| -> Option<f64> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        };
        Some((kib("VmRSS:")? / 1024.0, kib("VmHWM:")? / 1024.0))
    }
}

/// The host's request delivering `task` as message `i`, in the fixture's shape.
fn host_request(task: &Value, i: usize) -> Result<Vec<u8>, String> {
    let mut request: Value = serde_json::from_str(HOST_REQUEST).map_err(|e| e.to_string())?;
    let body = task.to_string();
    // The host double-encodes a string message, in `Data` and its metadata twin alike.
    let encoded = serde_json::to_string(&body).map_err(|e| e.to_string())?;
    request["Data"]["message"] = json!(encoded);
    let metadata = &mut request["Metadata"];
    if let Some(map) = metadata.as_object_mut() {
        for key in ["documentId", "blobPath", "task", "tenantId"] {
            map.remove(key);
        }
    }
    metadata["MessageId"] = json!(format!("\"bench-{i}\""));
    metadata["DeliveryCount"] = json!("2");
    metadata["sys"]["MethodName"] = json!("ProcessDocument");
    serde_json::to_vec(&request).map_err(|e| e.to_string())
}

fn task(task_id: &str, kind: &str) -> Value {
    json!({"schema": "ai.task.v1", "taskId": task_id, "documentId": "bench", "kind": kind,
        "input": {"text": "Either party may terminate this Agreement for material breach on thirty days written notice. \
                           Globex GmbH will pay $1,200.00 per month from March 3, 2025."},
        "parameters": {"labels": ["termination", "payment"]}})
}

type Maker = Arc<dyn Fn(usize) -> Result<Vec<u8>, String> + Send + Sync>;

async fn measure(bench: &HandlerBench) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!(
        "docflow-bench-handler-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let http = reqwest::Client::new();
    let mut startups = Vec::new();
    for _ in 0..5 {
        let (handler, took) = Handler::start(&dir.join("blobs"), &http).await?;
        drop(handler);
        startups.push(took.as_secs_f64() * 1e3);
    }
    startups.sort_by(f64::total_cmp);
    println!("docflow bench handler --invocations {}", bench.invocations);
    println!(
        "docflow serve (offline provider) over loopback HTTP, the host's request shape, {} invocations per run",
        bench.invocations
    );
    println!(
        "start-up, exec to the first 200 on GET /: median {:.1} ms, min {:.1} ms, max {:.1} ms (5 starts)",
        quantile(&startups, 0.5),
        startups[0],
        startups[startups.len() - 1]
    );
    let (handler, _) = Handler::start(&dir.join("blobs"), &http).await?;
    let url = format!("http://127.0.0.1:{}/ProcessDocument", handler.port);
    if let Some((rss, _)) = handler.memory() {
        println!("resident memory after start-up: {rss:.1} MiB");
    }
    let scenarios: [(&str, Maker); 3] = [
        (
            "redelivery, result already stored",
            Arc::new(|i| host_request(&task("bench:summarize", "summarize"), i)),
        ),
        (
            "known poison message, fail fast",
            Arc::new(|i| host_request(&task("bench:translate", "translate"), i)),
        ),
        (
            "fresh offline classify task",
            Arc::new(|i| host_request(&task(&format!("bench-{i}:classify"), "classify"), i)),
        ),
    ];
    let mut offset = 0;
    for (name, make) in &scenarios {
        // Warm up: stores the result or the poison record the scenario relies on.
        let _ = http
            .post(&url)
            .body(make(usize::MAX)?)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        for concurrency in [1usize, 16] {
            let (elapsed, mut timings) =
                drive(&http, &url, make, offset, bench.invocations, concurrency).await?;
            offset += bench.invocations;
            timings.sort_by(f64::total_cmp);
            println!(
                "{name}, concurrency {concurrency}: {:.0} invocations/s, p50 {:.0} µs, p99 {:.0} µs",
                bench.invocations as f64 / elapsed.as_secs_f64(),
                quantile(&timings, 0.5),
                quantile(&timings, 0.99)
            );
        }
    }
    if let Some((rss, peak)) = handler.memory() {
        println!("resident memory after the runs: {rss:.1} MiB (peak {peak:.1} MiB)");
    }
    drop(handler);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `count` invocations from `concurrency` callers; the wall time and each latency in µs.
async fn drive(
    http: &reqwest::Client,
    url: &str,
    make: &Maker,
    offset: usize,
    count: usize,
    concurrency: usize,
) -> Result<(Duration, Vec<f64>), String> {
    let started = Instant::now();
    let mut callers = Vec::new();
    for c in 0..concurrency {
        let (http, url, make) = (http.clone(), url.to_string(), make.clone());
        callers.push(tokio::spawn(async move {
            let mut timings = Vec::new();
            for i in (c..count).step_by(concurrency) {
                let body = make(offset + i)?;
                let t = Instant::now();
                let answer = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                // A failure is an answer too (the poison scenario's is a 4xx).
                answer.bytes().await.map_err(|e| e.to_string())?;
                timings.push(t.elapsed().as_secs_f64() * 1e6);
            }
            Ok::<_, String>(timings)
        }));
    }
    let mut all = Vec::with_capacity(count);
    for c in callers {
        all.extend(c.await.map_err(|e| e.to_string())??);
    }
    Ok((started.elapsed(), all))
}
