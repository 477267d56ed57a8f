//! The handler's `GET /metrics` (Prometheus text) read once into [`HandlerMetrics`]: per model
//! deployment, its calls by status, its tokens and, for a provider with a rate budget, the
//! budget's gauges. The LLM budget view ([`crate::budget`]) derives its figures from samples of
//! it.

use std::collections::BTreeMap;

/// The function that processes a task of [`crate::budget::TASK_QUEUE`].
const TASK_FUNCTION: &str = "ProcessDocument";

/// Errors reading the handler's metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The dashboard was not told where the handler serves its metrics.
    #[error("the handler's metrics address is not known (no local host)")]
    NoAddress,
    /// The handler did not answer, or answered with an error.
    #[error("cannot fetch the handler's metrics from {url}: {message}")]
    Fetch {
        /// Where they were asked for.
        url: String,
        /// Why they did not come.
        message: String,
    },
    /// The text is not Prometheus text.
    #[error("cannot parse the handler's metrics: {0}")]
    Parse(String),
}

/// What the handler's metrics tell about one model deployment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeploymentMetrics {
    /// Calls by status (`ok`, `429`, `4xx`, `5xx`, `timeout`, `error`), since the handler
    /// started (`docflow_llm_requests_total`).
    pub requests: BTreeMap<String, f64>,
    /// Tokens used, input and output, since the handler started
    /// (`gen_ai_client_token_usage_sum`).
    pub tokens: f64,
    /// Its rate budget's gauges (`docflow_llm_budget_*`); none for a provider without one.
    pub budget: Option<BudgetGauges>,
}

/// A deployment's budget as its gauges tell it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BudgetGauges {
    /// Tokens charged over the last minute.
    pub tokens_last_minute: f64,
    /// The tokens-per-minute limit, configured or learned (none until known).
    pub token_limit: Option<f64>,
    /// The requests-per-minute limit, likewise.
    pub request_limit: Option<f64>,
    /// The concurrency window.
    pub window: f64,
    /// Calls in flight.
    pub in_flight: f64,
}

/// The handler's metrics the budget view reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HandlerMetrics {
    /// By deployment (the model's name).
    pub deployments: BTreeMap<String, DeploymentMetrics>,
    /// Tasks of [`crate::budget::TASK_QUEUE`] processed to the end (`ProcessDocument` invocations `done`).
    pub tasks_done: f64,
}

impl HandlerMetrics {
    /// Parses the handler's Prometheus text.
    pub fn parse(text: &str) -> Result<Self, MetricsError> {
        let lines = text.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines)
            .map_err(|e| MetricsError::Parse(e.to_string()))?;
        let mut out = Self::default();
        for sample in &scrape.samples {
            let value = match sample.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => continue,
            };
            out.add(&sample.metric, &sample.labels, value);
        }
        Ok(out)
    }

    fn add(&mut self, metric: &str, labels: &prometheus_parse::Labels, value: f64) {
        let model = labels.get("gen_ai_request_model");
        match (metric, model) {
            ("docflow_llm_requests_total", Some(model)) => {
                let status = labels.get("status").unwrap_or("unknown").to_owned();
                *self.deployment(model).requests.entry(status).or_default() += value;
            }
            ("gen_ai_client_token_usage_sum", Some(model)) => {
                self.deployment(model).tokens += value;
            }
            ("docflow_invocations_total", _) => {
                if labels.get("function") == Some(TASK_FUNCTION)
                    && labels.get("outcome") == Some("done")
                {
                    self.tasks_done += value;
                }
            }
            _ => self.add_gauge(metric, labels, value),
        }
    }

    fn add_gauge(&mut self, metric: &str, labels: &prometheus_parse::Labels, value: f64) {
        let Some(gauge) = metric.strip_prefix("docflow_llm_budget_") else {
            return;
        };
        let Some(deployment) = labels.get("deployment") else {
            return;
        };
        let budget = self
            .deployment(deployment)
            .budget
            .get_or_insert_with(BudgetGauges::default);
        match gauge {
            "tokens_per_minute" => budget.tokens_last_minute = value,
            "token_limit" => budget.token_limit = Some(value),
            "request_limit" => budget.request_limit = Some(value),
            "window" => budget.window = value,
            "in_flight" => budget.in_flight = value,
            _ => {}
        }
    }

    fn deployment(&mut self, name: &str) -> &mut DeploymentMetrics {
        self.deployments.entry(name.to_owned()).or_default()
    }

    /// Adds `other`, another instance's metrics, to these: the fleet's figures. Counts and
    /// what is in flight add up; the limits are the deployment's, the same for every instance.
    pub fn merge(&mut self, other: Self) {
        self.tasks_done += other.tasks_done;
        for (name, theirs) in other.deployments {
            let mine = self.deployment(&name);
            for (status, count) in theirs.requests {
                *mine.requests.entry(status).or_default() += count;
            }
            mine.tokens += theirs.tokens;
            mine.budget = match (mine.budget, theirs.budget) {
                (Some(a), Some(b)) => Some(BudgetGauges {
                    tokens_last_minute: a.tokens_last_minute + b.tokens_last_minute,
                    token_limit: larger(a.token_limit, b.token_limit),
                    request_limit: larger(a.request_limit, b.request_limit),
                    window: a.window + b.window,
                    in_flight: a.in_flight + b.in_flight,
                }),
                (a, b) => a.or(b),
            };
        }
    }

    /// Tokens used over every deployment.
    pub fn tokens(&self) -> f64 {
        self.deployments.values().map(|d| d.tokens).sum()
    }
}

/// The larger of two limits, either of which may not be known yet.
fn larger(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

impl DeploymentMetrics {
    /// Calls of every status.
    pub fn requests_total(&self) -> f64 {
        self.requests.values().sum()
    }

    /// Calls refused with `429`.
    pub fn rate_limited(&self) -> f64 {
        self.requests.get("429").copied().unwrap_or(0.0)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `GET /metrics` of the handler under `docflow dev` (offline provider) after two
    /// documents of three analyses each completed.
    pub(crate) const CAPTURED: &str = include_str!("../tests/fixtures/handler-metrics.txt");

    /// What an OpenAI-compatible provider adds: a budget's gauges, and `429`s.
    pub(crate) const WITH_BUDGET: &str = "\
# HELP docflow_llm_budget_tokens_per_minute Tokens the deployment's budget charged over the last minute
# TYPE docflow_llm_budget_tokens_per_minute gauge
docflow_llm_budget_tokens_per_minute{deployment=\"gpt-4o-mini\",otel_scope_name=\"docflow\"} 4200
docflow_llm_budget_tokens_per_minute{deployment=\"text-embedding-3-small\",otel_scope_name=\"docflow\"} 0
# TYPE docflow_llm_budget_token_limit gauge
docflow_llm_budget_token_limit{deployment=\"gpt-4o-mini\",otel_scope_name=\"docflow\"} 10000
# TYPE docflow_llm_budget_request_limit gauge
docflow_llm_budget_request_limit{deployment=\"gpt-4o-mini\",otel_scope_name=\"docflow\"} 100
# TYPE docflow_llm_budget_window gauge
docflow_llm_budget_window{deployment=\"gpt-4o-mini\",otel_scope_name=\"docflow\"} 4
docflow_llm_budget_window{deployment=\"text-embedding-3-small\",otel_scope_name=\"docflow\"} 1
# TYPE docflow_llm_budget_in_flight gauge
docflow_llm_budget_in_flight{deployment=\"gpt-4o-mini\",otel_scope_name=\"docflow\"} 3
# TYPE docflow_llm_requests_total counter
docflow_llm_requests_total{gen_ai_provider_name=\"openai\",gen_ai_request_model=\"gpt-4o-mini\",status=\"ok\",otel_scope_name=\"docflow\"} 40
docflow_llm_requests_total{gen_ai_provider_name=\"openai\",gen_ai_request_model=\"gpt-4o-mini\",status=\"429\",otel_scope_name=\"docflow\"} 6
# TYPE docflow_invocations_total counter
docflow_invocations_total{function=\"ProcessDocument\",outcome=\"done\",otel_scope_name=\"docflow\"} 20
docflow_invocations_total{function=\"ProcessDocument\",outcome=\"transient\",otel_scope_name=\"docflow\"} 6
";

    #[test]
    fn the_captured_metrics_of_the_offline_provider_parse_into_its_three_models() {
        let m = HandlerMetrics::parse(CAPTURED).unwrap();
        let names: Vec<&str> = m.deployments.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "offline-extractive-summary-v1",
                "offline-lexicon-sentiment-v1",
                "offline-similarity-classifier-v1"
            ]
        );
        let summary = &m.deployments["offline-extractive-summary-v1"];
        assert_eq!(summary.requests.get("ok"), Some(&2.0));
        assert_eq!(summary.rate_limited(), 0.0);
        assert_eq!(summary.tokens, 40.0 + 57.0, "input and output");
        assert_eq!(summary.budget, None, "the offline provider has no budget");
        assert_eq!(m.tasks_done, 6.0);
        assert_eq!(m.tokens(), 40.0 + 57.0 + 40.0 + 27.0 + 40.0 + 123.0);
    }

    #[test]
    fn a_budget_s_gauges_are_read_per_deployment() {
        let m = HandlerMetrics::parse(WITH_BUDGET).unwrap();
        assert_eq!(
            m.deployments["gpt-4o-mini"].budget,
            Some(BudgetGauges {
                tokens_last_minute: 4200.0,
                token_limit: Some(10_000.0),
                request_limit: Some(100.0),
                window: 4.0,
                in_flight: 3.0,
            })
        );
        let embeddings = m.deployments["text-embedding-3-small"].budget.unwrap();
        assert_eq!(embeddings.token_limit, None, "not learned yet");
        assert_eq!(m.deployments["gpt-4o-mini"].rate_limited(), 6.0);
        assert_eq!(m.tasks_done, 20.0, "only the tasks done");
        assert!(HandlerMetrics::parse("").unwrap().deployments.is_empty());
    }

    #[test]
    fn the_instances_of_a_fleet_add_up() {
        let mut fleet = HandlerMetrics::parse(WITH_BUDGET).unwrap();
        fleet.merge(HandlerMetrics::parse(WITH_BUDGET).unwrap());
        fleet.merge(HandlerMetrics::parse(CAPTURED).unwrap());
        let chat = &fleet.deployments["gpt-4o-mini"];
        assert_eq!(chat.requests.get("ok"), Some(&80.0));
        assert_eq!(chat.rate_limited(), 12.0);
        assert_eq!(
            chat.budget,
            Some(BudgetGauges {
                tokens_last_minute: 8400.0,
                token_limit: Some(10_000.0),
                request_limit: Some(100.0),
                window: 8.0,
                in_flight: 6.0,
            }),
            "the limit is the deployment's; the charges and the windows are the instances'"
        );
        assert_eq!(fleet.tasks_done, 20.0 + 20.0 + 6.0);
        assert_eq!(
            fleet.deployments.len(),
            5,
            "two budgets and three offline models"
        );
        assert_eq!(
            fleet.deployments["offline-extractive-summary-v1"].tokens,
            40.0 + 57.0
        );
    }

    #[test]
    fn a_limit_one_instance_has_not_learned_yet_is_the_others() {
        let mut learning = HandlerMetrics::parse(WITH_BUDGET).unwrap();
        learning
            .deployments
            .get_mut("gpt-4o-mini")
            .and_then(|d| d.budget.as_mut())
            .unwrap()
            .token_limit = None;
        learning.merge(HandlerMetrics::parse(WITH_BUDGET).unwrap());
        let budget = learning.deployments["gpt-4o-mini"].budget.unwrap();
        assert_eq!(budget.token_limit, Some(10_000.0));
    }
}
