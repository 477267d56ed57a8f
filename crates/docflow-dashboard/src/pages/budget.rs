//! `/budget`: per model deployment, tokens and requests per minute against its limit, `429`s,
//! the concurrency window, and the backlog of `ai-tasks` with its expected drain time, live.

use std::time::Duration;

use maud::{Markup, html};

use crate::budget::{BudgetView, DeploymentRow, Drain, Limit, RECENT, TASK_QUEUE};

/// The view's body.
pub fn body(view: &BudgetView) -> Markup {
    html! {
        h1 { "LLM budget" }
        p.hint {
            "Per model deployment, from the handler's metrics sampled every 2 s while this page is open. "
            "Tokens/min: what the deployment's budget charged over the last minute (without a budget, the tokens used over the last minute, or since the page opened). "
            "The budget aims at 95 % of a known limit. 429s: since the handler started, then over the last "
            (RECENT.as_secs() / 60) " minutes sampled."
        }
        div #budget { (live_html(view)) }
    }
}

/// Everything that changes; a live update replaces it.
pub fn live_html(view: &BudgetView) -> Markup {
    html! {
        @if let Some(problem) = &view.problem {
            p.problem role="alert" { (problem) }
        }
        table.budget {
            thead { tr {
                th { "Deployment" } th.num { "Tokens/min" } th { "Token limit" }
                th.num { "Tokens (total)" } th.num { "Requests/min" } th.num { "429s" }
                th.num { "Window" } th.num { "In flight" }
            } }
            tbody {
                @for row in &view.rows { (row_html(row)) }
                @if view.rows.is_empty() {
                    tr { td.empty colspan="8" { "No LLM calls yet." } }
                }
            }
        }
        h2 { "Backlog" }
        dl.facts #backlog {
            dt { code { (TASK_QUEUE) } }
            dd {
                @match view.backlog {
                    Some(b) => { (b.total()) " tasks (" (b.active) " active, " (b.scheduled) " scheduled retries)" }
                    None => "unknown (the queue was not sampled)",
                }
            }
            dt { "Tokens per task" }
            dd { (view.tokens_per_task.map_or("unknown".to_string(), |t| format!("{t:.0}"))) }
            dt { "Tokens/min admitted" }
            dd { (view.admitted_tpm.map_or("unknown (no limit known)".to_string(), count)) }
            dt { "Expected drain time" }
            dd.drain { (drain_text(view.drain)) }
        }
    }
}

fn row_html(row: &DeploymentRow) -> Markup {
    html! {
        tr data-deployment=(row.name) data-tokens=(row.tokens_total) data-tpm=[row.tokens_per_minute] {
            td { code { (row.name) } }
            td.num { (optional(row.tokens_per_minute)) }
            td { (limit_text(row.limit)) }
            td.num { (count(row.tokens_total)) }
            td.num {
                (optional(row.requests_per_minute))
                @if let Some(limit) = row.request_limit { " of " (count(limit)) }
                " (" (count(row.requests_total)) " total)"
            }
            td.num {
                (count(row.rate_limited_total))
                @if let Some((n, rate)) = row.rate_limited_recent {
                    small { " · " (count(n)) " recent, " (format!("{rate:.1}")) "/min" }
                }
            }
            td.num { (row.window.map_or("-".into(), |(w, _)| count(w))) }
            td.num { (row.window.map_or("-".into(), |(_, f)| count(f))) }
        }
    }
}

fn count(n: f64) -> String {
    format!("{n:.0}")
}

fn optional(n: Option<f64>) -> String {
    n.map_or("-".into(), count)
}

/// How a limit reads.
pub fn limit_text(limit: Limit) -> String {
    match limit {
        Limit::Known { limit, target } => format!("{} (target {})", count(limit), count(target)),
        Limit::LearnedFromHeaders => "learned from headers".into(),
        Limit::Unlimited => "unlimited".into(),
    }
}

/// How a drain time reads.
pub fn drain_text(drain: Drain) -> String {
    match drain {
        Drain::Empty => "nothing waits".into(),
        Drain::Unknown => "unknown".into(),
        Drain::In(d) => about(d),
    }
}

fn about(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("about {secs} s"),
        60..3600 => format!("about {} min", secs.div_ceil(60)),
        _ => format!("about {:.1} h", secs as f64 / 3600.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_drain_times_read_as_words() {
        assert_eq!(
            limit_text(Limit::Known {
                limit: 10_000.0,
                target: 9_500.0
            }),
            "10000 (target 9500)"
        );
        assert_eq!(
            limit_text(Limit::LearnedFromHeaders),
            "learned from headers"
        );
        assert_eq!(
            drain_text(Drain::In(Duration::from_secs(120))),
            "about 2 min"
        );
        assert_eq!(drain_text(Drain::In(Duration::from_secs(7))), "about 7 s");
        assert_eq!(drain_text(Drain::Unknown), "unknown");
    }
}
