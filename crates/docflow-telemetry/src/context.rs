//! W3C trace context carried in message bodies (a custom handler's Service Bus output bindings
//! can set nothing but the body, and the host passes no trace context to a custom handler).

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use serde::{Deserialize, Serialize};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// A W3C trace context: what a docflow message carries as `trace`, and what Microsoft's SDKs
/// carry as the `traceparent` (or `Diagnostic-Id`) application property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceContext {
    /// `00-<trace id>-<parent span id>-<flags>`.
    pub traceparent: String,
    /// Vendor entries, passed on unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracestate: Option<String>,
    /// When the message carrying it was sent (`sentAt`, to the millisecond): the Functions
    /// host passes `EnqueuedTimeUtc` in whole seconds, so a consumer measures its queue wait
    /// from the later of the two (see [`TraceContext::queue_wait`]).
    #[serde(default, rename = "sentAt", skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl TraceContext {
    /// A context from a `traceparent` (and `tracestate`), if the traceparent is valid: version
    /// not `ff`, a non-zero trace id and parent id. Hex is read in either case and kept lower.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let parts: Vec<&str> = traceparent.trim().split('-').collect();
        let [version, trace, parent, flags] = parts.as_slice() else {
            return None;
        };
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
        let valid = hex(version, 2)
            && !version.eq_ignore_ascii_case("ff")
            && hex(trace, 32)
            && nonzero(trace)
            && hex(parent, 16)
            && nonzero(parent)
            && hex(flags, 2);
        valid.then(|| Self {
            traceparent: traceparent.trim().to_ascii_lowercase(),
            tracestate: tracestate
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            sent_at: None,
        })
    }

    /// The same context, stamped as sent now.
    pub fn sent_now(mut self) -> Self {
        self.sent_at = Some(chrono::Utc::now());
        self
    }

    /// How long a message waited from its enqueue to `now`: `enqueued` (whole seconds, as
    /// the host passes it) refined by `sent_at` when the message was sent within that second.
    /// Never negative (a sender's clock may run ahead).
    pub fn queue_wait(
        context: Option<&TraceContext>,
        enqueued: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<std::time::Duration> {
        let sent = context.and_then(|c| c.sent_at);
        let from = match (enqueued, sent) {
            (Some(e), Some(s)) => Some(e.max(s)),
            (e, s) => e.or(s),
        }?;
        Some((now - from).to_std().unwrap_or_default())
    }

    /// The trace id (32 lowercase hex digits).
    pub fn trace_id(&self) -> &str {
        &self.traceparent[3..35]
    }

    /// The parent span id (16 lowercase hex digits).
    pub fn span_id(&self) -> &str {
        &self.traceparent[36..52]
    }

    /// The application properties Microsoft's SDKs stamp a message with for this context:
    /// `Diagnostic-Id` and `traceparent` (and `tracestate` when there is one).
    pub fn application_properties(&self) -> Vec<(&'static str, String)> {
        let mut properties = vec![
            ("Diagnostic-Id", self.traceparent.clone()),
            ("traceparent", self.traceparent.clone()),
        ];
        if let Some(state) = &self.tracestate {
            properties.push(("tracestate", state.clone()));
        }
        properties
    }

    /// The context of `span` when an OpenTelemetry layer traces it; `None` otherwise.
    pub fn of_span(span: &tracing::Span) -> Option<Self> {
        let context = span.context();
        if !context.span().span_context().is_valid() {
            return None;
        }
        let mut carrier = HashMap::with_capacity(2);
        TraceContextPropagator::new().inject_context(&context, &mut carrier);
        Self::parse(
            carrier.get("traceparent")?,
            carrier.get("tracestate").map(String::as_str),
        )
    }

    /// The context of the current span, else `fallback` (what came in, passed on unchanged
    /// when nothing traces this process).
    pub fn current_or(fallback: Option<&TraceContext>) -> Option<Self> {
        Self::of_span(&tracing::Span::current()).or_else(|| fallback.cloned())
    }

    fn otel_context(&self) -> Option<opentelemetry::Context> {
        let mut carrier = HashMap::with_capacity(2);
        carrier.insert("traceparent".to_owned(), self.traceparent.clone());
        if let Some(state) = &self.tracestate {
            carrier.insert("tracestate".to_owned(), state.clone());
        }
        let context = TraceContextPropagator::new()
            .extract_with_context(&opentelemetry::Context::new(), &carrier);
        context.span().span_context().is_valid().then_some(context)
    }

    /// Parents `span` on this context. Must be called before the span is first entered; a
    /// span that is not traced (no OpenTelemetry layer) is left as it is.
    pub fn parent(&self, span: &tracing::Span) {
        if let Some(context) = self.otel_context() {
            // Not traced, or already started: either way there is nothing better to do.
            let _ = span.set_parent(context);
        }
    }

    /// Links `span` to this context (a fan-in links to every message it handles).
    pub fn link(&self, span: &tracing::Span) {
        if let Some(context) = self.otel_context() {
            span.add_link(context.span().span_context().clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_wait_is_refined_by_the_send_time() {
        let at = |ms: i64| chrono::DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap();
        let sent = TraceContext {
            sent_at: Some(at(700)),
            ..TraceContext::parse(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                None,
            )
            .unwrap()
        };
        let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_millis());
        // Enqueued in second 0 (whole seconds), sent at 0.7 s: waited 0.5 s, not 1.2 s.
        assert_eq!(
            ms(TraceContext::queue_wait(
                Some(&sent),
                Some(at(0)),
                at(1_200)
            )),
            Some(500)
        );
        // A retry scheduled later: its enqueue time wins.
        assert_eq!(
            ms(TraceContext::queue_wait(
                Some(&sent),
                Some(at(5_000)),
                at(5_300)
            )),
            Some(300)
        );
        assert_eq!(
            ms(TraceContext::queue_wait(None, Some(at(0)), at(1_200))),
            Some(1_200)
        );
        // A sender's clock ahead of ours: no negative wait.
        assert_eq!(
            ms(TraceContext::queue_wait(Some(&sent), None, at(600))),
            Some(0)
        );
        assert_eq!(TraceContext::queue_wait(None, None, at(0)), None);
        // Carried in the body as `sentAt`.
        let json = serde_json::to_value(&sent).unwrap();
        assert!(json["sentAt"].is_string(), "{json}");
        assert_eq!(serde_json::from_value::<TraceContext>(json).unwrap(), sent);
    }

    #[test]
    fn traceparents_are_validated_and_read() {
        let t = TraceContext::parse(
            " 00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01 ",
            Some("congo=t61rcWkgMzE"),
        )
        .unwrap();
        assert_eq!(t.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.span_id(), "00f067aa0ba902b7");
        assert_eq!(t.tracestate.as_deref(), Some("congo=t61rcWkgMzE"));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad, None), None, "{bad:?}");
        }
    }

    #[test]
    fn a_context_round_trips_as_json_without_an_empty_tracestate() {
        let t = TraceContext::parse(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            Some(""),
        )
        .unwrap();
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(
            json,
            r#"{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}"#
        );
        assert_eq!(serde_json::from_str::<TraceContext>(&json).unwrap(), t);
    }

    #[test]
    fn an_untraced_span_has_no_context_and_the_fallback_passes_through() {
        let incoming = TraceContext::parse(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            None,
        )
        .unwrap();
        assert_eq!(TraceContext::of_span(&tracing::Span::none()), None);
        assert_eq!(TraceContext::current_or(Some(&incoming)), Some(incoming));
    }
}
