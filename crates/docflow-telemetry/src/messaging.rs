//! Spans of the OpenTelemetry messaging conventions for Service Bus, and the trace context an
//! invocation passes on.
//!
//! - [`consumer_span`]: one per invocation of a Service Bus-triggered function, parented on the
//!   message's context (its body's `trace`, else the `traceparent` or `Diagnostic-Id` that
//!   Microsoft's SDKs set as application properties).
//! - [`for_message`]: the context a message being built carries: a PRODUCER span of its own
//!   when spans are exported, else the context the invocation received (so a trace passes
//!   through a process that exports nothing).
//! - [`with_incoming`]: runs an invocation with the context it received.

use std::future::Future;

use opentelemetry::KeyValue;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::TraceContext;

/// `messaging.system` of every span here.
pub const SYSTEM: &str = "servicebus";

tokio::task_local! {
    static INCOMING: Option<TraceContext>;
}

/// Where a Service Bus-triggered invocation reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination<'a> {
    /// The queue or topic.
    pub entity: &'a str,
    /// The subscription, for a topic.
    pub subscription: Option<&'a str>,
}

/// What a received message says about itself, for its consumer span.
#[derive(Debug, Clone, Default)]
pub struct Received<'a> {
    /// `MessageId`.
    pub message_id: Option<&'a str>,
    /// `CorrelationId`.
    pub correlation_id: Option<&'a str>,
    /// `DeliveryCount`.
    pub delivery_count: Option<u32>,
    /// How long it waited in the queue (from `EnqueuedTime` to this invocation).
    pub queue_wait: Option<std::time::Duration>,
    /// The context it carries.
    pub context: Option<&'a TraceContext>,
}

/// The context a message carries: its body's `trace` first, then the `traceparent` (with
/// `tracestate`) or `Diagnostic-Id` application property.
pub fn message_context(
    body_trace: Option<TraceContext>,
    property: impl Fn(&str) -> Option<String>,
) -> Option<TraceContext> {
    body_trace.or_else(|| {
        let state = property("tracestate");
        ["traceparent", "Diagnostic-Id"]
            .iter()
            .find_map(|name| TraceContext::parse(&property(name)?, state.as_deref()))
    })
}

/// The CONSUMER span `process {entity}` of one invocation, parented on the message's context.
/// `invocation` is the span's log fields (invocation id, function...): the caller creates it
/// with `otel.name` and `otel.kind` fields, which must be set at creation; see
/// [`consumer_span!`](crate::consumer_span).
pub fn start_consumer(span: &Span, destination: Destination<'_>, received: &Received<'_>) {
    start(span, "process", destination, received);
}

/// The CONSUMER span `receive {entity}` a Functions host (the local one) opens for a message it
/// received, parented on the context its application properties carry; created by the caller
/// with `otel.name` and `otel.kind = "consumer"` like [`start_consumer`]'s.
pub fn start_receive(span: &Span, destination: Destination<'_>, received: &Received<'_>) {
    start(span, "receive", destination, received);
}

/// A CLIENT span of a host's settlement of a message: `complete`, `abandon`, `dead_letter`,
/// `defer`, or `renew_lock` (the lock renewals while a function runs).
pub fn settle_span(operation: &'static str, entity: &str) -> Span {
    let span = tracing::info_span!(
        "settle",
        otel.name = %format_args!("{operation} {entity}"),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
    );
    span.set_attribute("messaging.system", SYSTEM);
    span.set_attribute("messaging.operation.name", operation);
    span.set_attribute("messaging.operation.type", "settle");
    span.set_attribute("messaging.destination.name", entity.to_owned());
    span
}

fn start(
    span: &Span,
    operation: &'static str,
    destination: Destination<'_>,
    received: &Received<'_>,
) {
    if let Some(context) = received.context {
        context.parent(span);
    }
    let mut attributes = vec![
        KeyValue::new("messaging.system", SYSTEM),
        KeyValue::new("messaging.operation.name", operation),
        KeyValue::new("messaging.operation.type", operation),
        KeyValue::new("messaging.destination.name", destination.entity.to_owned()),
    ];
    if let Some(sub) = destination.subscription {
        attributes.push(KeyValue::new(
            "messaging.destination.subscription.name",
            sub.to_owned(),
        ));
    }
    if let Some(id) = received.message_id {
        attributes.push(KeyValue::new("messaging.message.id", id.to_owned()));
    }
    if let Some(id) = received.correlation_id {
        attributes.push(KeyValue::new(
            "messaging.message.conversation_id",
            id.to_owned(),
        ));
    }
    if let Some(count) = received.delivery_count {
        attributes.push(KeyValue::new(
            "messaging.servicebus.message.delivery_count",
            i64::from(count),
        ));
    }
    if let Some(wait) = received.queue_wait {
        attributes.push(KeyValue::new(
            "docflow.queue_wait_ms",
            i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
        ));
    }
    for attribute in attributes {
        span.set_attribute(attribute.key, attribute.value);
    }
}

/// Runs `invocation` with the context it received, for [`for_message`] to pass on.
pub async fn with_incoming<F: Future>(context: Option<TraceContext>, invocation: F) -> F::Output {
    INCOMING.scope(context, invocation).await
}

/// The context the current invocation received, if any.
pub fn incoming() -> Option<TraceContext> {
    INCOMING.try_with(Clone::clone).ok().flatten()
}

/// The context of a message being built for `destination`: a PRODUCER span `send
/// {destination}` (a child of the current span) when spans are exported, else the context
/// the invocation received.
pub fn for_message(destination: &str) -> Option<TraceContext> {
    let span = tracing::info_span!(
        "send",
        otel.name = %format_args!("send {destination}"),
        otel.kind = "producer"
    );
    if span.is_disabled() {
        return incoming().map(TraceContext::sent_now);
    }
    span.set_attribute("messaging.system", SYSTEM);
    span.set_attribute("messaging.operation.name", "send");
    span.set_attribute("messaging.operation.type", "send");
    span.set_attribute("messaging.destination.name", destination.to_owned());
    TraceContext::of_span(&span)
        .or_else(incoming)
        .map(TraceContext::sent_now)
}

/// A CONSUMER span for one Service Bus invocation, with the log fields every invocation span
/// has (`invocation_id`, `function`, then `message_id`, `task_id`, `correlation_id` recorded
/// by the function). Its parent and attributes come from [`start_consumer`].
#[macro_export]
macro_rules! consumer_span {
    ($entity:expr, $invocation_id:expr, $function:expr) => {
        ::tracing::info_span!(
            "invocation",
            otel.name = %format_args!("process {}", $entity),
            otel.kind = "consumer",
            otel.status_code = ::tracing::field::Empty,
            otel.status_description = ::tracing::field::Empty,
            invocation_id = $invocation_id,
            function = $function,
            message_id = ::tracing::field::Empty,
            task_id = ::tracing::field::Empty,
            correlation_id = ::tracing::field::Empty,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_body_wins_then_traceparent_then_diagnostic_id() {
        let body = TraceContext::parse(PARENT, None);
        let other = "00-11111111111111111111111111111111-2222222222222222-01";
        let props = |name: &str| match name {
            "traceparent" => Some("garbage".to_owned()),
            "Diagnostic-Id" => Some(other.to_owned()),
            _ => None,
        };
        assert_eq!(message_context(body.clone(), props), body);
        assert_eq!(
            message_context(None, props).unwrap().traceparent,
            other,
            "an invalid traceparent falls back to Diagnostic-Id"
        );
        assert_eq!(message_context(None, |_| None), None);
    }

    #[test]
    fn an_untraced_process_passes_the_incoming_context_on() {
        let _alone = crate::subscriber_lock();
        // No OpenTelemetry layer here, whatever another test made the global subscriber.
        let _untraced = tracing::subscriber::set_default(tracing_subscriber::registry());
        let incoming = TraceContext::parse(PARENT, None);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let passed = runtime.block_on(with_incoming(incoming.clone(), async {
            for_message("ai-tasks")
        }));
        let passed = passed.unwrap();
        assert_eq!(passed.traceparent, incoming.unwrap().traceparent);
        assert!(passed.sent_at.is_some(), "stamped as sent");
        assert_eq!(for_message("ai-tasks"), None, "outside an invocation");
    }
}
