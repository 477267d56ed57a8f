//! Spans of the OpenTelemetry GenAI conventions for model calls: one CLIENT span per attempt,
//! named `{gen_ai.operation.name} {gen_ai.request.model}`, with the usage and finish reasons
//! of the answer, `error.type` on failure and a `rate_limited` event per `429` with the wait
//! it asked for; and an INTERNAL span per budget hold (a call waiting for room in the
//! deployment's rate budget). Prompts and answers are never recorded.

use std::time::Duration;

use opentelemetry::KeyValue;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// What a call is, for its span.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// `chat` or `embeddings`.
    pub operation: &'a str,
    /// `openai` or `azure.ai.openai`.
    pub provider: &'a str,
    /// The model (or Azure deployment) asked for.
    pub model: &'a str,
    /// `max_tokens` of the request, if any.
    pub max_tokens: Option<u64>,
}

/// The CLIENT span of one attempt; enter it (or instrument the request with it).
pub fn client_span(call: Call<'_>) -> Span {
    let span = tracing::info_span!(
        "gen_ai",
        otel.name = %format_args!("{} {}", call.operation, call.model),
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
    );
    span.set_attribute("gen_ai.operation.name", call.operation.to_owned());
    span.set_attribute("gen_ai.provider.name", call.provider.to_owned());
    span.set_attribute("gen_ai.request.model", call.model.to_owned());
    if let Some(max) = call.max_tokens {
        span.set_attribute("gen_ai.request.max_tokens", max as i64);
    }
    span
}

/// What the provider answered, for the span of its attempt.
#[derive(Debug, Clone, Default)]
pub struct Answer<'a> {
    /// The HTTP status, when an answer came.
    pub status: Option<u16>,
    /// `model` of the answer.
    pub response_model: Option<&'a str>,
    /// `usage.prompt_tokens`.
    pub input_tokens: Option<u64>,
    /// `usage.completion_tokens`.
    pub output_tokens: Option<u64>,
    /// `finish_reason` of each choice.
    pub finish_reasons: Vec<String>,
    /// Why no answer came (a timeout, a refused connection).
    pub transport_error: Option<&'a str>,
}

impl Answer<'_> {
    /// An answer of which only the status is known.
    pub fn status(status: u16) -> Self {
        Self {
            status: Some(status),
            ..Self::default()
        }
    }
}

/// Records an attempt's answer on its span.
pub fn record_answer(span: &Span, answer: &Answer<'_>) {
    if let Some(status) = answer.status {
        span.set_attribute("http.response.status_code", i64::from(status));
        if status >= 400 {
            span.set_attribute("error.type", status.to_string());
            span.record("otel.status_code", "error");
        }
    }
    if let Some(error) = answer.transport_error {
        span.set_attribute("error.type", error.to_owned());
        span.record("otel.status_code", "error");
    }
    if let Some(model) = answer.response_model {
        span.set_attribute("gen_ai.response.model", model.to_owned());
    }
    if let Some(n) = answer.input_tokens {
        span.set_attribute("gen_ai.usage.input_tokens", n as i64);
    }
    if let Some(n) = answer.output_tokens {
        span.set_attribute("gen_ai.usage.output_tokens", n as i64);
    }
    if !answer.finish_reasons.is_empty() {
        span.set_attribute(
            "gen_ai.response.finish_reasons",
            opentelemetry::Value::Array(
                answer
                    .finish_reasons
                    .iter()
                    .map(|r| opentelemetry::StringValue::from(r.clone()))
                    .collect::<Vec<_>>()
                    .into(),
            ),
        );
    }
}

/// A `429` on an attempt's span, with the wait the provider asked for.
pub fn rate_limited(span: &Span, retry_after: Option<Duration>) {
    let mut attributes = vec![KeyValue::new("http.response.status_code", 429_i64)];
    if let Some(wait) = retry_after {
        attributes.push(KeyValue::new(
            "docflow.retry_after_ms",
            i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
        ));
    }
    span.add_event("rate_limited", attributes);
}

/// The INTERNAL span of a budget hold: a call of `tokens` waiting for room in `model`'s
/// budget. Create it at the first wait; [`hold_ended`] records how it ended.
pub fn hold_span(model: &str, tokens: u64) -> Span {
    let span = tracing::info_span!(
        "budget_hold",
        otel.name = %format_args!("budget hold {model}"),
        otel.kind = "internal",
    );
    span.set_attribute("gen_ai.request.model", model.to_owned());
    span.set_attribute("docflow.budget.tokens", tokens as i64);
    span
}

/// How a hold ended: admitted after `waited`, or handed back (the message is rescheduled).
pub fn hold_ended(span: &Span, waited: Duration, admitted: bool) {
    span.set_attribute(
        "docflow.budget.waited_ms",
        i64::try_from(waited.as_millis()).unwrap_or(i64::MAX),
    );
    span.set_attribute("docflow.budget.admitted", admitted);
}
