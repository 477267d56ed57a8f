//! `docflow bench budget`: a burst of documents of varied sizes through the whole local app
//! against `fake-llm` with a time-scaled TPM limit, once with docflow's adaptive budget and once
//! with the naive policy (fixed concurrency = TPM ÷ average tokens per call, `429` → immediate
//! retry). Prints, for each: the delivered token rate as a fraction of the limit over the busy
//! period, `429`s as a fraction of calls, end-to-end latency percentiles, documents completed
//! and lost, and provider calls beyond one per task.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::bench_stack::{Stack, at, document, fake_llm_env, quantile};
use crate::fake_llm::{FakeLlm, FakeLlmOptions};

/// Options of the budget benchmark.
#[derive(Debug, Clone, clap::Args)]
pub struct BudgetBench {
    /// Documents in the burst.
    #[arg(long, default_value_t = 500)]
    pub documents: usize,
    /// The endpoint's tokens per (scaled) minute.
    #[arg(long, default_value_t = 20_000)]
    pub tpm: u64,
    /// Time scale of the endpoint (10: a minute lasts 6 s).
    #[arg(long, default_value_t = 10.0)]
    pub time_scale: f64,
    /// The policies to run, in order.
    #[arg(long, value_delimiter = ',', default_value = "adaptive,naive")]
    pub policies: Vec<Policy>,
    /// The app root (host.json, function folders).
    #[arg(long, default_value = ".")]
    pub app_root: PathBuf,
}

/// A budget policy to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    /// docflow's budget control (the default).
    Adaptive,
    /// Fixed concurrency, a `429` retried at once (`DOCFLOW_AI_BUDGET=naive`).
    Naive,
}

const KINDS: &str = "summarize,classify,sentiment";

impl Policy {
    fn name(self) -> &'static str {
        match self {
            Self::Adaptive => "adaptive",
            Self::Naive => "naive",
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
struct Figures {
    busy: Duration,
    /// Tokens the endpoint charged against its limit (prompt + `max_tokens` at admission).
    charged_tpm_fraction: f64,
    /// Tokens the answers reported using (prompt + completion).
    used_tpm_fraction: f64,
    calls: u64,
    refused: u64,
    completed: usize,
    failed: usize,
    lost: usize,
    extra_calls: i64,
    latencies: Vec<Duration>,
    /// Seconds from the start of the run at which calls were refused.
    refused_at: Vec<f64>,
}

/// Runs both policies and prints their figures; returns the exit code.
pub async fn run(bench: BudgetBench) -> u8 {
    let names: Vec<&str> = bench.policies.iter().map(|p| p.name()).collect();
    println!(
        "docflow bench budget --documents {} --tpm {} --time-scale {} --policies {}",
        bench.documents,
        bench.tpm,
        bench.time_scale,
        names.join(",")
    );
    let mut results = Vec::new();
    for policy in names {
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
    if let [adaptive, naive] = results.as_slice()
        && bench.policies == [Policy::Adaptive, Policy::Naive]
    {
        println!(
            "adaptive ÷ naive: delivered rate {:.2}×, completed {:.2}×, busy period {:.2}×",
            adaptive.charged_tpm_fraction / naive.charged_tpm_fraction.max(1e-9),
            adaptive.completed as f64 / naive.completed.max(1) as f64,
            adaptive.busy.as_secs_f64() / naive.busy.as_secs_f64().max(1e-9)
        );
    }
    0
}

fn print(policy: &str, f: &Figures) {
    let mut sorted: Vec<f64> = f.latencies.iter().map(Duration::as_secs_f64).collect();
    sorted.sort_by(f64::total_cmp);
    let pct = |q: f64| quantile(&sorted, q);
    println!(
        "{policy:>8}: busy {:.1} s, delivered {:.1}% of the TPM limit (charged at admission; {:.1}% as reported usage), 429s {} of {} calls ({:.2}%), \
         latency p50 {:.1} s p95 {:.1} s p99 {:.1} s, completed {}, failed or partial {}, unfinished {}, calls beyond one per succeeded task {}",
        f.busy.as_secs_f64(),
        100.0 * f.charged_tpm_fraction,
        100.0 * f.used_tpm_fraction,
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
    if let (Some(first), Some(last)) = (f.refused_at.first(), f.refused_at.last()) {
        println!("{policy:>8}: 429s between {first:.1} s and {last:.1} s of the run");
    }
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
        azure_headers: false,
    };
    let llm = FakeLlm::start(listener, options, stop.clone());
    // The naive policy: as many calls at once as the limit holds of an average call (about
    // 400 tokens charged at admission), a 429 retried at once like any transient failure.
    let naive_concurrency = ((bench.tpm as f64 * bench.time_scale / 60.0) * 2.0 / 400.0)
        .round()
        .clamp(1.0, 64.0) as usize;
    let mut env = fake_llm_env(llm.port());
    env.push(("DOCFLOW_MAX_TRANSIENT_RETRIES".into(), "8".into()));
    if policy == "naive" {
        env.push(("DOCFLOW_AI_BUDGET".into(), "naive".into()));
        env.push((
            "DOCFLOW_AI_MAX_CONCURRENCY".into(),
            naive_concurrency.to_string(),
        ));
        env.push(("DOCFLOW_RETRY_BASE_MS".into(), "0".into()));
    }
    let stack = Stack::start(bench.app_root.clone(), "budget", env, stop).await?;
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..bench.documents {
        ids.push(stack.submit(document(i), KINDS).await?.id);
    }
    let finals = stack.wait_all(&ids, Duration::from_secs(1_800)).await?;
    let busy = started.elapsed();
    let stats = llm.stats();
    stack.shutdown().await;
    let latencies = finals
        .iter()
        .flatten()
        .filter_map(|doc| {
            (at(doc, "completedAt")? - at(doc, "submittedAt")?)
                .to_std()
                .ok()
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
        charged_tpm_fraction: stats.charged as f64 / (limit_per_second * busy.as_secs_f64()),
        used_tpm_fraction: stats.tokens as f64 / (limit_per_second * busy.as_secs_f64()),
        calls: stats.served + stats.rate_limited + stats.errors,
        refused: stats.rate_limited,
        completed,
        failed: finished - completed,
        lost: ids.len() - finished,
        extra_calls: stats.served as i64 - succeeded_tasks as i64,
        latencies,
        refused_at: stats
            .requests
            .iter()
            .filter(|r| r.status == 429)
            .map(|r| r.at_ms as f64 / 1000.0)
            .collect(),
    })
}
