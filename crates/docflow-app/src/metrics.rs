//! The app's metrics, through OpenTelemetry: created once on the global meter (see
//! [`docflow_telemetry::metrics`]) and recorded where the work happens. Names follow the
//! OpenTelemetry conventions where they exist (`messaging.*`, `gen_ai.*`, `http.*`), `docflow.*`
//! otherwise; the README lists them.
//!
//! - Invocations: `docflow.invocations` (function, outcome), `messaging.process.duration` and
//!   `docflow.queue.wait` per queue or subscription, `http.server.request.duration`.
//! - Documents: `docflow.documents.in_flight` (accepted and not yet completed, as seen by this
//!   process) and `docflow.document.duration` (submitted → completed).
//! - LLM calls: `gen_ai.client.token.usage`, `gen_ai.client.operation.duration` and
//!   `docflow.llm.requests` (status `ok`, `429`, `4xx`, `5xx`, `timeout`, `error`) per model.
//! - Budgets: `docflow.llm.budget.tokens_per_minute`, `.token_limit`, `.request_limit`,
//!   `.window` and `.in_flight` per deployment, observed from every budget [`watch_budget`] was given.

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter, ObservableGauge, UpDownCounter};

use crate::ai::TokenUsage;
use crate::ai::budget::{BudgetSnapshot, BudgetStore};
use crate::functions::Destination;
use docflow_telemetry::metrics::{GENAI_SECONDS_BUCKETS, SECONDS_BUCKETS, TOKEN_BUCKETS};

/// The app's instruments.
pub struct Instruments {
    invocations: Counter<u64>,
    process_duration: Histogram<f64>,
    queue_wait: Histogram<f64>,
    http_duration: Histogram<f64>,
    in_flight: UpDownCounter<i64>,
    document_duration: Histogram<f64>,
    tokens: Histogram<u64>,
    llm_duration: Histogram<f64>,
    llm_requests: Counter<u64>,
    budget_store: Counter<u64>,
    _budget: Vec<ObservableGauge<u64>>,
}

static GLOBAL: OnceLock<Instruments> = OnceLock::new();

/// The instruments on the global meter, created on first use.
pub fn global() -> &'static Instruments {
    GLOBAL.get_or_init(|| Instruments::new(&docflow_telemetry::metrics::meter()))
}

/// What one LLM call came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmStatus {
    /// Answered with success.
    Ok,
    /// Refused with `429`.
    RateLimited,
    /// Another `4xx`.
    ClientError,
    /// A `5xx`.
    ServerError,
    /// No answer in time.
    Timeout,
    /// No answer at all (connection refused, reset) or the call itself failed.
    Error,
}

impl LlmStatus {
    /// The status of an HTTP answer.
    pub fn of_http(status: u16) -> Self {
        match status {
            200..=399 => Self::Ok,
            429 => Self::RateLimited,
            400..=499 => Self::ClientError,
            _ => Self::ServerError,
        }
    }

    /// The `status` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::RateLimited => "429",
            Self::ClientError => "4xx",
            Self::ServerError => "5xx",
            Self::Timeout => "timeout",
            Self::Error => "error",
        }
    }
}

/// One call to a model, as the provider saw it.
#[derive(Debug, Clone, Copy)]
pub struct LlmCall<'a> {
    /// `gen_ai.provider.name`: `openai`, `azure.ai.openai`, `offline`.
    pub provider: &'static str,
    /// `gen_ai.operation.name`: `chat`, `embeddings`.
    pub operation: &'static str,
    /// `gen_ai.request.model`.
    pub model: &'a str,
    /// How it ended.
    pub status: LlmStatus,
    /// How long it took.
    pub duration: Duration,
    /// Tokens reported (or, offline, estimated).
    pub usage: Option<TokenUsage>,
}

impl Instruments {
    /// The instruments on `meter`.
    pub fn new(meter: &Meter) -> Self {
        let seconds = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(SECONDS_BUCKETS.to_vec())
                .build()
        };
        Self {
            invocations: meter
                .u64_counter("docflow.invocations")
                .with_description("Function invocations, by function and outcome")
                .build(),
            process_duration: seconds(
                "messaging.process.duration",
                "Time a Service Bus-triggered function took to process a message",
            ),
            queue_wait: seconds(
                "docflow.queue.wait",
                "Time a message waited between its enqueuing and its processing",
            ),
            http_duration: seconds(
                "http.server.request.duration",
                "Time an HTTP-triggered function took to answer",
            ),
            in_flight: meter
                .i64_up_down_counter("docflow.documents.in_flight")
                .with_description(
                    "Documents accepted and not yet completed (as counted by this process)",
                )
                .build(),
            document_duration: seconds(
                "docflow.document.duration",
                "Time from a document's submission to its completion",
            ),
            tokens: meter
                .u64_histogram("gen_ai.client.token.usage")
                .with_unit("{token}")
                .with_description("Tokens used per LLM call, by type (input, output)")
                .with_boundaries(TOKEN_BUCKETS.to_vec())
                .build(),
            llm_duration: meter
                .f64_histogram("gen_ai.client.operation.duration")
                .with_unit("s")
                .with_description("Duration of LLM calls")
                .with_boundaries(GENAI_SECONDS_BUCKETS.to_vec())
                .build(),
            llm_requests: meter
                .u64_counter("docflow.llm.requests")
                .with_description(
                    "LLM calls by model and status (ok, 429, 4xx, 5xx, timeout, error)",
                )
                .build(),
            budget_store: meter
                .u64_counter("docflow.llm.budget.store_operations")
                .with_description(
                    "Reads, writes and lost races on the fleet's budget ledger, by deployment",
                )
                .build(),
            _budget: budget_gauges(meter),
        }
    }

    /// One invocation of `function` ended with `outcome` (`done`, `transient`, `poison`, ...).
    pub fn invocation(&self, function: &'static str, outcome: &'static str) {
        self.invocations.add(
            1,
            &[
                KeyValue::new("function", function),
                KeyValue::new("outcome", outcome),
            ],
        );
    }

    /// A Service Bus-triggered invocation from `source` took `elapsed`.
    pub fn processed(&self, source: Destination<'static>, elapsed: Duration, failed: bool) {
        let mut attributes = destination(source);
        attributes.push(KeyValue::new("messaging.operation.name", "process"));
        if failed {
            attributes.push(KeyValue::new("error.type", "abandoned"));
        }
        self.process_duration
            .record(elapsed.as_secs_f64(), &attributes);
    }

    /// A message from `source` waited `wait` between its enqueuing and its processing.
    pub fn waited(&self, source: Destination<'static>, wait: Duration) {
        self.queue_wait
            .record(wait.as_secs_f64(), &destination(source));
    }

    /// An HTTP-triggered function on `route` answered `status` after `elapsed`.
    pub fn http_request(&self, method: &str, route: &'static str, status: u16, elapsed: Duration) {
        self.http_duration.record(
            elapsed.as_secs_f64(),
            &[
                KeyValue::new("http.request.method", http_method(method)),
                KeyValue::new("http.route", route),
                KeyValue::new("http.response.status_code", i64::from(status)),
            ],
        );
    }

    /// A new document was accepted.
    pub fn document_accepted(&self) {
        self.in_flight.add(1, &[]);
    }

    /// A document completed with `status` (`completed`, `partial`, `failed`), `took` after its
    /// submission.
    pub fn document_completed(&self, status: &'static str, took: Option<Duration>) {
        self.in_flight.add(-1, &[]);
        if let Some(took) = took {
            self.document_duration
                .record(took.as_secs_f64(), &[KeyValue::new("status", status)]);
        }
    }

    /// One call to a model.
    pub fn llm_call(&self, call: &LlmCall<'_>) {
        let model = KeyValue::new("gen_ai.request.model", call.model.to_owned());
        let provider = KeyValue::new("gen_ai.provider.name", call.provider);
        let operation = KeyValue::new("gen_ai.operation.name", call.operation);
        self.llm_requests.add(
            1,
            &[
                model.clone(),
                provider.clone(),
                KeyValue::new("status", call.status.as_str()),
            ],
        );
        let mut attributes = vec![model, provider, operation];
        if call.status != LlmStatus::Ok {
            attributes.push(KeyValue::new("error.type", call.status.as_str()));
        }
        self.llm_duration
            .record(call.duration.as_secs_f64(), &attributes);
        if let Some(usage) = call.usage {
            attributes.truncate(3);
            for (kind, tokens) in [
                ("input", usage.input_tokens),
                ("output", usage.output_tokens),
            ] {
                attributes.push(KeyValue::new("gen_ai.token.type", kind));
                self.tokens.record(tokens, &attributes);
                attributes.pop();
            }
        }
    }

    /// One operation on the fleet's budget ledger of `deployment`: `read`, `write` or
    /// `conflict` (a write that lost its race).
    pub fn budget_store_operation(&self, deployment: &str, operation: &'static str) {
        self.budget_store.add(
            1,
            &[
                KeyValue::new("deployment", deployment.to_owned()),
                KeyValue::new("operation", operation),
            ],
        );
    }
}

/// The messaging attributes of `source`.
fn destination(source: Destination<'static>) -> Vec<KeyValue> {
    let mut attributes = Vec::with_capacity(5);
    attributes.push(KeyValue::new(
        "messaging.system",
        docflow_telemetry::messaging::SYSTEM,
    ));
    attributes.push(KeyValue::new("messaging.destination.name", source.entity));
    if let Some(subscription) = source.subscription {
        attributes.push(KeyValue::new(
            "messaging.destination.subscription.name",
            subscription,
        ));
    }
    attributes
}

/// A method as the HTTP conventions name it (`_OTHER` for one they do not know).
fn http_method(method: &str) -> &'static str {
    const KNOWN: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    KNOWN
        .into_iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .unwrap_or("_OTHER")
}

/// The budgets the gauges read, by deployment; a budget dropped is forgotten.
type Watched = Vec<(String, Weak<dyn BudgetStore>)>;

static BUDGETS: Mutex<Watched> = Mutex::new(Vec::new());

/// Makes `budget`, the budget of `deployment`, visible in the `docflow.llm.budget.*` gauges
/// for as long as it lives.
pub fn watch_budget(deployment: &str, budget: &Arc<dyn BudgetStore>) {
    let mut budgets = BUDGETS.lock().unwrap_or_else(|e| e.into_inner());
    budgets.retain(|(_, b)| b.strong_count() > 0);
    budgets.push((deployment.to_owned(), Arc::downgrade(budget)));
}

/// The snapshot of every live budget, by deployment.
fn budget_snapshots() -> Vec<(String, BudgetSnapshot)> {
    let now = Instant::now();
    let budgets = BUDGETS.lock().unwrap_or_else(|e| e.into_inner());
    budgets
        .iter()
        .filter_map(|(deployment, budget)| {
            Some((deployment.clone(), budget.upgrade()?.snapshot(now)?))
        })
        .collect()
}

fn budget_gauges(meter: &Meter) -> Vec<ObservableGauge<u64>> {
    type Read = fn(&BudgetSnapshot) -> Option<u64>;
    let gauges: [(&'static str, &'static str, &'static str, Read); 5] = [
        (
            "docflow.llm.budget.tokens_per_minute",
            "{token}",
            "Tokens the deployment's budget charged over the last minute",
            |s| Some(s.tokens_last_minute),
        ),
        (
            "docflow.llm.budget.token_limit",
            "{token}",
            "The deployment's tokens-per-minute limit (configured or learned)",
            |s| s.token_limit,
        ),
        (
            "docflow.llm.budget.request_limit",
            "{request}",
            "The deployment's requests-per-minute limit (configured or learned)",
            |s| s.request_limit,
        ),
        (
            "docflow.llm.budget.window",
            "{call}",
            "The budget's concurrency window: calls allowed at once",
            |s| Some(s.window as u64),
        ),
        (
            "docflow.llm.budget.in_flight",
            "{call}",
            "Calls to the deployment in flight",
            |s| Some(s.in_flight as u64),
        ),
    ];
    gauges
        .into_iter()
        .map(|(name, unit, description, read)| {
            meter
                .u64_observable_gauge(name)
                .with_unit(unit)
                .with_description(description)
                .with_callback(move |observer| {
                    for (deployment, snapshot) in budget_snapshots() {
                        if let Some(value) = read(&snapshot) {
                            observer.observe(value, &[KeyValue::new("deployment", deployment)]);
                        }
                    }
                })
                .build()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use opentelemetry::metrics::MeterProvider as _;

    use super::*;
    use crate::ai::budget::{Budget, LocalBudget};

    #[test]
    fn every_instrument_is_exposed_under_its_prometheus_name() {
        let (provider, exposition) = docflow_telemetry::metrics::pull_only();
        let m = Instruments::new(&provider.meter("docflow"));
        let source = Destination {
            entity: "documents",
            subscription: Some("analyze"),
        };
        m.invocation("AnalyzeDocument", "done");
        m.processed(source, Duration::from_millis(30), false);
        m.waited(source, Duration::from_millis(700));
        m.http_request("post", "documents", 202, Duration::from_millis(5));
        m.document_accepted();
        m.document_accepted();
        m.document_completed("completed", Some(Duration::from_secs(3)));
        m.llm_call(&LlmCall {
            provider: "offline",
            operation: "chat",
            model: "offline-extractive-summary-v1",
            status: LlmStatus::Ok,
            duration: Duration::from_millis(2),
            usage: Some(TokenUsage::new(120, 30)),
        });
        m.llm_call(&LlmCall {
            provider: "openai",
            operation: "chat",
            model: "gpt-4o-mini",
            status: LlmStatus::of_http(429),
            duration: Duration::from_millis(2),
            usage: None,
        });
        let text = exposition.text();
        let cases: [Case; 10] = [
            (
                "docflow_invocations_total",
                &[("function", "AnalyzeDocument"), ("outcome", "done")],
                "1",
            ),
            (
                "messaging_process_duration_seconds_count",
                &[
                    ("messaging_destination_name", "documents"),
                    ("messaging_destination_subscription_name", "analyze"),
                    ("messaging_operation_name", "process"),
                    ("messaging_system", "servicebus"),
                ],
                "1",
            ),
            (
                "docflow_queue_wait_seconds_bucket",
                &[
                    ("messaging_destination_name", "documents"),
                    ("messaging_destination_subscription_name", "analyze"),
                    ("messaging_system", "servicebus"),
                    ("le", "1"),
                ],
                "1",
            ),
            (
                "http_server_request_duration_seconds_count",
                &[
                    ("http_request_method", "POST"),
                    ("http_response_status_code", "202"),
                    ("http_route", "documents"),
                ],
                "1",
            ),
            ("docflow_documents_in_flight", &[], "1"),
            (
                "docflow_document_duration_seconds_sum",
                &[("status", "completed")],
                "3",
            ),
            (
                "gen_ai_client_token_usage_sum",
                &[
                    ("gen_ai_operation_name", "chat"),
                    ("gen_ai_provider_name", "offline"),
                    ("gen_ai_request_model", "offline-extractive-summary-v1"),
                    ("gen_ai_token_type", "input"),
                ],
                "120",
            ),
            (
                "gen_ai_client_token_usage_sum",
                &[
                    ("gen_ai_operation_name", "chat"),
                    ("gen_ai_provider_name", "offline"),
                    ("gen_ai_request_model", "offline-extractive-summary-v1"),
                    ("gen_ai_token_type", "output"),
                ],
                "30",
            ),
            (
                "docflow_llm_requests_total",
                &[
                    ("gen_ai_provider_name", "openai"),
                    ("gen_ai_request_model", "gpt-4o-mini"),
                    ("status", "429"),
                ],
                "1",
            ),
            (
                "gen_ai_client_operation_duration_seconds_count",
                &[
                    ("error_type", "429"),
                    ("gen_ai_operation_name", "chat"),
                    ("gen_ai_provider_name", "openai"),
                    ("gen_ai_request_model", "gpt-4o-mini"),
                ],
                "1",
            ),
        ];
        for (name, labels, value) in cases {
            assert!(
                has(&text, name, labels, value),
                "{name} {labels:?} {value}\nin\n{text}"
            );
        }
    }

    /// A sample expected: name, labels, value.
    type Case = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
    );

    /// Whether `text` has a sample `name{labels} value` (labels in any order; the scope's
    /// label aside).
    fn has(text: &str, name: &str, labels: &[(&str, &str)], value: &str) -> bool {
        let want: std::collections::BTreeSet<String> =
            labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        text.lines().any(|line| {
            let Some((head, tail)) = line.split_once('{') else {
                return line == format!("{name} {value}");
            };
            let Some((inside, got)) = tail.rsplit_once("} ") else {
                return false;
            };
            let seen: std::collections::BTreeSet<String> = inside
                .split(',')
                .filter(|l| !l.starts_with("otel_scope_name="))
                .map(str::to_owned)
                .collect();
            head == name && got == value && seen == want
        })
    }

    #[test]
    fn budget_gauges_read_every_live_budget() {
        let (provider, exposition) = docflow_telemetry::metrics::pull_only();
        let _m = Instruments::new(&provider.meter("docflow"));
        let budget: Arc<dyn BudgetStore> = Arc::new(LocalBudget::new(Budget::new(
            Some(60_000),
            Some(600),
            6,
            Instant::now(),
        )));
        watch_budget("gauge-test-deployment", &budget);
        let _reservation = budget.reserve(500, Instant::now()).unwrap();
        let text = exposition.text();
        let deployment: &[(&str, &str)] = &[("deployment", "gauge-test-deployment")];
        for (name, value) in [
            ("docflow_llm_budget_tokens_per_minute", "500"),
            ("docflow_llm_budget_token_limit", "60000"),
            ("docflow_llm_budget_request_limit", "600"),
            ("docflow_llm_budget_window", "6"),
            ("docflow_llm_budget_in_flight", "1"),
        ] {
            assert!(
                has(&text, name, deployment, value),
                "{name} {value}\nin\n{text}"
            );
        }
        drop(budget);
        assert!(
            !exposition.text().contains("gauge-test-deployment"),
            "a dropped budget is forgotten"
        );
    }
}
