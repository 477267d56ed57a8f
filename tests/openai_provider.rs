//! The OpenAI-compatible provider against a scripted local HTTP server.

use std::time::Duration;

use docflow::ai::openai::dialect::Dialect;
use docflow::ai::openai::{Auth, Endpoint, OpenAiOptions, OpenAiProvider};
use docflow::ai::{
    AiProvider, AiRequest, EntityKind, Operation, ProviderError, SentimentLabel, TaskOutput,
    TokenUsage,
};
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn provider(server: &MockServer) -> OpenAiProvider {
    OpenAiProvider::new(OpenAiOptions {
        endpoint: Endpoint::OpenAi {
            base_url: format!("{}/v1", server.uri()),
        },
        auth: Auth::BearerKey("test-key".into()),
        chat_model: "gpt-test".into(),
        embedding_model: "embed-test".into(),
        timeout: Duration::from_millis(500),
        ..OpenAiOptions::default()
    })
    .unwrap()
}

fn chat_reply(content: &str) -> Value {
    json!({"id": "c1", "object": "chat.completion", "model": "gpt-test-2025",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 120, "completion_tokens": 15, "total_tokens": 135}})
}

/// The error of a sentiment call that must fail.
async fn sentiment_error(p: &OpenAiProvider) -> ProviderError {
    p.run(&request(Operation::Sentiment, "x"))
        .await
        .unwrap_err()
}

/// The reason of a rejection, or a panic naming what came instead.
fn rejected_reason(err: ProviderError) -> &'static str {
    match err {
        ProviderError::Rejected { reason, .. } => reason,
        other => panic!("expected a rejection, got {other}"),
    }
}

/// The reason of a model or configuration failure, or a panic naming what came instead.
fn unusable_reason(err: &ProviderError) -> &'static str {
    match err {
        ProviderError::Unusable { reason, .. } => reason,
        other => panic!("expected a model or configuration failure, got {other}"),
    }
}

fn request(operation: Operation, text: &str) -> AiRequest {
    AiRequest {
        operation,
        text: text.into(),
    }
}

#[tokio::test]
async fn classify_sends_a_strict_json_schema_and_records_usage() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer test-key"))
        .and(body_partial_json(json!({"model": "gpt-test", "temperature": 0, "max_tokens": 88,
            "response_format": {"type": "json_schema", "json_schema": {"name": "classification", "strict": true,
                "schema": {"properties": {"label": {"enum": ["payment terms", "termination for breach"]}}}}}})))
        .respond_with(ResponseTemplate::new(200).set_body_json(chat_reply(
            r#"{"label": "termination for breach", "scores": {"termination for breach": 0.9, "payment terms": 0.1}}"#,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let labels = vec![
        "payment terms".to_string(),
        "termination for breach".to_string(),
    ];
    let out = provider(&server)
        .run(&request(
            Operation::Classify { labels },
            "Either party may terminate for breach.",
        ))
        .await
        .unwrap();
    assert_eq!(out.model, "gpt-test-2025");
    assert_eq!(
        out.usage,
        TokenUsage {
            input_tokens: 120,
            output_tokens: 15,
            total_tokens: 135
        }
    );
    let TaskOutput::Classify { label, scores } = out.output else {
        panic!("not a classification")
    };
    assert_eq!(label, "termination for breach");
    assert_eq!(scores[0].label, "termination for breach");
    assert_eq!(scores[1].score, 0.1);
}

#[tokio::test]
async fn entities_get_offsets_and_sentiment_is_typed() {
    let server = MockServer::start().await;
    let text = "Acme Inc. paid $1,200.00 on March 3, 2025.";
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"messages": [{"role": "system"}, {"role": "user", "content": text}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(chat_reply(
            r#"{"entities": [{"kind": "organization", "text": "Acme Inc."}, {"kind": "money", "text": "$1,200.00"}, {"kind": "date", "text": "March 3, 2025"}]}"#,
        )))
        .mount(&server)
        .await;
    let out = provider(&server)
        .run(&request(Operation::ExtractEntities, text))
        .await
        .unwrap();
    let TaskOutput::ExtractEntities { entities } = out.output else {
        panic!()
    };
    assert_eq!(entities.len(), 3);
    assert_eq!(
        (entities[1].kind, entities[1].start, entities[1].end),
        (EntityKind::Money, 15, 24)
    );

    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(chat_reply(
            "```json\n{\"label\": \"negative\", \"score\": -0.8}\n```",
        )))
        .mount(&server)
        .await;
    let out = provider(&server)
        .run(&request(Operation::Sentiment, "Awful."))
        .await
        .unwrap();
    assert_eq!(
        out.output,
        TaskOutput::Sentiment {
            label: SentimentLabel::Negative,
            score: -0.8
        }
    );
}

#[tokio::test]
async fn summaries_are_held_to_max_words() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(chat_reply("one two three four five six")),
        )
        .mount(&server)
        .await;
    let out = provider(&server)
        .run(&request(Operation::Summarize { max_words: 4 }, "text"))
        .await
        .unwrap();
    assert_eq!(
        out.output,
        TaskOutput::Summarize {
            summary: "one two three four".into()
        }
    );
}

#[tokio::test]
async fn embeddings_call_the_embeddings_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .and(body_partial_json(json!({"model": "embed-test", "input": "hello"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "model": "embed-test", "data": [{"object": "embedding", "index": 0, "embedding": [0.6, 0.8]}],
            "usage": {"prompt_tokens": 1, "total_tokens": 1}})))
        .mount(&server)
        .await;
    let out = provider(&server)
        .run(&request(Operation::Embed, "hello"))
        .await
        .unwrap();
    assert_eq!(
        out.output,
        TaskOutput::Embed {
            dimensions: 2,
            vector: vec![0.6, 0.8],
            chunks: vec![],
            pooling: None
        }
    );
    assert_eq!(
        out.usage,
        TokenUsage {
            input_tokens: 1,
            output_tokens: 0,
            total_tokens: 1
        }
    );
}

#[tokio::test]
async fn rate_limits_honour_retry_after_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after-ms", "1500")
                .insert_header("retry-after", "2")
                .set_body_json(
                    json!({"error": {"code": "429", "message": "Rate limit is exceeded."}}),
                ),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "7"))
        .mount(&server)
        .await;
    let p = provider(&server);
    let err = sentiment_error(&p).await;
    assert!(
        matches!(err, ProviderError::RetryAfter { delay, .. } if delay == Duration::from_millis(1500)),
        "{err}"
    );
    let err = sentiment_error(&p).await;
    assert!(
        matches!(err, ProviderError::RetryAfter { delay, .. } if delay == Duration::from_secs(7)),
        "{err}"
    );
}

#[tokio::test]
async fn server_errors_and_timeouts_are_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("upstream exploded"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(chat_reply("late"))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;
    let p = provider(&server);
    let err = sentiment_error(&p).await;
    assert!(
        matches!(&err, ProviderError::Transient { detail } if detail.contains("500")),
        "{err}"
    );
    let err = sentiment_error(&p).await;
    assert!(
        matches!(&err, ProviderError::Transient { detail } if detail.contains("timed out")),
        "{err}"
    );
}

#[tokio::test]
async fn connection_refused_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let p = OpenAiProvider::new(OpenAiOptions {
        endpoint: Endpoint::OpenAi {
            base_url: format!("http://127.0.0.1:{port}/v1"),
        },
        timeout: Duration::from_secs(2),
        ..OpenAiOptions::default()
    })
    .unwrap();
    let err = sentiment_error(&p).await;
    assert!(
        matches!(&err, ProviderError::Transient { detail } if detail.contains(&format!("127.0.0.1:{port}")) && detail.to_lowercase().contains("refused")),
        "the cause is kept: {err}"
    );
}

#[tokio::test]
async fn content_filter_is_poison_and_invalid_requests_are_configuration() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "The response was filtered due to the prompt triggering content management policy.",
            "type": null, "param": "prompt", "code": "content_filter", "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation"}}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "maximum context length exceeded", "code": "context_length_exceeded"}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let mut filtered = chat_reply("");
    filtered["choices"][0]["finish_reason"] = json!("content_filter");
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(filtered))
        .mount(&server)
        .await;
    let p = provider(&server);
    let err = sentiment_error(&p).await;
    assert_eq!(rejected_reason(err), "ContentFiltered");
    let err = sentiment_error(&p).await;
    assert_eq!(unusable_reason(&err), "InvalidRequest");
    let err = sentiment_error(&p).await;
    assert_eq!(rejected_reason(err), "ContentFiltered");
}

#[tokio::test]
async fn an_unusable_answer_gets_one_repair_call_then_fails_with_its_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(chat_reply(r#"{"label": "not-a-label"}"#)),
        )
        .expect(2)
        .mount(&server)
        .await;
    let err = provider(&server)
        .run(&request(
            Operation::Classify {
                labels: vec!["a".into()],
            },
            "x",
        ))
        .await
        .unwrap_err();
    assert_eq!(unusable_reason(&err), "InvalidModelOutput");
    assert!(err.to_string().contains("not one of the labels"), "{err}");
    let ProviderError::Unusable { usage, .. } = err else {
        unreachable!()
    };
    assert_eq!(usage.total_tokens, 270, "both calls' tokens are counted");
}

#[tokio::test]
async fn a_repair_call_sends_the_error_and_the_schema_back() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"messages": [{"role": "system"}, {"role": "user"}, {"role": "assistant", "content": "It is good."}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(chat_reply(
            r#"<think>Positive words.</think>{"label": "positive", "score": "0.7"}"#,
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(chat_reply("It is good.")))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let out = provider(&server)
        .run(&request(Operation::Sentiment, "Lovely."))
        .await
        .unwrap();
    assert_eq!(
        out.output,
        TaskOutput::Sentiment {
            label: SentimentLabel::Positive,
            score: 0.7
        }
    );
    let requests = server.received_requests().await.unwrap();
    let repair: Value = serde_json::from_slice(&requests[1].body).unwrap();
    let last = repair["messages"][3]["content"].as_str().unwrap();
    assert!(
        last.contains("no JSON object") && last.contains("\"enum\""),
        "{last}"
    );
}

#[tokio::test]
async fn a_json_answer_cut_at_max_tokens_is_its_own_failure() {
    let server = MockServer::start().await;
    let mut cut = chat_reply(r#"{"label": "posi"#);
    cut["choices"][0]["finish_reason"] = json!("length");
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(cut))
        .expect(1)
        .mount(&server)
        .await;
    let err = sentiment_error(&provider(&server)).await;
    assert_eq!(unusable_reason(&err), "OutputTruncated");
}

/// A provider speaking `dialect` to `server`.
fn with_dialect(server: &MockServer, dialect: Dialect) -> OpenAiProvider {
    OpenAiProvider::new(OpenAiOptions {
        endpoint: Endpoint::OpenAi {
            base_url: format!("{}/v1", server.uri()),
        },
        structured_output: dialect,
        timeout: Duration::from_secs(2),
        ..OpenAiOptions::default()
    })
    .unwrap()
}

#[tokio::test]
async fn each_dialect_sends_the_schema_where_its_server_reads_it() {
    let expected = [
        (
            Dialect::JsonSchema,
            json!({"response_format": {"type": "json_schema", "json_schema": {"name": "sentiment", "strict": true, "schema": {"required": ["label", "score"]}}}}),
        ),
        (
            Dialect::JsonObjectSchema,
            json!({"response_format": {"type": "json_object", "schema": {"required": ["label", "score"]}}}),
        ),
        (
            Dialect::Ollama,
            json!({"format": {"required": ["label", "score"]}}),
        ),
        (
            Dialect::Vllm,
            json!({"structured_outputs": {"json": {"required": ["label", "score"]}}}),
        ),
    ];
    for (dialect, body) in expected {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(body_partial_json(body))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(chat_reply(r#"{"label": "neutral", "score": 0}"#)),
            )
            .expect(1)
            .mount(&server)
            .await;
        with_dialect(&server, dialect)
            .run(&request(Operation::Sentiment, "Fine."))
            .await
            .unwrap_or_else(|e| panic!("{dialect:?}: {e}"));
    }
    // prompt_only sends no field, and the schema is in the prompt.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(chat_reply(r#"{"label": "neutral", "score": 0}"#)),
        )
        .mount(&server)
        .await;
    with_dialect(&server, Dialect::PromptOnly)
        .run(&request(Operation::Sentiment, "Fine."))
        .await
        .unwrap();
    let sent: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert!(sent.get("response_format").is_none() && sent.get("format").is_none());
    assert!(
        sent["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("\"required\"")
    );
}

#[tokio::test]
async fn a_server_rejecting_the_field_gets_the_next_dialect_and_keeps_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_partial_json(json!({"response_format": {"type": "json_schema"}})))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {"message": "Invalid value for 'response_format.type': json_schema is not supported", "code": 400}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(body_partial_json(
            json!({"response_format": {"type": "json_object"}}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(chat_reply(r#"{"label": "neutral", "score": 0}"#)),
        )
        .expect(2)
        .mount(&server)
        .await;
    let p = with_dialect(&server, Dialect::JsonSchema);
    p.run(&request(Operation::Sentiment, "Fine."))
        .await
        .unwrap();
    assert_eq!(
        p.dialect(),
        Dialect::JsonObjectSchema,
        "the choice is remembered"
    );
    p.run(&request(Operation::Sentiment, "Fine."))
        .await
        .unwrap();
}

#[tokio::test]
async fn per_token_embeddings_are_mean_pooled_and_missing_embeddings_explained() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [[3.0, 0.0], [0.0, 0.0], [0.0, 3.0]]}]})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .respond_with(ResponseTemplate::new(501).set_body_json(json!({"error": {"code": 501, "message": "This server does not support embeddings. Start it with `--embeddings`", "type": "not_supported_error"}})))
        .mount(&server)
        .await;
    let p = provider(&server);
    let out = p.run(&request(Operation::Embed, "hello")).await.unwrap();
    let TaskOutput::Embed {
        vector, pooling, ..
    } = out.output
    else {
        panic!()
    };
    assert_eq!(pooling.as_deref(), Some("mean"));
    assert!(
        (vector[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6,
        "{vector:?}"
    );
    let err = p
        .run(&request(Operation::Embed, "hello"))
        .await
        .unwrap_err();
    assert_eq!(unusable_reason(&err), "EmbeddingsUnsupported");
    assert!(err.to_string().contains("--embedding"), "{err}");
}

#[tokio::test]
async fn azure_openai_uses_deployment_urls_and_the_api_key_header() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/openai/deployments/chat-dep/chat/completions"))
        .and(query_param("api-version", "2024-10-21"))
        .and(header("api-key", "azure-key"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(chat_reply(r#"{"label": "positive", "score": 0.5}"#)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let p = OpenAiProvider::new(OpenAiOptions {
        endpoint: Endpoint::Azure {
            endpoint: server.uri(),
            api_version: "2024-10-21".into(),
        },
        auth: Auth::AzureApiKey("azure-key".into()),
        chat_model: "chat-dep".into(),
        embedding_model: "embed-dep".into(),
        timeout: Duration::from_secs(2),
        ..OpenAiOptions::default()
    })
    .unwrap();
    assert_eq!(p.name(), "azure-openai");
    let out = p
        .run(&request(Operation::Sentiment, "Nice."))
        .await
        .unwrap();
    assert_eq!(
        out.output,
        TaskOutput::Sentiment {
            label: SentimentLabel::Positive,
            score: 0.5
        }
    );
}

#[tokio::test]
async fn unauthorized_and_not_found_are_configuration_not_poison() {
    // A wrong key is the deployment's fault, not the message's: never dead-letter work for it.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(json!({"error": {"message": "Access denied"}})),
        )
        .mount(&server)
        .await;
    let err = provider(&server)
        .run(&request(Operation::Sentiment, "x"))
        .await
        .unwrap_err();
    assert_eq!(unusable_reason(&err), "ProviderUnauthorized");
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"error": {"message": "model 'gpt-nope' not found"}})),
        )
        .mount(&server)
        .await;
    let err = sentiment_error(&provider(&server)).await;
    assert_eq!(unusable_reason(&err), "ProviderNotFound");
    assert!(
        err.to_string().contains("gpt-nope") && err.to_string().contains("base URL"),
        "{err}"
    );
}

/// One call answered with `headers`, then a second: the budget learned from the first answer
/// that the minute is spent, so the second is handed back as a rate limit to reschedule (its
/// wait is longer than `max_wait`), without a request the server would refuse. Returns the
/// second call's wait.
async fn the_second_call_is_held_after(headers: &[(&str, &str)]) -> Duration {
    let server = MockServer::start().await;
    let mut answer = ResponseTemplate::new(200)
        .set_body_json(chat_reply(r#"{"label": "positive", "score": 0.5}"#));
    for (name, value) in headers {
        answer = answer.insert_header(*name, *value);
    }
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(answer)
        .mount(&server)
        .await;
    let p = OpenAiProvider::new(OpenAiOptions {
        endpoint: Endpoint::OpenAi {
            base_url: format!("{}/v1", server.uri()),
        },
        budget: docflow::ai::budget::BudgetOptions {
            max_wait: Duration::from_millis(300),
            ..Default::default()
        },
        ..OpenAiOptions::default()
    })
    .unwrap();
    p.run(&request(Operation::Sentiment, "good")).await.unwrap();
    let err = p
        .run(&request(Operation::Sentiment, "good again"))
        .await
        .unwrap_err();
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    match err {
        ProviderError::RetryAfter { delay, detail } => {
            assert!(detail.contains("budget"), "{detail}");
            delay
        }
        other => panic!("expected a budget wait, got {other}"),
    }
}

#[tokio::test]
async fn the_budget_learns_the_limit_from_headers_and_holds_calls_instead_of_sending_them() {
    // 600 tokens per minute (10 a second), and this answer spent them all: the next call waits
    // for the bucket to refill a second of the 570 tokens a minute aimed at.
    let wait = the_second_call_is_held_after(&[
        ("x-ratelimit-limit-tokens", "600"),
        ("x-ratelimit-remaining-tokens", "0"),
        ("x-ratelimit-reset-tokens", "6s"),
    ])
    .await;
    assert!(wait > Duration::from_millis(600), "{wait:?}");
}

#[tokio::test]
async fn the_budget_learns_from_azure_headers_that_say_only_what_remains() {
    // Azure OpenAI sends what remains of the minute, not the limit: nothing remains here, so
    // the limit is what the one call was charged, and the minute is spent.
    the_second_call_is_held_after(&[
        ("x-ratelimit-remaining-tokens", "0"),
        ("x-ratelimit-remaining-requests", "0"),
    ])
    .await;
}

#[tokio::test]
async fn a_configured_budget_holds_a_short_wait_in_place() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(chat_reply(r#"{"label": "positive", "score": 0.5}"#)),
        )
        .mount(&server)
        .await;
    // 6,000 requests per minute: each call after the first waits about 10 ms for its request.
    let quick = OpenAiProvider::new(OpenAiOptions {
        endpoint: Endpoint::OpenAi {
            base_url: format!("{}/v1", server.uri()),
        },
        budget: docflow::ai::budget::BudgetOptions {
            rpm: Some(6_000),
            ..Default::default()
        },
        ..OpenAiOptions::default()
    })
    .unwrap();
    for _ in 0..3 {
        quick
            .run(&request(Operation::Sentiment, "good"))
            .await
            .unwrap();
    }
    // Held in place, not refused: every call went out.
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}
