//! `/documents/{id}`: one document as its state record holds it: status, correlation id and
//! timestamps, the errors (latest first), its trace as a waterfall, each task, and the results.

use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::{badge, time};
use crate::waterfall::Waterfall;
use docflow_app::pipeline::state::{DocumentState, TaskStatus};

/// A task's stored result, as far as the page shows it.
#[derive(Debug, Clone)]
pub struct ResultPreview {
    /// The task kind.
    pub kind: String,
    /// The result's output as JSON, pretty, clipped.
    pub json: String,
}

/// The view's body: the heading and the live part.
pub fn body(
    state: &DocumentState,
    results: &[ResultPreview],
    waterfall: Option<&Waterfall>,
    now: DateTime<Utc>,
) -> Markup {
    html! {
        p { a href="/" { "← Documents" } }
        h1 { "Document " code { (state.document_id) } }
        div #document { (detail(state, results, waterfall, now)) }
    }
}

/// What a live update replaces.
pub fn detail(
    state: &DocumentState,
    results: &[ResultPreview],
    waterfall: Option<&Waterfall>,
    now: DateTime<Utc>,
) -> Markup {
    let mut errors: Vec<_> = state
        .tasks
        .iter()
        .filter_map(|(kind, t)| t.error.as_ref().map(|e| (t.finished_at, kind, e)))
        .collect();
    errors.sort_by_key(|e| std::cmp::Reverse(e.0));
    html! {
        dl.facts data-status=(state.status.as_str()) {
            dt { "Status" } dd #document-status { (badge(state.status.as_str()))
                @if state.revision > 0 { " (revision " (state.revision) ")" } }
            dt { "Correlation id" } dd { code { (state.correlation_id) } }
            dt { "Submitted" } dd { (time(state.submitted_at)) " (" (super::age(state.submitted_at, now)) " ago)" }
            dt { "Updated" } dd { (time(state.updated_at)) }
            @if let Some(at) = state.completed_at { dt { "Final" } dd { (time(at)) } }
            @if let Some(at) = state.deadline_at { dt { "Deadline" } dd { (time(at)) } }
            @if let Some(f) = &state.filename { dt { "File" } dd { (f) } }
            dt { "Content" } dd { (state.source_content_type) ", "
                @if let Some(size) = state.content.size_bytes { (size) " bytes of text" } }
            dt { "Analyses" } dd { (state.options.analyses.join(", ")) }
            @if let Some(n) = &state.notification {
                dt { "Callback" } dd { (n.status) " after " (n.attempts) " attempt(s)"
                    @if let Some(e) = &n.last_error { ": " (e) } }
            }
        }
        @if !errors.is_empty() {
            h2 { "Errors, latest first" }
            ol.errors {
                @for (at, kind, e) in &errors {
                    li {
                        strong { (kind) } " — " code { (e.reason) } ": " (e.description)
                        @if e.dead_lettered {
                            " " a.badge.failed href={"/dead-letters?search=" (super::encode(&state.document_id))}
                                title="its dead letters (searched by this document's id)" { "dead-lettered" }
                        }
                        @if let Some(at) = at { " " small { (time(*at)) } }
                    }
                }
            }
        }
        (super::waterfall::section(state.trace_id.as_deref(), waterfall))
        h2 { "Tasks" }
        table.tasks {
            thead { tr {
                th { "Kind" } th { "Status" } th.num { "Attempts" } th { "Model" }
                th.num { "Tokens in / out" } th.num { "Provider time" } th { "Queued" } th { "Finished" } th { "Error" }
            } }
            tbody {
                @for (kind, t) in &state.tasks {
                    @let status = match t.status {
                        TaskStatus::Pending => "pending",
                        TaskStatus::Succeeded => "succeeded",
                        TaskStatus::Failed => "failed",
                    };
                    tr data-kind=(kind) data-status=(status) {
                        td { code { (kind) } }
                        td { (badge(status)) }
                        td.num { (t.attempts) }
                        td { (t.model.as_deref().unwrap_or("-")) }
                        td.num { (t.usage.input_tokens) " / " (t.usage.output_tokens) }
                        td.num { @match t.duration_ms { Some(ms) => { (ms) " ms" }, None => "-" } }
                        td { (time(t.queued_at)) }
                        td { @if let Some(at) = t.finished_at { (time(at)) } }
                        td.error { @if let Some(e) = &t.error { code { (e.reason) } ": " (e.description) } }
                    }
                }
            }
        }
        @if state.tasks.is_empty() { p.empty { "The analysis has not started yet." } }
        @if !results.is_empty() {
            h2 { "Results" }
            @for r in results {
                details open {
                    summary { code { (r.kind) } }
                    pre { (r.json) }
                }
            }
        }
        @if let Some(analysis) = &state.analysis {
            p { "Combined analysis: " code { (analysis.container) "/" (analysis.blob) } }
        }
    }
}
