//! `docflow bench budget`: a burst of documents of varied sizes through the whole local app
//! against `fake-llm` with a time-scaled TPM limit, once with docflow's adaptive budget and once
//! with the naive policy (fixed concurrency = TPM ÷ average tokens per call, `429` → immediate
//! retry). Prints, for each: the delivered token rate as a fraction of the limit over the busy
//! period, `429`s as a fraction of calls, end-to-end latency percentiles, documents completed
//! and lost, provider calls beyond one per task, and the budget store's operations per
//! provider call. With `--instances N` the app runs as N Functions host instances (N handler
//! processes on the same queues and store), and the per-process budget is measured beside the
//! fleet-wide one.

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
    /// The policies to run, in order (default: adaptive,naive; with --instances above 1,
    /// adaptive,process,naive).
    #[arg(long, value_delimiter = ',')]
    pub policies: Vec<Policy>,
    /// Functions host instances, each its own handler process on the same queues and store.
    #[arg(long, default_value_t = 1, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub instances: usize,
    /// The app root (host.json, function folders).
    #[arg(long, default_value = ".")]
    pub app_root: PathBuf,
}

impl BudgetBench {
    /// The policies to run: those asked for, else the defaults for the instance count.
    pub fn policies(&self) -> Vec<Policy> {
        if !self.policies.is_empty() {
            return self.policies.clone();
        }
        if self.instances > 1 {
            vec![Policy::Adaptive, Policy::Process, Policy::Naive]
        } else {
            vec![Policy::Adaptive, Policy::Naive]
        }
    }
}

/// A budget policy to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    /// docflow's budget control (the default), one budget for the whole fleet of instances.
    Adaptive,
    /// docflow's budget control with a budget per process, each aiming at the whole limit
    /// (`DOCFLOW_AI_BUDGET_SCOPE=process`).
    Process,
    /// Fixed concurrency, a `429` retried at once (`DOCFLOW_AI_BUDGET=naive`).
    Naive,
}

const KINDS: &str = "summarize,classify,sentiment";

impl Policy {
    fn name(self) -> &'static str {
        match self {
            Self::Adaptive => "adaptive",
            Self::Process => "process",
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
    /// The delivered fraction of the limit in each tenth of the busy period.
    timeline: Vec<f64>,
    /// The budget store's operations over every instance
    /// ([`STORE_OPERATIONS`]; none when no handler counts them), or why they are not known.
    store_operations: Result<Option<f64>, String>,
}

/// The handlers' counter of their budget store's operations (reads and writes of a shared
/// budget), summed over its label sets.
const STORE_OPERATIONS: &str = "docflow_llm_budget_store_operations_total";

/// Runs the policies and prints their figures; returns the exit code.
pub async fn run(bench: BudgetBench) -> u8 {
    let policies = bench.policies();
    let names: Vec<&str> = policies.iter().map(|p| p.name()).collect();
    println!(
        "docflow bench budget --documents {} --tpm {} --time-scale {} --instances {} --policies {}",
        bench.documents,
        bench.tpm,
        bench.time_scale,
        bench.instances,
        names.join(",")
    );
    let mut results = Vec::new();
    for &policy in &policies {
        match measure(&bench, policy).await {
            Ok(figures) => {
                print(policy.name(), &figures);
                results.push((policy, figures));
            }
            Err(e) => {
                eprintln!("docflow bench budget ({}): {e}", policy.name());
                return super::EXIT_FAILED;
            }
        }
    }
    let find = |wanted: Policy| results.iter().find(|(p, _)| *p == wanted).map(|(_, f)| f);
    if let Some(adaptive) = find(Policy::Adaptive) {
        for other in [Policy::Process, Policy::Naive] {
            if let Some(other_figures) = find(other) {
                compare(adaptive, other.name(), other_figures);
            }
        }
    }
    0
}

/// `adaptive ÷ naive: delivered rate 0.90×, completed 12.82×, busy period 8.86×`.
fn compare(adaptive: &Figures, other: &str, f: &Figures) {
    println!(
        "adaptive ÷ {other}: delivered rate {:.2}×, completed {:.2}×, busy period {:.2}×",
        adaptive.charged_tpm_fraction / f.charged_tpm_fraction.max(1e-9),
        adaptive.completed as f64 / f.completed.max(1) as f64,
        adaptive.busy.as_secs_f64() / f.busy.as_secs_f64().max(1e-9)
    );
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
    let tenths: Vec<String> = f
        .timeline
        .iter()
        .map(|t| format!("{:.0}%", 100.0 * t))
        .collect();
    println!(
        "{policy:>8}: delivered by tenth of the busy period {}",
        tenths.join(" ")
    );
    if let (Some(first), Some(last)) = (f.refused_at.first(), f.refused_at.last()) {
        println!("{policy:>8}: 429s between {first:.1} s and {last:.1} s of the run");
    }
    let per_call = match &f.store_operations {
        Ok(Some(operations)) => format!(
            "{:.3} ({operations} operations, {} calls)",
            operations / f.calls.max(1) as f64,
            f.calls
        ),
        Ok(None) => format!("n/a (no handler serves {STORE_OPERATIONS})"),
        Err(e) => format!("n/a ({e})"),
    };
    println!("{policy:>8}: budget store operations per provider call {per_call}");
}

/// The delivered fraction of `limit_per_second` in each of `slices` equal parts of the busy
/// period, from `(seconds since the endpoint started, tokens charged)` admissions; the busy
/// period starts `offset` seconds after the endpoint and lasts `busy` seconds.
fn timeline(
    admitted: &[(f64, u64)],
    offset: f64,
    busy: f64,
    limit_per_second: f64,
    slices: usize,
) -> Vec<f64> {
    let length = busy / slices as f64;
    let mut charged = vec![0u64; slices];
    for &(at, tokens) in admitted {
        let slice = ((at - offset) / length).floor();
        if slice >= 0.0 {
            charged[(slice as usize).min(slices - 1)] += tokens;
        }
    }
    charged
        .iter()
        .map(|&c| c as f64 / (limit_per_second * length).max(1e-9))
        .collect()
}

/// The sum of counter `name` over its label sets in Prometheus texts; `None` when no text has
/// a sample of it.
fn counter_sum<'a>(texts: impl IntoIterator<Item = &'a str>, name: &str) -> Option<f64> {
    let mut sum = None;
    for line in texts.into_iter().flat_map(str::lines) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let value = if let Some(labels) = rest.strip_prefix('{') {
            after_labels(labels)
        } else if rest.starts_with([' ', '\t']) {
            Some(rest)
        } else {
            // Another metric whose name starts with this one's.
            None
        };
        let value = value
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok());
        if let Some(value) = value {
            *sum.get_or_insert(0.0) += value;
        }
    }
    sum
}

/// What follows a sample's label set (`a="x",b="y\"}"} 3` → ` 3`), quotes and escapes read.
fn after_labels(labels: &str) -> Option<&str> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in labels.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '}' if !quoted => return Some(&labels[i + 1..]),
            _ => {}
        }
    }
    None
}

async fn measure(bench: &BudgetBench, policy: Policy) -> Result<Figures, String> {
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
    let llm_started = Instant::now();
    // The naive policy: as many calls at once as the limit holds of an average call (about
    // 400 tokens charged at admission), a 429 retried at once like any transient failure.
    let naive_concurrency = ((bench.tpm as f64 * bench.time_scale / 60.0) * 2.0 / 400.0)
        .round()
        .clamp(1.0, 64.0) as usize;
    let mut env = fake_llm_env(llm.port());
    env.push(("DOCFLOW_MAX_TRANSIENT_RETRIES".into(), "8".into()));
    match policy {
        Policy::Adaptive => {}
        Policy::Process => env.push(("DOCFLOW_AI_BUDGET_SCOPE".into(), "process".into())),
        Policy::Naive => {
            env.push(("DOCFLOW_AI_BUDGET".into(), "naive".into()));
            env.push((
                "DOCFLOW_AI_MAX_CONCURRENCY".into(),
                naive_concurrency.to_string(),
            ));
            env.push(("DOCFLOW_RETRY_BASE_MS".into(), "0".into()));
        }
    }
    let stack =
        Stack::start_instances(bench.app_root.clone(), "budget", env, stop, bench.instances)
            .await?;
    let started = Instant::now();
    let mut ids = Vec::new();
    for i in 0..bench.documents {
        ids.push(stack.submit(document(i), KINDS).await?.id);
    }
    let finals = stack.wait_all(&ids, Duration::from_secs(1_800)).await?;
    let busy = started.elapsed();
    let stats = llm.stats();
    let store_operations = stack
        .handler_metrics()
        .await
        .map(|texts| counter_sum(texts.iter().map(String::as_str), STORE_OPERATIONS));
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
    let admitted: Vec<(f64, u64)> = stats
        .requests
        .iter()
        .filter(|r| r.charged > 0)
        .map(|r| (r.at_ms as f64 / 1000.0, r.charged))
        .collect();
    let offset = started.duration_since(llm_started).as_secs_f64();
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
        timeline: timeline(&admitted, offset, busy.as_secs_f64(), limit_per_second, 10),
        store_operations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HANDLER_A: &str = "\
# HELP docflow_llm_budget_store_operations_total Operations on the budget store.
# TYPE docflow_llm_budget_store_operations_total counter
docflow_llm_budget_store_operations_total{operation=\"read\",otel_scope_name=\"docflow\"} 12
docflow_llm_budget_store_operations_total{operation=\"write\",note=\"a \\\"}\\\" b\"} 3 1700000000000
docflow_llm_budget_store_operations_total_extra 1000
";
    const HANDLER_B: &str = "docflow_llm_budget_store_operations_total 5\n";

    #[test]
    fn store_operations_are_summed_over_label_sets_and_instances() {
        assert_eq!(
            counter_sum([HANDLER_A, HANDLER_B], STORE_OPERATIONS),
            Some(20.0)
        );
    }

    #[test]
    fn the_timeline_splits_admissions_over_the_busy_period() {
        // Busy from 1 s to 11 s of the endpoint, 100 tokens a second allowed, five slices.
        let admitted = [(0.5, 999), (1.0, 200), (2.9, 100), (5.0, 400), (11.0, 50)];
        let slices = timeline(&admitted, 1.0, 10.0, 100.0, 5);
        assert_eq!(slices, vec![1.5, 0.0, 2.0, 0.0, 0.25]);
    }

    #[test]
    fn a_counter_no_handler_serves_is_unknown() {
        let text = "# TYPE docflow_invocations_total counter\ndocflow_invocations_total{function=\"ProcessDocument\"} 7\n";
        assert_eq!(counter_sum([text], STORE_OPERATIONS), None);
    }

    #[test]
    fn the_default_policies_depend_on_the_instance_count() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BudgetBench,
        }
        let parse = |args: &[&str]| Cli::parse_from([&["bench"], args].concat()).bench;
        assert_eq!(parse(&[]).policies(), [Policy::Adaptive, Policy::Naive]);
        assert_eq!(
            parse(&["--instances", "4"]).policies(),
            [Policy::Adaptive, Policy::Process, Policy::Naive]
        );
        assert_eq!(
            parse(&["--instances", "4", "--policies", "process"]).policies(),
            [Policy::Process]
        );
        assert!(Cli::try_parse_from(["bench", "--instances", "0"]).is_err());
    }
}
