//! The LLM budget view's figures. The handler's `GET /metrics` (Prometheus text) is parsed once
//! into [`HandlerMetrics`]: per model deployment, its calls by status, its tokens and, for a
//! provider with a rate budget, the budget's gauges. Successive samples (every 2 s while the
//! view is watched) give the rates: requests and tokens per minute, `429`s over the last
//! minutes. The backlog (`ai-tasks`' active and scheduled messages) comes from the broker, and
//! its drain time is the backlog times the mean tokens per task over the tokens per minute the
//! budgets admit.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Mutex;

pub use crate::handler_metrics::{BudgetGauges, DeploymentMetrics, HandlerMetrics, MetricsError};

/// The queue whose messages are the LLM's work.
pub const TASK_QUEUE: &str = "ai-tasks";
/// The share of a limit a budget aims at: the app's own.
pub const TARGET_SHARE: f64 = docflow_app::ai::budget::HEADROOM;
/// How far back the samples are kept: the `429`s are counted over this span.
pub const RECENT: Duration = Duration::from_secs(5 * 60);
/// Requests and tokens per minute are measured over this span (or what was sampled of it).
const MINUTE: Duration = Duration::from_secs(60);
/// Watchers of the view share a sample younger than this instead of fetching again.
const FRESH: Duration = Duration::from_millis(1500);

/// The handler's metrics at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetSample {
    /// When they were read.
    pub at: DateTime<Utc>,
    /// What they said.
    pub metrics: HandlerMetrics,
}

/// A counter's growth per minute between two readings `elapsed` apart (a counter that went
/// down restarted: its growth is its new value). Never extrapolated from less than a minute:
/// over a shorter span it is the growth itself (what a minute's count has reached so far), so
/// one call seen two seconds after the page opened reads 1/min, not 30/min. None when no time
/// passed.
pub fn per_minute(before: f64, after: f64, elapsed: Duration) -> Option<f64> {
    if elapsed.is_zero() {
        return None;
    }
    let secs = elapsed.max(MINUTE).as_secs_f64();
    Some(growth(before, after) * 60.0 / secs)
}

fn growth(before: f64, after: f64) -> f64 {
    if after >= before {
        after - before
    } else {
        after
    }
}

/// How long the backlog takes to drain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Drain {
    /// Nothing waits.
    Empty,
    /// No limit or no usage is known yet.
    Unknown,
    /// About this long.
    In(Duration),
}

/// `backlog` tasks of `tokens_per_task` each, at `admitted_tpm` tokens per minute.
pub fn drain_time(backlog: u64, tokens_per_task: Option<f64>, admitted_tpm: Option<f64>) -> Drain {
    if backlog == 0 {
        return Drain::Empty;
    }
    match (tokens_per_task, admitted_tpm) {
        (Some(per_task), Some(tpm)) if per_task > 0.0 && tpm > 0.0 => Drain::In(
            Duration::from_secs_f64(backlog as f64 * per_task / tpm * 60.0),
        ),
        _ => Drain::Unknown,
    }
}

/// A deployment's token limit as the view states it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// Known (configured or learned), with the share of it the budget aims at.
    Known {
        /// Tokens per minute.
        limit: f64,
        /// What the budget admits: [`TARGET_SHARE`] of it.
        target: f64,
    },
    /// A budget with no limit yet: it will learn one from the provider's headers.
    LearnedFromHeaders,
    /// No budget (the offline provider): nothing limits it.
    Unlimited,
}

/// The Budget table's row of a deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRow {
    /// The deployment (model) name.
    pub name: String,
    /// Tokens over the last minute: the budget's charge, or without a budget, the tokens used
    /// over the last minute of samples (since the first sample when that is more recent; none
    /// before a second sample).
    pub tokens_per_minute: Option<f64>,
    /// Tokens used since the handler started.
    pub tokens_total: f64,
    /// The token limit.
    pub limit: Limit,
    /// Calls per minute, from the samples.
    pub requests_per_minute: Option<f64>,
    /// The requests-per-minute limit, when its budget knows one.
    pub request_limit: Option<f64>,
    /// Calls since the handler started.
    pub requests_total: f64,
    /// `429`s since the handler started.
    pub rate_limited_total: f64,
    /// `429`s over the samples kept (up to [`RECENT`]), and per minute over that span.
    pub rate_limited_recent: Option<(f64, f64)>,
    /// The concurrency window and the calls in flight (a budget's).
    pub window: Option<(f64, f64)>,
}

/// The backlog of [`TASK_QUEUE`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Active messages.
    pub active: u64,
    /// Scheduled ones (retries later).
    pub scheduled: u64,
}

impl Backlog {
    /// Tasks waiting.
    pub fn total(&self) -> u64 {
        self.active + self.scheduled
    }
}

/// Everything the view shows.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetView {
    /// When the latest sample was read.
    pub at: Option<DateTime<Utc>>,
    /// One row per deployment.
    pub rows: Vec<DeploymentRow>,
    /// The backlog (none until the queues were sampled).
    pub backlog: Option<Backlog>,
    /// Tokens per processed task so far.
    pub tokens_per_task: Option<f64>,
    /// Tokens per minute the budgets admit together (none when no limit is known).
    pub admitted_tpm: Option<f64>,
    /// The backlog's drain time.
    pub drain: Drain,
    /// Why the handler's metrics could not be read, if they could not.
    pub problem: Option<String>,
}

/// The samples kept, oldest first.
#[derive(Debug, Clone, Default)]
pub struct History {
    samples: VecDeque<BudgetSample>,
}

impl History {
    /// Keeps `sample`, forgetting what is older than [`RECENT`] before it.
    pub fn push(&mut self, sample: BudgetSample) {
        let oldest = sample.at - chrono::Duration::from_std(RECENT).unwrap_or_default();
        while self.samples.front().is_some_and(|s| s.at < oldest) {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The latest sample.
    pub fn latest(&self) -> Option<&BudgetSample> {
        self.samples.back()
    }

    /// The oldest sample no more than `span` older than the latest, unless it is the latest.
    fn since(&self, span: Duration) -> Option<&BudgetSample> {
        let latest = self.latest()?;
        let from = latest.at - chrono::Duration::from_std(span).unwrap_or_default();
        self.samples
            .iter()
            .find(|s| s.at >= from)
            .filter(|s| s.at < latest.at)
    }

    /// The view's figures with `backlog`.
    pub fn view(&self, backlog: Option<Backlog>) -> BudgetView {
        let rows = self.rows();
        let latest = self.latest();
        let tokens_per_task = latest
            .map(|s| &s.metrics)
            .filter(|m| m.tasks_done > 0.0 && m.tokens() > 0.0)
            .map(|m| m.tokens() / m.tasks_done);
        let known: Vec<f64> = rows
            .iter()
            .filter_map(|r| match r.limit {
                Limit::Known { target, .. } => Some(target),
                _ => None,
            })
            .collect();
        let admitted_tpm = (!known.is_empty()).then(|| known.iter().sum());
        BudgetView {
            at: latest.map(|s| s.at),
            rows,
            backlog,
            tokens_per_task,
            admitted_tpm,
            drain: backlog.map_or(Drain::Unknown, |b| {
                drain_time(b.total(), tokens_per_task, admitted_tpm)
            }),
            problem: None,
        }
    }

    fn rows(&self) -> Vec<DeploymentRow> {
        let Some(latest) = self.latest() else {
            return Vec::new();
        };
        let minute = self.since(MINUTE);
        let recent = self.since(RECENT);
        let elapsed = |from: &BudgetSample| (latest.at - from.at).to_std().unwrap_or_default();
        let before = |from: Option<&BudgetSample>, name: &str| {
            from.map(|s| s.metrics.deployments.get(name).cloned().unwrap_or_default())
        };
        latest
            .metrics
            .deployments
            .iter()
            .map(|(name, now)| {
                let a_minute_ago = before(minute, name);
                let rate = |read: fn(&DeploymentMetrics) -> f64| {
                    let then = a_minute_ago.as_ref()?;
                    per_minute(read(then), read(now), elapsed(minute?))
                };
                let rate_limited_recent = before(recent, name).and_then(|then| {
                    let count = growth(then.rate_limited(), now.rate_limited());
                    let rate =
                        per_minute(then.rate_limited(), now.rate_limited(), elapsed(recent?))?;
                    Some((count, rate))
                });
                DeploymentRow {
                    name: name.clone(),
                    tokens_per_minute: match &now.budget {
                        Some(b) => Some(b.tokens_last_minute),
                        None => rate(|d| d.tokens),
                    },
                    tokens_total: now.tokens,
                    limit: limit_of(now.budget.as_ref()),
                    requests_per_minute: rate(DeploymentMetrics::requests_total),
                    request_limit: now.budget.and_then(|b| b.request_limit),
                    requests_total: now.requests_total(),
                    rate_limited_total: now.rate_limited(),
                    rate_limited_recent,
                    window: now.budget.map(|b| (b.window, b.in_flight)),
                }
            })
            .collect()
    }
}

fn limit_of(budget: Option<&BudgetGauges>) -> Limit {
    match budget {
        None => Limit::Unlimited,
        Some(BudgetGauges {
            token_limit: Some(limit),
            ..
        }) => Limit::Known {
            limit: *limit,
            target: (limit * TARGET_SHARE).floor().max(1.0),
        },
        Some(_) => Limit::LearnedFromHeaders,
    }
}

/// The samples of the handler's metrics, shared by every watcher of the view.
#[derive(Debug, Default)]
pub struct Sampler {
    state: Mutex<(History, Option<String>)>,
}

impl Sampler {
    /// Reads the handlers' metrics from `endpoints` (their sum: the fleet's) unless a fresh
    /// sample is kept, and returns the view's figures with `backlog`. A failure is the view's
    /// `problem`.
    pub async fn sample(
        &self,
        endpoints: &[crate::HandlerEndpoint],
        backlog: Option<Backlog>,
    ) -> BudgetView {
        let mut state = self.state.lock().await;
        let fresh = state.0.latest().is_some_and(|s| {
            (Utc::now() - s.at).to_std().unwrap_or_default() < FRESH && state.1.is_none()
        });
        if !fresh {
            match read(endpoints).await {
                Ok(metrics) => {
                    state.0.push(BudgetSample {
                        at: Utc::now(),
                        metrics,
                    });
                    state.1 = None;
                }
                Err(e) => state.1 = Some(e.to_string()),
            }
        }
        let mut view = state.0.view(backlog);
        view.problem = state.1.clone();
        view
    }
}

/// The backlog of [`TASK_QUEUE`] among `queues` (none until they were sampled).
pub fn backlog(queues: &[crate::queues::QueueRow]) -> Option<Backlog> {
    queues
        .iter()
        .find(|q| q.entity.path == TASK_QUEUE)
        .map(|q| Backlog {
            active: q.sample.active,
            scheduled: q.sample.scheduled,
        })
}

/// The view of `dashboard` now, its backlog taken from `snapshot`.
pub async fn view(dashboard: &crate::Dashboard, snapshot: &crate::live::Snapshot) -> BudgetView {
    let endpoints = dashboard
        .handler_metrics
        .get()
        .map_or(&[][..], Vec::as_slice);
    dashboard
        .budget
        .sample(endpoints, backlog(&snapshot.queues))
        .await
}

/// Every instance's metrics, added up: a sample is the fleet's or none (one instance missing
/// would look like its counters going back).
async fn read(endpoints: &[crate::HandlerEndpoint]) -> Result<HandlerMetrics, MetricsError> {
    if endpoints.is_empty() {
        return Err(MetricsError::NoAddress);
    }
    let texts = crate::metrics::fetch_handlers(endpoints).await;
    let mut fleet = HandlerMetrics::default();
    for (endpoint, text) in endpoints.iter().zip(texts) {
        let text = text.map_err(|e| MetricsError::Fetch {
            url: endpoint.url.clone(),
            message: e.to_string(),
        })?;
        fleet.merge(HandlerMetrics::parse(&text)?);
    }
    Ok(fleet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler_metrics::tests::{CAPTURED, WITH_BUDGET};

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_760_000_000 + secs, 0).unwrap()
    }

    fn with_429s(ok: f64, refused: f64) -> HandlerMetrics {
        let mut m = HandlerMetrics::parse(WITH_BUDGET).unwrap();
        let d = m.deployments.get_mut("gpt-4o-mini").unwrap();
        d.requests.insert("ok".into(), ok);
        d.requests.insert("429".into(), refused);
        m
    }

    #[test]
    fn the_429_rate_comes_from_two_samples() {
        let mut history = History::default();
        history.push(BudgetSample {
            at: at(0),
            metrics: with_429s(40.0, 6.0),
        });
        assert_eq!(
            history.view(None).rows[0].rate_limited_recent,
            None,
            "one sample gives no rate"
        );
        history.push(BudgetSample {
            at: at(120),
            metrics: with_429s(70.0, 16.0),
        });
        let row = &history.view(None).rows[0];
        assert_eq!(row.name, "gpt-4o-mini");
        assert_eq!(row.rate_limited_total, 16.0);
        assert_eq!(
            row.rate_limited_recent,
            Some((10.0, 5.0)),
            "10 in 2 minutes"
        );
        assert_eq!(
            row.tokens_per_minute,
            Some(4200.0),
            "the budget's own charge"
        );
        assert_eq!(row.window, Some((4.0, 3.0)));
        assert_eq!(row.request_limit, Some(100.0));
        assert_eq!(
            row.limit,
            Limit::Known {
                limit: 10_000.0,
                target: 9_500.0
            }
        );
        // Requests per minute over the last minute only: the first sample is older.
        assert_eq!(row.requests_per_minute, None);
        assert_eq!(per_minute(46.0, 86.0, Duration::from_secs(120)), Some(20.0));
        assert_eq!(
            per_minute(46.0, 86.0, Duration::from_secs(2)),
            Some(40.0),
            "not x30"
        );
        assert_eq!(
            per_minute(46.0, 4.0, Duration::from_secs(90)),
            Some(4.0 / 1.5),
            "restarted"
        );
        assert_eq!(per_minute(1.0, 2.0, Duration::ZERO), None);
    }

    #[test]
    fn samples_older_than_the_recent_span_are_forgotten() {
        let mut history = History::default();
        for (secs, refused) in [(0, 0.0), (200, 4.0), (400, 10.0)] {
            history.push(BudgetSample {
                at: at(secs),
                metrics: with_429s(40.0, refused),
            });
        }
        let row = &history.view(None).rows[0];
        assert_eq!(row.rate_limited_recent, Some((6.0, 1.8)));
    }

    #[test]
    fn the_drain_time_is_the_backlog_s_tokens_over_what_the_budgets_admit() {
        let mut history = History::default();
        history.push(BudgetSample {
            at: at(0),
            metrics: HandlerMetrics::parse(WITH_BUDGET).unwrap(),
        });
        let view = history.view(Some(Backlog {
            active: 90,
            scheduled: 10,
        }));
        // 4200 tokens charged in the fixture's minute are not usage: no tokens used yet.
        assert_eq!((view.tokens_per_task, view.drain), (None, Drain::Unknown));
        assert_eq!(view.admitted_tpm, Some(9_500.0), "95 % of the known limit");
        assert_eq!(
            drain_time(100, Some(190.0), Some(9_500.0)),
            Drain::In(Duration::from_secs(120))
        );
        assert_eq!(drain_time(0, None, None), Drain::Empty);
        assert_eq!(drain_time(5, Some(190.0), None), Drain::Unknown);

        let offline = HandlerMetrics::parse(CAPTURED).unwrap();
        let mut history = History::default();
        history.push(BudgetSample {
            at: at(0),
            metrics: offline,
        });
        let view = history.view(Some(Backlog {
            active: 3,
            scheduled: 0,
        }));
        assert_eq!(view.tokens_per_task, Some(327.0 / 6.0));
        assert_eq!(view.admitted_tpm, None, "the offline provider is unlimited");
        assert_eq!(view.drain, Drain::Unknown);
        assert!(view.rows.iter().all(|r| r.limit == Limit::Unlimited));
    }
}
