//! Structured logs and OpenTelemetry (the `docflow-telemetry` crate), and the trace context
//! of the messages docflow sends itself.

pub use docflow_telemetry::*;

use docflow_servicebus::message::{Message, PropertyValue};

/// Stamps a message docflow sends itself (not through an output binding) with the trace
/// context as Microsoft's SDKs do: `Diagnostic-Id` and `traceparent` (and `tracestate`)
/// application properties, so SDK-instrumented consumers (Application Insights) continue it.
pub fn stamp(mut message: Message, trace: Option<&TraceContext>) -> Message {
    if let Some(trace) = trace {
        let text = |s: &str| PropertyValue::String(s.to_owned());
        message
            .properties
            .insert("Diagnostic-Id".into(), text(&trace.traceparent));
        message
            .properties
            .insert("traceparent".into(), text(&trace.traceparent));
        if let Some(state) = &trace.tracestate {
            message.properties.insert("tracestate".into(), text(state));
        }
    }
    message
}
