//! The pipeline against `fake-llm`, an endpoint that enforces a TPM limit the way Azure OpenAI
//! does (charging prompt + `max_tokens` at admission, `429` with `Retry-After` and
//! `x-ratelimit-*` beyond it). With nothing configured, docflow learns the limit from the
//! headers and holds or reschedules calls: every document completes, nothing is dead-lettered,
//! and each task costs one served call. (How close to the limit it runs, and how few `429`s it
//! meets, are benchmark figures, not assertions.)

mod common;

use std::time::Duration;

use common::pipeline::PipelineApp;
use docflow::fake_llm::{FakeLlm, FakeLlmOptions};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tight_token_budget_completes_every_document_without_dead_letters_or_repeats() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // 4,000 tokens per (scaled) minute of 6 s: a few calls at a time.
    let llm = FakeLlm::start(
        listener,
        FakeLlmOptions {
            tpm: 4_000,
            rpm: 600,
            base_latency: Duration::from_millis(500),
            per_token_latency: Duration::from_millis(5),
            time_scale: 10.0,
            error_rate: 0.0,
            azure_headers: false,
        },
        CancellationToken::new(),
    );
    let url = format!("http://127.0.0.1:{}/v1", llm.port());
    let app = PipelineApp::start(&[
        ("DOCFLOW_AI_PROVIDER", "openai"),
        ("DOCFLOW_OPENAI_BASE_URL", &url),
        ("DOCFLOW_CHAT_MODEL", "fake-chat"),
        ("DOCFLOW_RETRY_BASE_MS", "200"),
    ])
    .await;
    let mut ids = Vec::new();
    for n in 0..12 {
        let text = format!(
            "Document {n}. The delivery arrived late and the invoice total of $1,200.00 was wrong. {}",
            "More words to make the prompt longer. ".repeat(n * 3)
        );
        let (status, _, body) = app
            .submit(
                "?analyses=summarize,classify,sentiment",
                &[("content-type", "text/plain")],
                text,
            )
            .await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        let doc = app.wait_final(id, Duration::from_secs(240)).await;
        assert_eq!(doc["status"], "completed", "{doc:#}");
    }
    let counts = app.host.context().broker.counts("ai-tasks").await.unwrap();
    assert_eq!(counts.dead_lettered, 0);
    let stats = llm.stats();
    assert_eq!(stats.served, 36, "one served call per task: {stats:?}");
    eprintln!(
        "fake-llm: {} served, {} refused with 429, {} tokens",
        stats.served, stats.rate_limited, stats.tokens
    );
    app.stop().await;
}
