//! A document's trace laid out as a waterfall: one row per span in start order, indented by
//! parentage, on a time axis from the submission. A consumer span's bar starts with its
//! message's queue wait (`docflow.queue_wait_ms`) and goes on with the execution; a task's
//! spans carry its kind as their lane (from the task id, inherited by their children). Pure:
//! the page draws what this computes.

use std::collections::HashMap;

use crate::traces::{Span, SpanId, SpanKind, SpanStatus, TraceId, TraceStore};
use docflow_app::pipeline::state::DocumentState;

/// The waterfall of one trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Waterfall {
    /// The trace.
    pub trace_id: TraceId,
    /// The axis's length: from the first span's start to the last one's end.
    pub total_ms: f64,
    /// One per span, in start order.
    pub rows: Vec<Row>,
}

/// One span's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The span.
    pub span_id: SpanId,
    /// Ancestors in the trace (the indentation).
    pub depth: usize,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: SpanKind,
    /// The task kind it works for (`summarize`…), if any.
    pub lane: Option<String>,
    /// Start, milliseconds after the axis's origin.
    pub start_ms: f64,
    /// Its own duration.
    pub duration_ms: f64,
    /// A consumer's queue wait before it started (from its message's send at the earliest).
    pub wait_ms: Option<f64>,
    /// Where the bar (its wait included) starts, in percent of the axis.
    pub left_pct: f64,
    /// The wait's width, in percent.
    pub wait_pct: f64,
    /// The execution's width, in percent.
    pub run_pct: f64,
    /// Its delivery count, for a consumer.
    pub delivery: Option<i64>,
    /// Marks on the bar: a provider's 429s, with their waits.
    pub marks: Vec<Mark>,
    /// Spans it links to (a fan-in links every task).
    pub links: usize,
    /// What failed, when its status is an error.
    pub error: Option<String>,
    /// What the row says besides its name: function, model, tokens, waits.
    pub facts: Vec<String>,
}

/// A point on a bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Where, in percent of the axis.
    pub at_pct: f64,
    /// What happened there.
    pub label: String,
}

/// The waterfall of `spans` (one trace's); `None` when there are none.
pub fn layout(trace_id: TraceId, spans: &[Span]) -> Option<Waterfall> {
    let origin = spans.iter().map(|s| s.start_time_unix_nano).min()?;
    let end = spans
        .iter()
        .map(|s| s.end_time_unix_nano.max(s.start_time_unix_nano))
        .max()?;
    let total_ns = (end - origin).max(1) as f64;
    let pct = |ns: u64| ns as f64 * 100.0 / total_ns;
    let by_id: HashMap<SpanId, &Span> = spans.iter().map(|s| (s.span_id, s)).collect();
    let mut order: Vec<&Span> = spans.iter().collect();
    order.sort_by_key(|s| (s.start_time_unix_nano, depth(s, &by_id), s.name.clone()));
    let rows = order
        .into_iter()
        .map(|s| {
            let start = s.start_time_unix_nano;
            let stop = s.end_time_unix_nano.max(start);
            let wait_ns = (s.kind == SpanKind::Consumer)
                .then(|| s.attr_i64("docflow.queue_wait_ms"))
                .flatten()
                .map(|ms| u64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000));
            // A message waits from its send at the earliest: the reported wait counts from
            // its `EnqueuedTime`, which the Functions host (and the local one) passes with
            // whole seconds, so it can exceed the real wait by up to a second.
            let sent = s
                .parent_span_id
                .and_then(|p| by_id.get(&p))
                .filter(|p| p.kind == SpanKind::Producer)
                .map_or(origin, |p| p.start_time_unix_nano.min(start));
            let waited_from = start
                .saturating_sub(wait_ns.unwrap_or(0))
                .max(sent)
                .max(origin);
            let wait_ns = wait_ns.map(|_| start - waited_from);
            Row {
                span_id: s.span_id,
                depth: depth(s, &by_id),
                name: s.name.clone(),
                kind: s.kind,
                lane: lane(s, &by_id),
                start_ms: ms(start - origin),
                duration_ms: ms(stop - start),
                wait_ms: wait_ns.map(ms),
                left_pct: pct(waited_from - origin),
                wait_pct: pct(start - waited_from),
                run_pct: pct(stop - start),
                delivery: (s.kind == SpanKind::Consumer)
                    .then(|| s.attr_i64("messaging.servicebus.message.delivery_count"))
                    .flatten(),
                marks: s
                    .events
                    .iter()
                    .filter(|e| e.name == "rate_limited")
                    .map(|e| Mark {
                        at_pct: pct(e.time_unix_nano.clamp(origin, end) - origin),
                        label: match e.attr_i64("docflow.retry_after_ms") {
                            Some(w) => format!("429, retry after {w} ms"),
                            None => "429".to_owned(),
                        },
                    })
                    .collect(),
                links: s.links.len(),
                error: (s.status.code == SpanStatus::Error).then(|| {
                    Some(s.status.message.clone())
                        .filter(|m| !m.is_empty())
                        .or_else(|| s.attr("error.type").map(ToString::to_string))
                        .unwrap_or_else(|| "error".to_owned())
                }),
                facts: facts(s, wait_ns),
            }
        })
        .collect();
    Some(Waterfall {
        trace_id,
        total_ms: ms(end - origin),
        rows,
    })
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1_000_000.0
}

/// Ancestors present in the trace (a cycle, which a well-formed trace has not, stops it).
fn depth(span: &Span, by_id: &HashMap<SpanId, &Span>) -> usize {
    let mut depth = 0;
    let mut at = span;
    while let Some(parent) = at.parent_span_id.and_then(|p| by_id.get(&p)) {
        depth += 1;
        if depth > by_id.len() {
            break;
        }
        at = parent;
    }
    depth
}

/// The task kind a span works for: its own task id's (`{documentId}:{kind}`, from the
/// `task_id` attribute or an `ai-tasks` message id), else its nearest ancestor's.
fn lane(span: &Span, by_id: &HashMap<SpanId, &Span>) -> Option<String> {
    let mut at = span;
    for _ in 0..=by_id.len() {
        let id = at.attr_str("task_id").or_else(|| {
            (at.attr_str("messaging.destination.name") == Some("ai-tasks"))
                .then(|| at.attr_str("messaging.message.id"))
                .flatten()
        });
        if let Some((_, kind)) = id.and_then(|id| id.rsplit_once(':')) {
            return Some(kind.to_owned());
        }
        at = by_id.get(&at.parent_span_id?)?;
        // The fan-in handles one task's result but completes the whole document: what it
        // sets off belongs to no task.
        if !at.links.is_empty() {
            return None;
        }
    }
    None
}

/// The waterfall of a document's trace as received so far (`None`: no trace id, or no spans).
pub fn of_document(traces: &TraceStore, state: &DocumentState) -> Option<Waterfall> {
    let id = TraceId::parse(state.trace_id.as_deref()?)?;
    layout(id, &traces.trace(id))
}

/// A duration as the page writes it.
pub fn duration(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

fn facts(s: &Span, wait_ns: Option<u64>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(f) = s.attr_str("function") {
        out.push(f.to_owned());
    }
    let own = ms(s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano));
    match s.kind {
        SpanKind::Consumer => {
            if let Some(w) = wait_ns {
                out.push(format!("queued {}", duration(ms(w))));
            }
            out.push(format!("ran {}", duration(own)));
            if let Some(n) = s.attr_i64("messaging.servicebus.message.delivery_count")
                && n > 1
            {
                out.push(format!("delivery {n}"));
            }
        }
        SpanKind::Client if s.attr("gen_ai.operation.name").is_some() => {
            let model = s
                .attr_str("gen_ai.response.model")
                .or_else(|| s.attr_str("gen_ai.request.model"));
            if let Some(m) = model {
                out.push(m.to_owned());
            }
            if let (Some(i), Some(o)) = (
                s.attr_i64("gen_ai.usage.input_tokens"),
                s.attr_i64("gen_ai.usage.output_tokens"),
            ) {
                out.push(format!("{i} in / {o} out tokens"));
            }
            out.push(duration(own));
            let limited: Vec<i64> = s
                .events
                .iter()
                .filter(|e| e.name == "rate_limited")
                .map(|e| e.attr_i64("docflow.retry_after_ms").unwrap_or(0))
                .collect();
            if !limited.is_empty() {
                let waited: i64 = limited.iter().sum();
                out.push(format!("{}× 429, waited {} ms", limited.len(), waited));
            }
        }
        SpanKind::Internal if s.attr("docflow.budget.waited_ms").is_some() => {
            let waited = s.attr_i64("docflow.budget.waited_ms").unwrap_or(0);
            out.push(format!("held {waited} ms"));
            if let Some(t) = s.attr_i64("docflow.budget.tokens") {
                out.push(format!("{t} tokens"));
            }
            if s.attr("docflow.budget.admitted") == Some(&crate::traces::AttrValue::Bool(false)) {
                out.push("not admitted".to_owned());
            }
        }
        _ => out.push(duration(own)),
    }
    if !s.links.is_empty() {
        out.push(format!("{} links", s.links.len()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traces::{AttrValue, Link, SpanEvent, otlp};

    const MS: u64 = 1_000_000;
    const T0: u64 = 1_796_439_617_000_000_000;

    fn span(
        id: u64,
        parent: Option<u64>,
        name: &str,
        kind: SpanKind,
        from_ms: u64,
        to_ms: u64,
    ) -> Span {
        Span {
            trace_id: TraceId(7),
            span_id: SpanId(id),
            parent_span_id: parent.map(SpanId),
            name: name.to_owned(),
            kind,
            start_time_unix_nano: T0 + from_ms * MS,
            end_time_unix_nano: T0 + to_ms * MS,
            attributes: Vec::new(),
            events: Vec::new(),
            links: Vec::new(),
            status: Default::default(),
        }
    }

    fn with(mut s: Span, attributes: &[(&str, AttrValue)]) -> Span {
        s.attributes
            .extend(attributes.iter().map(|(k, v)| (k.to_string(), v.clone())));
        s
    }

    fn str(v: &str) -> AttrValue {
        AttrValue::Str(v.to_owned())
    }

    /// A submission at 0, its task sent at 10, processed from 40 to 90 after 30 ms in the
    /// queue, its provider call with a 429, and the fan-in at 100.
    fn trace() -> Vec<Span> {
        let mut chat = with(
            span(5, Some(4), "chat gpt-4o-mini", SpanKind::Client, 50, 80),
            &[
                ("gen_ai.operation.name", str("chat")),
                ("gen_ai.request.model", str("gpt-4o-mini")),
                ("gen_ai.usage.input_tokens", AttrValue::Int(120)),
                ("gen_ai.usage.output_tokens", AttrValue::Int(8)),
            ],
        );
        chat.events.push(SpanEvent {
            name: "rate_limited".into(),
            time_unix_nano: T0 + 60 * MS,
            attributes: vec![("docflow.retry_after_ms".into(), AttrValue::Int(15))],
        });
        let mut fan_in = with(
            span(
                6,
                Some(3),
                "process task-results",
                SpanKind::Consumer,
                100,
                110,
            ),
            &[
                ("task_id", str("doc:summarize")),
                ("docflow.queue_wait_ms", AttrValue::Int(5)),
            ],
        );
        fan_in.links.push(Link {
            trace_id: TraceId(7),
            span_id: SpanId(4),
        });
        vec![
            fan_in,
            chat,
            with(
                span(4, Some(3), "process ai-tasks", SpanKind::Consumer, 40, 90),
                &[
                    ("messaging.destination.name", str("ai-tasks")),
                    ("messaging.message.id", str("doc:summarize")),
                    ("docflow.queue_wait_ms", AttrValue::Int(30)),
                    (
                        "messaging.servicebus.message.delivery_count",
                        AttrValue::Int(2),
                    ),
                ],
            ),
            span(3, Some(1), "send ai-tasks", SpanKind::Producer, 10, 11),
            span(1, None, "POST /documents", SpanKind::Server, 0, 20),
            span(
                8,
                Some(6),
                "send analysis-completed",
                SpanKind::Producer,
                105,
                106,
            ),
        ]
    }

    #[test]
    fn rows_follow_start_order_indented_by_parentage() {
        let w = layout(TraceId(7), &trace()).unwrap();
        let rows: Vec<(&str, usize)> = w.rows.iter().map(|r| (r.name.as_str(), r.depth)).collect();
        assert_eq!(
            rows,
            vec![
                ("POST /documents", 0),
                ("send ai-tasks", 1),
                ("process ai-tasks", 2),
                ("chat gpt-4o-mini", 3),
                ("process task-results", 2),
                ("send analysis-completed", 3),
            ]
        );
        assert_eq!(w.total_ms, 110.0);
        assert!(layout(TraceId(7), &[]).is_none());
    }

    #[test]
    fn a_consumer_bar_is_its_queue_wait_then_its_execution() {
        let w = layout(TraceId(7), &trace()).unwrap();
        let task = &w.rows[2];
        assert_eq!(task.wait_ms, Some(30.0));
        let pct = |ms: f64| ms * 100.0 / 110.0;
        assert!((task.left_pct - pct(10.0)).abs() < 1e-9, "{task:?}");
        assert!((task.wait_pct - pct(30.0)).abs() < 1e-9);
        assert!((task.run_pct - pct(50.0)).abs() < 1e-9);
        assert_eq!(task.delivery, Some(2));
        assert!(
            task.facts.contains(&"delivery 2".to_owned()),
            "{:?}",
            task.facts
        );
        let mut rounded = trace();
        rounded[2].attributes[2].1 = AttrValue::Int(900);
        let w = layout(TraceId(7), &rounded).unwrap();
        assert_eq!(
            w.rows[2].wait_ms,
            Some(30.0),
            "a reported wait longer than since the send (EnqueuedTime in whole seconds) is cut at the send"
        );
        let server = &w.rows[0];
        assert_eq!(
            (server.wait_ms, server.wait_pct, server.left_pct),
            (None, 0.0, 0.0)
        );
    }

    #[test]
    fn a_tasks_spans_share_its_lane_but_not_what_the_fan_in_sets_off() {
        let w = layout(TraceId(7), &trace()).unwrap();
        let lanes: Vec<Option<&str>> = w.rows.iter().map(|r| r.lane.as_deref()).collect();
        assert_eq!(
            lanes,
            vec![
                None,
                None,
                Some("summarize"),
                Some("summarize"),
                Some("summarize"),
                None
            ]
        );
        let chat = &w.rows[3];
        assert_eq!(
            chat.facts,
            vec![
                "gpt-4o-mini",
                "120 in / 8 out tokens",
                "30 ms",
                "1× 429, waited 15 ms"
            ]
        );
        assert_eq!(chat.marks.len(), 1);
        assert!((chat.marks[0].at_pct - 60.0 * 100.0 / 110.0).abs() < 1e-9);
        assert_eq!(w.rows[4].links, 1);
        assert!(w.rows[4].facts.contains(&"1 links".to_owned()));
    }

    #[test]
    fn the_captured_trace_lays_out_one_lane_per_task() {
        let spans: Vec<Span> = include_str!("../tests/fixtures/otlp-document.jsonl")
            .lines()
            .flat_map(|b| otlp::parse(b.as_bytes()).unwrap())
            .collect();
        let id = TraceId::parse("0585e92f14de945d0dbb84ae3e35bed0").unwrap();
        let ours: Vec<Span> = spans.into_iter().filter(|s| s.trace_id == id).collect();
        let w = layout(id, &ours).unwrap();
        assert_eq!(w.rows.len(), ours.len());
        assert_eq!(w.rows[0].name, "POST /documents");
        let mut lanes: Vec<&str> = w.rows.iter().filter_map(|r| r.lane.as_deref()).collect();
        lanes.sort();
        lanes.dedup();
        assert_eq!(lanes, vec!["classify", "sentiment", "summarize"]);
        for r in w.rows.iter().filter(|r| r.name == "process ai-tasks") {
            assert!(r.wait_pct > 0.0 && r.run_pct > 0.0, "{r:?}");
            assert!(r.left_pct + r.wait_pct + r.run_pct <= 100.0 + 1e-9);
        }
        let starts: Vec<f64> = w.rows.iter().map(|r| r.start_ms).collect();
        assert!(starts.windows(2).all(|p| p[0] <= p[1]));
    }
}
