//! `docflow bench api` and `docflow bench pipeline`: the whole local app driven through its
//! HTTP API.
//!
//! - **api**: `POST /api/documents` latency and throughput while the workers are saturated
//!   (a slow, rate-limited model behind them): submission must stay fast whatever the backlog.
//! - **pipeline**: documents per minute from submission to completion on the offline provider,
//!   with 1 and 4 concurrent invocations per function, and where each document's time goes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::bench_stack::{
    Stack, Submitted, at, document, exit_code, fake_llm_env, finished, quantile, seconds,
};
use crate::fake_llm::{FakeLlm, FakeLlmOptions};

/// Options of the api benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiBench {
    /// Documents in the burst (submitted by `clients` at once).
    #[arg(long, default_value_t = 1_000)]
    pub documents: usize,
    /// Concurrent submitters.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// The app root.
    #[arg(long, default_value = ".")]
    pub app_root: PathBuf,
}

/// Options of the pipeline benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct PipelineBench {
    /// Documents per run.
    #[arg(long, default_value_t = 300)]
    pub documents: usize,
    /// Concurrent invocations per function in each run (`maxConcurrentCalls`).
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    pub workers: Vec<usize>,
    /// The app root.
    #[arg(long, default_value = ".")]
    pub app_root: PathBuf,
}

const API_KINDS: &str = "summarize,classify,sentiment";
const PIPELINE_KINDS: &str = "summarize,classify,sentiment,extract_entities";

/// Runs the api scenario; returns the exit code.
pub async fn api(bench: ApiBench) -> u8 {
    println!(
        "docflow bench api --documents {} --clients {}",
        bench.documents, bench.clients
    );
    exit_code("api", measure_api(&bench).await)
}

/// Runs the pipeline scenario; returns the exit code.
pub async fn pipeline(bench: PipelineBench) -> u8 {
    let workers: Vec<String> = bench.workers.iter().map(usize::to_string).collect();
    println!(
        "docflow bench pipeline --documents {} --workers {}",
        bench.documents,
        workers.join(",")
    );
    let runs = async {
        for &n in &bench.workers {
            measure_pipeline(&bench, n).await?;
        }
        Ok(())
    };
    exit_code("pipeline", runs.await)
}

async fn measure_api(bench: &ApiBench) -> Result<(), String> {
    let stop = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    // A slow deployment with a small budget: the workers are busy for the whole run.
    let llm = FakeLlm::start(
        listener,
        FakeLlmOptions {
            tpm: 20_000,
            rpm: 200,
            base_latency: Duration::from_secs(2),
            per_token_latency: Duration::from_millis(40),
            time_scale: 10.0,
            error_rate: 0.0,
            azure_headers: false,
        },
        stop.clone(),
    );
    let env = fake_llm_env(llm.port());
    let stack = Arc::new(Stack::start(bench.app_root.clone(), "api", env, stop).await?);
    // Phase 1: the burst, `clients` submitters at once.
    let started = Instant::now();
    let submitted = burst(&stack, 0, bench.documents, bench.clients, API_KINDS).await?;
    let elapsed = started.elapsed();
    let mut latencies = millis(&submitted);
    print_latencies(
        &format!(
            "burst of {} documents, {} clients",
            bench.documents, bench.clients
        ),
        &mut latencies,
        Some(bench.documents as f64 / elapsed.as_secs_f64()),
    );
    // Phase 2: one client, one at a time, behind the backlog the burst left.
    let behind = 200;
    let backlog = unfinished(&stack, &submitted).await?;
    let submitted = burst(&stack, bench.documents, behind, 1, API_KINDS).await?;
    let mut latencies = millis(&submitted);
    print_latencies(
        &format!("one client behind a backlog of {backlog} unfinished documents"),
        &mut latencies,
        None,
    );
    let stats = llm.stats();
    println!(
        "meanwhile the model (20,000 TPM, time scale 10) answered {} calls and refused {}: the workers were busy with the backlog throughout",
        stats.served, stats.rate_limited
    );
    match Arc::try_unwrap(stack) {
        Ok(stack) => stack.shutdown().await,
        Err(_) => return Err("the stack is still in use".into()),
    }
    Ok(())
}

/// Submits documents `first..first + count` from `clients` concurrent submitters.
async fn burst(
    stack: &Arc<Stack>,
    first: usize,
    count: usize,
    clients: usize,
    kinds: &'static str,
) -> Result<Vec<Submitted>, String> {
    let clients = clients.clamp(1, count.max(1));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let stack = stack.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in (first + c..first + count).step_by(clients) {
                out.push(stack.submit(document(i), kinds).await?);
            }
            Ok::<_, String>(out)
        }));
    }
    let mut all = Vec::with_capacity(count);
    for t in tasks {
        all.extend(t.await.map_err(|e| e.to_string())??);
    }
    Ok(all)
}

/// How many of `submitted` are not finished yet (one status read each).
async fn unfinished(stack: &Stack, submitted: &[Submitted]) -> Result<usize, String> {
    let mut count = 0;
    for s in submitted {
        if !finished(&stack.status(&s.id).await?) {
            count += 1;
        }
    }
    Ok(count)
}

fn millis(submitted: &[Submitted]) -> Vec<f64> {
    submitted
        .iter()
        .map(|s| s.latency.as_secs_f64() * 1e3)
        .collect()
}

fn print_latencies(what: &str, latencies: &mut [f64], per_second: Option<f64>) {
    latencies.sort_by(f64::total_cmp);
    let rate = per_second.map_or(String::new(), |r| format!(", {r:.0} submissions/s"));
    println!(
        "POST /api/documents, {what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms{rate}",
        quantile(latencies, 0.5),
        quantile(latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
}

async fn measure_pipeline(bench: &PipelineBench, workers: usize) -> Result<(), String> {
    let n = workers.to_string();
    let env = vec![
        ("RUST_LOG".into(), "warn".into()),
        ("DOCFLOW_AI_PROVIDER".into(), "offline".into()),
        (
            "AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls".into(),
            n.clone(),
        ),
        (
            "AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentSessions".into(),
            n,
        ),
    ];
    let stack = Arc::new(
        Stack::start(
            bench.app_root.clone(),
            "pipeline",
            env,
            CancellationToken::new(),
        )
        .await?,
    );
    // Eight submitters: the pipeline, not the submission, is what is measured.
    let ids: Vec<String> = burst(&stack, 0, bench.documents, 8, PIPELINE_KINDS)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let finals = stack.wait_all(&ids, Duration::from_secs(1_800)).await?;
    let timings = stack.timings();
    match Arc::try_unwrap(stack) {
        Ok(stack) => stack.shutdown().await,
        Err(_) => return Err("the stack is still in use".into()),
    }
    let docs: Vec<&Value> = finals.iter().flatten().collect();
    let completed = docs.iter().filter(|d| d["status"] == "completed").count();
    let first = docs.iter().filter_map(|d| at(d, "submittedAt")).min();
    let last = docs.iter().filter_map(|d| at(d, "completedAt")).max();
    let (Some(first), Some(last)) = (first, last) else {
        return Err("no document finished".into());
    };
    let span = seconds(first, last);
    println!(
        "{workers} worker(s): {completed} of {} documents completed ({} unfinished) in {span:.1} s = {:.0} documents/min, {} tasks each",
        bench.documents,
        bench.documents - docs.len(),
        60.0 * completed as f64 / span.max(1e-9),
        PIPELINE_KINDS.split(',').count()
    );
    let stages = Stages::of(&docs);
    for (name, mut values) in [
        (
            "submitted → tasks queued (documents queue, AnalyzeDocument)",
            stages.fan_out,
        ),
        (
            "task queued → result recorded by the fan-in, less the provider",
            stages.task_overhead,
        ),
        ("provider call (offline)", stages.provider),
        ("submitted → completed", stages.total),
    ] {
        values.sort_by(f64::total_cmp);
        println!(
            "  {name}: mean {:.1} ms, p50 {:.1} ms, p99 {:.1} ms",
            values.iter().sum::<f64>() / values.len().max(1) as f64,
            quantile(&values, 0.5),
            quantile(&values, 0.99)
        );
    }
    println!(
        "  per function (local host): mean queue wait, handler call (storage and provider included), settle"
    );
    for (function, t) in &timings {
        println!(
            "    {function}: {} messages, queue wait {:.1} ms, handler {:.2} ms, settle {:.2} ms",
            t.invocations,
            ms(t.mean(t.queue_wait)),
            ms(t.mean(t.handler)),
            ms(t.mean(t.settle))
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Where each document's time went, in milliseconds, from the status API's timestamps.
#[derive(Default)]
struct Stages {
    fan_out: Vec<f64>,
    task_overhead: Vec<f64>,
    provider: Vec<f64>,
    total: Vec<f64>,
}

impl Stages {
    fn of(docs: &[&Value]) -> Self {
        let mut s = Self::default();
        for doc in docs {
            let (Some(submitted), Some(completed)) =
                (at(doc, "submittedAt"), at(doc, "completedAt"))
            else {
                continue;
            };
            let tasks: Vec<&Value> = doc["tasks"]
                .as_object()
                .map(|t| t.values().collect())
                .unwrap_or_default();
            if let Some(queued) = tasks.iter().filter_map(|t| at(t, "queuedAt")).min() {
                s.fan_out.push(1e3 * seconds(submitted, queued));
            }
            for t in &tasks {
                let provider = t["durationMs"].as_f64().unwrap_or(0.0);
                if let (Some(q), Some(f)) = (at(t, "queuedAt"), at(t, "finishedAt")) {
                    s.task_overhead.push(1e3 * seconds(q, f) - provider);
                    s.provider.push(provider);
                }
            }
            s.total.push(1e3 * seconds(submitted, completed));
        }
        s
    }
}
