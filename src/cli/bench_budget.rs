//! `docflow bench budget`: a burst of documents of varied sizes through the whole local app
//! against `fake-llm` with a time-scaled TPM limit, once with docflow's adaptive budget and once
//! with the naive policy (fixed concurrency = TPM ÷ average tokens per call, `429` → immediate
//! retry). Prints, for each: the delivered token rate as a fraction of the limit over the busy
//! period, `429`s as a fraction of calls, end-to-end latency percentiles, documents completed
//! and lost, and provider calls beyond one per task.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::fake_llm::{FakeLlm, FakeLlmOptions};
use crate::host::{DevOptions, LocalHost};

/// Options of the budget benchmark.
#[derive(Debug, Clone)]
pub struct BudgetBench {
    /// Documents in the burst.
    pub documents: usize,
    /// The endpoint's tokens per (scaled) minute.
    pub tpm: u64,
    /// Time scale of the endpoint (10: a minute lasts 6 s).
    pub time_scale: f64,
    /// The app root (host.json, function folders).
    pub app_root: PathBuf,
}

const KINDS: &str = "summarize,classify,sentiment";

/// What one run measured.
#[derive(Debug, Clone)]
struct Figures {
    busy: Duration,
    delivered_tpm_fraction: f64,
    calls: u64,
    refused: u64,
    completed: usize,
    failed: usize,
    lost: usize,
    extra_calls: i64,
    latencies: Vec<Duration>,
}

/// Runs both policies and prints their figures; returns the exit code.
pub async fn run(bench: BudgetBench) -> u8 {
    println!(
        "docflow bench budget --documents {} --tpm {} --time-scale {}",
        bench.documents, bench.tpm, bench.time_scale
    );
    let mut results = Vec::new();
    for policy in ["adaptive", "naive"] {
        match measure(&bench, policy).await {
            Ok(figures) => {
                print(policy, &figures);
                results.push(figures);
            }
            Err(e) => {
                eprintln!("docflow bench budget ({policy}): {e}");
                return super::EXIT_FAILED;
            }
        }
    }
    if let [adaptive, naive] = results.as_slice() {
        println!(
            "adaptive ÷ naive: delivered rate {:.2}×, busy period {:.2}×",
            adaptive.delivered_tpm_fraction / naive.delivered_tpm_fraction.max(1e-9),
            adaptive.busy.as_secs_f64() / naive.busy.as_secs_f64().max(1e-9)
        );
    }
    0
}

fn print(policy: &str, f: &Figures) {
    let mut sorted = f.latencies.clone();
    sorted.sort();
    let pct = |p: f64| -> f64 {
        if sorted.is_empty() {
            return 0.0;
        }
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i].as_secs_f64()
    };
    println!(
        "{policy:>8}: busy {:.1} s, delivered {:.1}% of the TPM limit, 429s {} of {} calls ({:.2}%), \
         latency p50 {:.1} s p95 {:.1} s p99 {:.1} s, completed {}, failed or partial {}, unfinished {}, calls beyond one per succeeded task {}",
        f.busy.as_secs_f64(),
        100.0 * f.delivered_tpm_fraction,
        f.refused,
        f.calls,
        100.0 * f.refused as f64 / f.calls.max(1) as f64,
        pct(0.5),
        pct(0.95),
        pct(0.99),
        f.completed,
        f.failed,
        f.lost,
        f.extra_calls
    );
}

/// A document of `n` sentences (sizes vary from a line to a few pages).
fn document(i: usize) -> String {
    let sentences = 1 + (i * 7919) % 40;
    (0..sentences)
        .map(|s| format!("Sentence {s} of document {i}: the shipment was late and the invoice total was wrong. "))
        .collect()
}

async fn measure(bench: &BudgetBench, policy: &str) -> Result<Figures, String> {
    let stop = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let options = FakeLlmOptions {
        tpm: bench.tpm,
        rpm: bench.tpm,
        base_latency: Duration::from_secs(2),
        per_token_latency: Duration::from_millis(40),
        time_scale: bench.time_scale,
        error_rate: 0.0,
    };
    let llm = FakeLlm::start(listener, options, stop.clone());
    // The naive policy: as many calls at once as the limit holds of an average call (about
    // 400 tokens charged at admission), a 429 retried at once like any transient failure.
    let naive_concurrency = ((bench.tpm as f64 * bench.time_scale / 60.0) * 2.0 / 400.0)
        .round()
        .clamp(1.0, 64.0) as usize;
    let data_dir = std::env::temp_dir().join(format!(
        "docflow-bench-budget-{}-{policy}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut env: Vec<(String, String)> = vec![
        ("RUST_LOG".into(), "warn".into()),
        ("DOCFLOW_AI_PROVIDER".into(), "openai".into()),
        (
            "DOCFLOW_OPENAI_BASE_URL".into(),
            format!("http://127.0.0.1:{}/v1", llm.port()),
        ),
        ("DOCFLOW_CHAT_MODEL".into(), "fake-chat".into()),
        ("DOCFLOW_MAX_TRANSIENT_RETRIES".into(), "8".into()),
    ];
    if policy == "naive" {
        env.push(("DOCFLOW_AI_BUDGET".into(), "naive".into()));
        env.push((
            "DOCFLOW_AI_MAX_CONCURRENCY".into(),
            naive_concurrency.to_string(),
        ));
        env.push(("DOCFLOW_RETRY_BASE_MS".into(), "0".into()));
    }
    let host = LocalHost::start(
        DevOptions {
            app_root: bench.app_root.clone(),
            data_dir: data_dir.clone(),
            http_port: 0,
            broker_port: 0,
            handler_log: Some(data_dir.join("handler.log")),
            env,
        },
        stop.clone(),
    )
    .await
    .map_err(|e| format!("cannot start the local stack: {e}"))?;
    let base = format!("http://127.0.0.1:{}/api/documents", host.http_port());
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..bench.documents {
        let answer = http
            .post(format!("{base}?analyses={KINDS}"))
            .header("content-type", "text/plain")
            .body(document(i))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if answer.status().as_u16() != 202 {
            return Err(format!("submission {i} answered {}", answer.status()));
        }
        let body: Value = answer.json().await.map_err(|e| e.to_string())?;
        ids.push(body["id"].as_str().unwrap_or_default().to_string());
    }
    let deadline = Instant::now() + Duration::from_secs(1_800);
    let mut finals: Vec<Option<Value>> = vec![None; ids.len()];
    while finals.iter().any(Option::is_none) && Instant::now() < deadline {
        for (id, slot) in ids.iter().zip(finals.iter_mut()) {
            if slot.is_some() {
                continue;
            }
            let doc: Value = http
                .get(format!("{base}/{id}"))
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json()
                .await
                .map_err(|e| e.to_string())?;
            if matches!(
                doc["status"].as_str(),
                Some("completed" | "partial" | "failed")
            ) {
                *slot = Some(doc);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let busy = started.elapsed();
    let stats = llm.stats();
    host.shutdown().await;
    stop.cancel();
    let _ = std::fs::remove_dir_all(&data_dir);
    let latencies = finals
        .iter()
        .flatten()
        .filter_map(|doc| {
            let at = |k: &str| {
                doc[k]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            };
            (at("completedAt")? - at("submittedAt")?).to_std().ok()
        })
        .collect();
    let completed = finals
        .iter()
        .flatten()
        .filter(|d| d["status"] == "completed")
        .count();
    let finished = finals.iter().flatten().count();
    let succeeded_tasks: u64 = finals
        .iter()
        .flatten()
        .map(|d| {
            d["tasks"].as_object().map_or(0, |t| {
                t.values().filter(|t| t["status"] == "succeeded").count() as u64
            })
        })
        .sum();
    let limit_per_second = bench.tpm as f64 * bench.time_scale / 60.0;
    Ok(Figures {
        busy,
        delivered_tpm_fraction: stats.tokens as f64 / (limit_per_second * busy.as_secs_f64()),
        calls: stats.served + stats.rate_limited + stats.errors,
        refused: stats.rate_limited,
        completed,
        failed: finished - completed,
        lost: ids.len() - finished,
        extra_calls: stats.served as i64 - succeeded_tasks as i64,
        latencies,
    })
}
