//! The span of one invocation, as OpenTelemetry's conventions name it: a CONSUMER span
//! `process {entity}` for a Service Bus trigger, parented on the message's trace context, and a
//! SERVER span `{METHOD} {route}` for an HTTP trigger, parented on the request's `traceparent`.
//! Both carry the log fields every invocation line has (invocation id, function, then message
//! id, task id and correlation id as the function learns them).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use tracing::Span;

use crate::functions::{Destination, Invocation, SERVICE_BUS_TRIGGER};
use crate::telemetry::TraceContext;
use crate::telemetry::messaging::{self, Received};
use docflow_custom_handler::protocol::{InvocationRequest, TriggerDataType};

/// The span of a Service Bus-triggered invocation, the context its message carried and when
/// the message was enqueued (for the queue wait metric).
pub(crate) fn consumer(
    invocation: &Invocation,
    source: Destination<'static>,
    request: &InvocationRequest,
) -> (Span, Option<TraceContext>, Option<DateTime<Utc>>) {
    let span = docflow_telemetry::consumer_span!(
        source.entity,
        invocation.invocation_id.as_deref().unwrap_or(""),
        invocation.function.as_str()
    );
    // The function reads the message again, typed; this read only looks for its context.
    let message = request
        .service_bus_message(SERVICE_BUS_TRIGGER, TriggerDataType::String)
        .ok();
    let body = message
        .as_ref()
        .map(|m| body_fields(&m.body))
        .unwrap_or_default();
    let context = message.as_ref().and_then(|m| {
        messaging::message_context(body.trace.clone(), |name| {
            m.properties
                .application_properties
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    });
    let properties = message.as_ref().map(|m| &m.properties);
    let enqueued = properties.and_then(|p| p.enqueued_time);
    messaging::start_consumer(
        &span,
        source,
        &Received {
            message_id: properties.and_then(|p| p.message_id.as_deref()),
            // The host hides a property a JSON body shadows, and docflow's bodies carry theirs.
            correlation_id: properties
                .and_then(|p| p.correlation_id.as_deref())
                .or(body.correlation_id.as_deref()),
            delivery_count: properties.and_then(|p| p.delivery_count),
            queue_wait: TraceContext::queue_wait(body.trace.as_ref(), enqueued, Utc::now()),
            context: context.as_ref(),
        },
    );
    (span, context, enqueued)
}

/// The span of an HTTP-triggered invocation (or of a request that names no function), parented
/// on the caller's `traceparent` when it sent a valid one.
pub(crate) fn server(
    invocation_id: &str,
    function: &str,
    route: &str,
    traceparent: Option<(&str, Option<&str>)>,
) -> (Span, Option<TraceContext>) {
    let span = tracing::info_span!(
        "invocation",
        otel.name = %route,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        invocation_id = %invocation_id,
        function = %function,
        message_id = tracing::field::Empty,
        task_id = tracing::field::Empty,
        correlation_id = tracing::field::Empty,
    );
    let context = traceparent.and_then(|(parent, state)| TraceContext::parse(parent, state));
    if let Some(context) = &context {
        context.parent(&span);
    }
    (span, context)
}

/// Marks a span failed: a Service Bus invocation the host will abandon or retry, an HTTP
/// request answered 5xx (a 4xx is the caller's error, not the server's).
pub(crate) fn finish(span: &Span, failed: bool) {
    if failed {
        span.record("otel.status_code", "error");
    }
}

/// What a docflow message body says of its trace: `trace` and `correlationId`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BodyFields {
    #[serde(default)]
    trace: Option<TraceContext>,
    #[serde(default)]
    correlation_id: Option<String>,
}

/// The fields of a JSON body (none of another); a `trace` is kept only when valid.
fn body_fields(body: &[u8]) -> BodyFields {
    let mut fields: BodyFields = serde_json::from_slice(body).unwrap_or_default();
    fields.trace = fields
        .trace
        .and_then(|t| TraceContext::parse(&t.traceparent, t.tracestate.as_deref()));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_correlation_id_is_read() {
        let fields = body_fields(br#"{"correlationId":"c-1","trace":{"traceparent":"bad"}}"#);
        assert_eq!(fields.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(fields.trace, None);
    }

    #[test]
    fn a_body_trace_is_read_and_validated() {
        let good = br#"{"schema":"x","trace":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}"#;
        assert_eq!(
            body_fields(good).trace.unwrap().trace_id(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(body_fields(br#"{"schema":"x"}"#).trace, None);
        assert_eq!(body_fields(b"not json").trace, None);
    }
}
