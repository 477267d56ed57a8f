//! GenAI spans of the OpenAI-compatible provider, against a scripted server: one CLIENT span
//! per attempt with the GenAI conventions' attributes, a `rate_limited` event on a `429`, and
//! the budget hold that follows it as a span of its own.

use std::time::Duration;

use docflow::ai::budget::BudgetOptions;
use docflow::ai::openai::{Auth, Endpoint, OpenAiOptions, OpenAiProvider};
use docflow::ai::{AiProvider, AiRequest, Operation, ProviderError};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use serde_json::json;
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test(flavor = "current_thread")]
async fn every_attempt_is_a_client_span_and_a_429_is_an_event() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after-ms", "300")
                .set_body_json(
                    json!({"error": {"code": "429", "message": "Rate limit is exceeded."}}),
                ),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "c1", "object": "chat.completion", "model": "gpt-test-2025",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "{\"label\":\"positive\",\"score\":0.9}"}}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 15, "total_tokens": 135}
        })))
        .mount(&server)
        .await;
    let provider = OpenAiProvider::new(OpenAiOptions {
        endpoint: Endpoint::OpenAi {
            base_url: format!("{}/v1", server.uri()),
        },
        auth: Auth::BearerKey("test-key".into()),
        chat_model: "gpt-test".into(),
        embedding_model: "embed-test".into(),
        timeout: Duration::from_secs(5),
        // A known limit: after a 429 its bucket stays empty until the provider's reset.
        budget: BudgetOptions {
            tpm: Some(60_000),
            ..BudgetOptions::default()
        },
        ..OpenAiOptions::default()
    })
    .unwrap();
    let exporter = InMemorySpanExporter::default();
    let tracer_provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer("test")));
    let _guard = tracing::subscriber::set_default(subscriber);
    let request = AiRequest {
        operation: Operation::Sentiment,
        text: "What a fine day.".into(),
    };
    let invocation = tracing::info_span!("invocation");
    let first = provider
        .run(&request)
        .instrument(invocation.clone())
        .await
        .unwrap_err();
    assert!(matches!(first, ProviderError::RetryAfter { .. }), "{first}");
    provider
        .run(&request)
        .instrument(invocation.clone())
        .await
        .unwrap();
    drop(invocation);
    let spans = exporter.get_finished_spans().unwrap();
    let calls: Vec<&SpanData> = spans.iter().filter(|s| s.name == "chat gpt-test").collect();
    assert_eq!(calls.len(), 2, "one client span per attempt");
    for call in &calls {
        assert_eq!(call.span_kind, opentelemetry::trace::SpanKind::Client);
        assert_eq!(
            attribute(call, "gen_ai.operation.name").as_deref(),
            Some("chat")
        );
        assert_eq!(
            attribute(call, "gen_ai.provider.name").as_deref(),
            Some("openai")
        );
        assert_eq!(
            attribute(call, "gen_ai.request.model").as_deref(),
            Some("gpt-test")
        );
    }
    let (refused, answered) = (calls[0], calls[1]);
    assert_eq!(attribute(refused, "error.type").as_deref(), Some("429"));
    let event = refused
        .events
        .iter()
        .find(|e| e.name == "rate_limited")
        .expect("a rate_limited event");
    assert!(
        event
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "docflow.retry_after_ms" && kv.value.to_string() == "300"),
        "{event:?}"
    );
    assert_eq!(
        attribute(answered, "gen_ai.response.model").as_deref(),
        Some("gpt-test-2025")
    );
    assert_eq!(
        attribute(answered, "gen_ai.usage.input_tokens").as_deref(),
        Some("120")
    );
    assert_eq!(
        attribute(answered, "gen_ai.usage.output_tokens").as_deref(),
        Some("15")
    );
    assert!(
        attribute(answered, "gen_ai.response.finish_reasons").is_some_and(|r| r.contains("stop")),
        "{answered:?}"
    );
    // After the 429 the budget holds the next call until the provider's reset.
    let hold = spans
        .iter()
        .find(|s| s.name == "budget hold gpt-test")
        .expect("the second call waited for the budget in a span of its own");
    assert_eq!(
        attribute(hold, "docflow.budget.admitted").as_deref(),
        Some("true")
    );
    let parent = spans.iter().find(|s| s.name == "invocation").unwrap();
    for span in [refused, answered, hold] {
        assert_eq!(span.parent_span_id, parent.span_context.span_id());
    }
}
