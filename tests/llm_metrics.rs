//! The OpenAI-compatible provider's metrics: every HTTP call counted by model and status
//! (`ok`, `429`, `5xx`), its duration, the tokens its answer reports, and the gauges of the
//! deployment's budget. The global meter provider is this test binary's own (a pull reader),
//! set before any instrument is created.

use std::time::Duration;

use docflow::ai::budget::BudgetOptions;
use docflow::ai::openai::{Auth, Endpoint, OpenAiOptions, OpenAiProvider};
use docflow::ai::{AiProvider, AiRequest, Operation, ProviderError};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Whether `text` has a sample `name{...} value` whose labels include every one of `labels`.
fn has(text: &str, name: &str, labels: &[(&str, &str)], value: &str) -> bool {
    text.lines().any(|line| {
        let Some((head, tail)) = line.split_once('{') else {
            return false;
        };
        let Some((inside, got)) = tail.rsplit_once("} ") else {
            return false;
        };
        head == name
            && got == value
            && labels
                .iter()
                .all(|(k, v)| inside.split(',').any(|l| l == format!("{k}=\"{v}\"")))
    })
}

#[tokio::test]
async fn an_openai_compatible_provider_counts_calls_tokens_and_its_budget() {
    let (meter, exposition) = docflow::telemetry::metrics::pull_only();
    opentelemetry::global::set_meter_provider(meter);
    let server = MockServer::start().await;
    let answer = json!({"id": "c1", "object": "chat.completion", "model": "gpt-metrics-2025",
        "choices": [{"index": 0, "message": {"role": "assistant",
            "content": "{\"label\": \"negative\", \"score\": -0.8}"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 15, "total_tokens": 135}});
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after-ms", "20")
                .set_body_json(json!({"error": {"message": "slow down"}})),
        )
        .up_to_n_times(1)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
        .with_priority(3)
        .mount(&server)
        .await;
    let provider = OpenAiProvider::new(OpenAiOptions {
        endpoint: Endpoint::OpenAi {
            base_url: format!("{}/v1", server.uri()),
        },
        auth: Auth::None,
        chat_model: "gpt-metrics".into(),
        embedding_model: "gpt-metrics".into(),
        timeout: Duration::from_secs(5),
        budget: BudgetOptions {
            tpm: Some(600_000),
            max_concurrency: 4,
            ..BudgetOptions::default()
        },
        ..OpenAiOptions::default()
    })
    .unwrap();
    let request = AiRequest {
        operation: Operation::Sentiment,
        text: "The delivery was late and the router is broken.".into(),
    };
    provider.run(&request).await.unwrap();
    assert!(matches!(
        provider.run(&request).await,
        Err(ProviderError::RetryAfter { .. })
    ));
    assert!(matches!(
        provider.run(&request).await,
        Err(ProviderError::Transient { .. })
    ));

    let text = exposition.text();
    let model = ("gen_ai_request_model", "gpt-metrics");
    let provider_name = ("gen_ai_provider_name", "openai");
    for status in ["ok", "429", "5xx"] {
        assert!(
            has(
                &text,
                "docflow_llm_requests_total",
                &[model, provider_name, ("status", status)],
                "1"
            ),
            "{status}\n{text}"
        );
    }
    for (kind, tokens) in [("input", "120"), ("output", "15")] {
        assert!(
            has(
                &text,
                "gen_ai_client_token_usage_sum",
                &[
                    model,
                    ("gen_ai_token_type", kind),
                    ("gen_ai_operation_name", "chat")
                ],
                tokens
            ),
            "{kind}\n{text}"
        );
    }
    assert!(has(
        &text,
        "gen_ai_client_operation_duration_seconds_count",
        &[model, ("error_type", "5xx")],
        "1"
    ));
    // The budget: its configured limit, and the window halved by the 429 (4 → 2).
    let deployment = [("deployment", "gpt-metrics")];
    assert!(
        has(
            &text,
            "docflow_llm_budget_token_limit",
            &deployment,
            "600000"
        ),
        "{text}"
    );
    assert!(
        has(&text, "docflow_llm_budget_window", &deployment, "2"),
        "{text}"
    );
    assert!(has(&text, "docflow_llm_budget_in_flight", &deployment, "0"));
    drop(provider);
    assert!(
        !exposition.text().contains("deployment=\"gpt-metrics\""),
        "a provider dropped takes its budget's gauges along"
    );
}
