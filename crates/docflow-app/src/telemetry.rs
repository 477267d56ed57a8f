//! Structured logs and OpenTelemetry (the `docflow-telemetry` crate), and the trace context
//! of the messages docflow sends itself.

pub use docflow_telemetry::*;

use docflow_servicebus::message::{Message, PropertyValue};

/// Stamps a message docflow sends itself (not through an output binding) with the trace
/// context as Microsoft's SDKs do: `Diagnostic-Id` and `traceparent` (and `tracestate`)
/// application properties, so SDK-instrumented consumers (Application Insights) continue it.
pub fn stamp(mut message: Message, trace: Option<&TraceContext>) -> Message {
    for (name, value) in trace
        .map(TraceContext::application_properties)
        .unwrap_or_default()
    {
        message
            .properties
            .insert(name.into(), PropertyValue::String(value));
    }
    message
}
