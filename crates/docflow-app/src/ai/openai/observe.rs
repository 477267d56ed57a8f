//! What a provider call shows: its CLIENT span with the GenAI conventions' attributes, what
//! the answer (or its absence) says of itself, and the call's metrics.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tracing::Span;

use super::options::Endpoint;
use super::{ProviderError, retry_after};
use crate::ai::TokenUsage;
use crate::metrics::{LlmCall, LlmStatus};
use crate::telemetry::genai;

/// `gen_ai.provider.name` of an endpoint.
fn provider(endpoint: &Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Azure { .. } => "azure.ai.openai",
        Endpoint::OpenAi { .. } => "openai",
    }
}

/// `gen_ai.operation.name` of a request body: a chat has messages, an embedding input.
fn operation(body: &Value) -> &'static str {
    if body.get("messages").is_some() {
        "chat"
    } else {
        "embeddings"
    }
}

/// The CLIENT span of one attempt for `model`.
pub(super) fn client_span(endpoint: &Endpoint, model: &str, body: &Value) -> Span {
    genai::client_span(genai::Call {
        operation: operation(body),
        provider: provider(endpoint),
        model,
        max_tokens: body["max_tokens"].as_u64(),
    })
}

/// Records an attempt's answer on its span: a successful one's model, usage and finish
/// reasons (`parsed`), a `429` as an event with its wait, any other failure as `error.type`.
pub(super) fn record_answer(
    span: &Span,
    answer: &Result<(StatusCode, HeaderMap, String), ProviderError>,
    parsed: Option<&Value>,
) {
    match answer {
        Ok((status, headers, _)) => {
            let value = parsed.unwrap_or(&Value::Null);
            genai::record_answer(span, &answer_of(status.as_u16(), value));
            if *status == StatusCode::TOO_MANY_REQUESTS {
                genai::rate_limited(span, retry_after(headers));
            }
        }
        Err(_) => genai::record_answer(
            span,
            &genai::Answer {
                transport_error: Some("transport"),
                ..genai::Answer::default()
            },
        ),
    }
}

/// What an answer says of itself.
fn answer_of(status: u16, value: &Value) -> genai::Answer<'_> {
    genai::Answer {
        status: Some(status),
        response_model: value["model"].as_str(),
        input_tokens: value["usage"]["prompt_tokens"].as_u64(),
        output_tokens: value["usage"]["completion_tokens"].as_u64(),
        finish_reasons: value["choices"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["finish_reason"].as_str().map(str::to_owned))
            .collect(),
        transport_error: None,
    }
}

/// The call's metrics: its status, duration and reported tokens, per model.
pub(super) fn record_call(
    endpoint: &Endpoint,
    body: &Value,
    answer: &Result<(StatusCode, HeaderMap, String), (ProviderError, bool)>,
    duration: Duration,
) {
    let (status, usage) = match answer {
        Ok((status, _, text)) if status.is_success() => (LlmStatus::Ok, reported_usage(text)),
        Ok((status, _, _)) => (LlmStatus::of_http(status.as_u16()), None),
        Err((_, true)) => (LlmStatus::Timeout, None),
        Err((_, false)) => (LlmStatus::Error, None),
    };
    crate::metrics::global().llm_call(&LlmCall {
        provider: provider(endpoint),
        operation: operation(body),
        model: body["model"].as_str().unwrap_or_default(),
        status,
        duration,
        usage,
    });
}

/// The tokens an answer reports (`usage.prompt_tokens`, `usage.completion_tokens`).
fn reported_usage(text: &str) -> Option<TokenUsage> {
    #[derive(serde::Deserialize)]
    struct Reply {
        usage: Option<Usage>,
    }
    #[derive(serde::Deserialize)]
    struct Usage {
        #[serde(default)]
        prompt_tokens: u64,
        #[serde(default)]
        completion_tokens: u64,
    }
    let usage = serde_json::from_str::<Reply>(text).ok()?.usage?;
    Some(TokenUsage::new(
        usage.prompt_tokens,
        usage.completion_tokens,
    ))
}
