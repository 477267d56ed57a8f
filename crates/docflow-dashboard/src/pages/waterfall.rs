//! A document's trace on its page: the [`Waterfall`] drawn as rows of bars (widths in percent
//! of the axis), the queue wait of a consumer before its execution, 429s as marks, each row's
//! facts beside it, and the trace id to look it up in any trace viewer.

use maud::{Markup, html};

use crate::waterfall::{Row, Waterfall, duration};

/// The trace section of a document with `trace_id` (none for documents from before it was
/// recorded) and what arrived of it.
pub fn section(trace_id: Option<&str>, waterfall: Option<&Waterfall>) -> Markup {
    html! {
        h2 { "Trace" }
        @match (trace_id, waterfall) {
            (None, _) => p.empty #no-spans { "This document records no trace id." },
            (Some(id), None) => p.empty #no-spans {
                "No spans arrived for trace " code { (id) } ": the handler traced nothing for this document "
                "(it exports to the dashboard when started by docflow dev; spans come within a second)."
            },
            (Some(id), Some(w)) => (chart(id, w)),
        }
    }
}

fn chart(id: &str, w: &Waterfall) -> Markup {
    html! {
        div.waterfall data-trace-id=(id) data-spans=(w.rows.len()) {
            p.trace-id { "Trace id " code { (id) } " · " (w.rows.len()) " spans · "
                (duration(w.total_ms)) " from the submission" }
            div.wf-row.wf-head {
                div.wf-label { "Span" }
                div.wf-track.wf-axis {
                    @for i in 0..=4u32 {
                        span style={"left:" (i * 25) "%"} { (duration(w.total_ms * f64::from(i) / 4.0)) }
                    }
                }
                div.wf-facts { "Details" }
            }
            @for row in &w.rows { (row_html(row)) }
            p.hint { span.wf-key.wf-wait-key {} " queue wait  " span.wf-key {} " execution  "
                span.wf-key.wf-mark-key {} " 429" }
        }
    }
}

fn pct(x: f64) -> String {
    format!("{:.3}%", x.clamp(0.0, 100.0))
}

fn row_html(row: &Row) -> Markup {
    let lane_style = row
        .lane
        .as_deref()
        .map(|l| format!("--lane:{}", lane_color(l)));
    html! {
        div class={"wf-row " (row.kind.as_str()) @if row.error.is_some() { " failed" }}
            data-name=(row.name) data-kind=(row.kind.as_str()) data-lane=[row.lane.as_deref()]
            data-span-id=(row.span_id.to_string()) style=[lane_style] {
            div.wf-label style={"padding-left:" (format!("{:.1}", 0.3 + row.depth as f64 * 0.9)) "rem"} {
                span.wf-name title=(row.name) { (row.name) }
                @if let Some(lane) = &row.lane { " " span.wf-lane { (lane) } }
            }
            div.wf-track {
                @if let Some(wait) = row.wait_ms {
                    span.wf-wait style={"left:" (pct(row.left_pct)) ";width:" (pct(row.wait_pct))}
                        title={"queued " (duration(wait))} {}
                }
                span.wf-bar style={"left:" (pct(row.left_pct + row.wait_pct)) ";width:" (pct(row.run_pct))}
                    title={(row.name) ": " (duration(row.duration_ms)) " from " (duration(row.start_ms))} {}
                @for mark in &row.marks {
                    span.wf-mark style={"left:" (pct(mark.at_pct))} title=(mark.label) {}
                }
            }
            div.wf-facts {
                (row.facts.join(" · "))
                @if let Some(e) = &row.error { " " span.wf-error { (e) } }
            }
        }
    }
}

/// A steady colour per task kind.
fn lane_color(lane: &str) -> String {
    let hue = lane
        .bytes()
        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)))
        % 360;
    format!("hsl({hue} 60% 42%)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traces::{Span, SpanId, SpanKind, TraceId};

    const ID: &str = "0af7651916cd43dd8448eb211c80319c";

    #[test]
    fn no_spans_is_said_plainly() {
        let html = section(Some(ID), None).into_string();
        assert!(html.contains("No spans arrived for trace"), "{html}");
        assert!(html.contains(ID));
        assert!(!html.contains("wf-bar"));
        assert!(section(None, None).into_string().contains("no trace id"));
    }

    #[test]
    fn a_bar_per_span_and_a_wait_segment_per_waiting_consumer() {
        let span = |id: u64, parent: Option<u64>, kind: SpanKind, wait: Option<i64>| Span {
            trace_id: TraceId(1),
            span_id: SpanId(id),
            parent_span_id: parent.map(SpanId),
            name: format!("span {id}"),
            kind,
            start_time_unix_nano: id * 1_000_000,
            end_time_unix_nano: id * 1_000_000 + 500_000,
            attributes: wait
                .map(|w| {
                    vec![(
                        "docflow.queue_wait_ms".to_owned(),
                        crate::traces::AttrValue::Int(w),
                    )]
                })
                .unwrap_or_default(),
            events: Vec::new(),
            links: Vec::new(),
            status: Default::default(),
        };
        let spans = [
            span(1, None, SpanKind::Server, None),
            span(2, Some(1), SpanKind::Producer, None),
            span(4, Some(2), SpanKind::Consumer, Some(1)),
        ];
        let w = crate::waterfall::layout(TraceId(1), &spans).unwrap();
        let html = section(Some(ID), Some(&w)).into_string();
        assert_eq!(html.matches("class=\"wf-bar\"").count(), 3);
        assert_eq!(html.matches("class=\"wf-wait\"").count(), 1);
        assert!(html.contains(&format!("data-trace-id=\"{ID}\"")));
    }
}
