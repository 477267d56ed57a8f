//! docflow's telemetry: structured logs, the W3C trace context that travels in every docflow
//! message, and OpenTelemetry export.
//!
//! - [`logs`]: the global subscriber (JSON lines in serve mode, text otherwise); each line
//!   inside a traced span carries `trace_id` and `span_id`.
//! - [`context`]: [`TraceContext`], what a message body carries (`trace`), and how a span is
//!   parented on it or linked to it.
//! - [`export`]: tracer and meter providers from the standard environment:
//!   `OTEL_EXPORTER_OTLP_*` (OTLP http/protobuf) and `APPLICATIONINSIGHTS_CONNECTION_STRING`.
//!   Nothing set: no OpenTelemetry layer at all, and no cost; a trace context that came in is
//!   then passed on unchanged.
//! - [`metrics`]: the meter instruments come from and the Prometheus text of what was
//!   recorded (`GET /metrics`), collected whether or not metrics are pushed anywhere.

pub mod context;
pub mod export;
pub mod genai;
pub mod logs;
pub mod messaging;
pub mod metrics;

pub use context::TraceContext;
pub use logs::{
    LogFormat, Telemetry, init, init_exporting, init_exporting_with, init_with_default,
};

/// Held by the tests that change which subscriber is the default: a scoped default on one
/// thread sends every other thread's dispatcher lookups through its thread-local state, where
/// a formatter cannot reach the global subscriber it runs in.
#[cfg(test)]
pub(crate) fn subscriber_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
