//! The pipeline's functions in process, over the embedded broker (with the app's topology, so
//! duplicate detection and forwarding are real) and a temporary blob folder: fan-out and fan-in
//! under redelivery and concurrency, retry later, and the refusal of poison.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{ScriptedProvider, host_request, task_body};
use docflow::ai::ProviderError;
use docflow::blob::LocalFolderStore;
use docflow::broker::{Broker, BrokerOptions, Entities};
use docflow::functions::context::{PipelineContext, PipelineOptions};
use docflow::functions::process_document::ProcessOptions;
use docflow::functions::{
    AggregateResults, AnalyzeDocument, Function, Invocation, ProcessDocument,
};
use docflow::outcome::Outcome;
use docflow::pipeline::events::{AnalysisOptions, DocumentSubmitted, SUBMITTED_SCHEMA};
use docflow::pipeline::state::{DocumentState, DocumentStatus, STATE_SCHEMA, TaskStatus};
use docflow::pipeline::store::{Containers, DocumentStore};
use docflow::protocol::InvocationRequest;
use docflow::servicebus::{MessageSender, RecordingSender};
use docflow::task::{OUTCOME_SCHEMA, ResultRef, TaskOutcome};
use serde_json::json;

const KINDS: [&str; 5] = [
    "summarize",
    "classify",
    "extract_entities",
    "sentiment",
    "embed",
];

struct Fixture {
    broker: Broker,
    ctx: PipelineContext,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let topology = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("servicebus.config.json"),
    )
    .unwrap();
    let broker = Broker::open(
        Entities::parse(&topology).unwrap(),
        BrokerOptions::new(dir.path().join("broker")),
    )
    .unwrap();
    let blobs = Arc::new(LocalFolderStore::new(dir.path().join("blobs")));
    let ctx = PipelineContext {
        store: DocumentStore::new(blobs, Containers::default()),
        bus: Arc::new(broker.clone()),
        options: PipelineOptions::default(),
    };
    Fixture {
        broker,
        ctx,
        _dir: dir,
    }
}

async fn submitted(ctx: &PipelineContext, id: &str) -> DocumentSubmitted {
    let text = b"Contoso sent an invoice to Fabrikam.";
    let content = ctx
        .store
        .payload_ref(id, text.len(), docflow::poison::sha256_hex(text));
    ctx.store
        .store_payload(&content, bytes::Bytes::from_static(text))
        .await
        .unwrap();
    let now = Utc::now();
    let options = AnalysisOptions {
        analyses: KINDS.iter().map(|k| k.to_string()).collect(),
        labels: vec!["invoice".into(), "contract".into()],
        max_words: 40,
    };
    ctx.store
        .create_state(&DocumentState {
            schema: STATE_SCHEMA.into(),
            document_id: id.into(),
            correlation_id: format!("corr-{id}"),
            trace_id: None,
            status: DocumentStatus::Queued,
            submitted_at: now,
            updated_at: now,
            completed_at: None,
            content: content.clone(),
            source_content_type: "text/plain".into(),
            filename: None,
            options: options.clone(),
            callback_url: None,
            tasks: Default::default(),
            deadline_at: None,
            analysis: None,
            completion_published: false,
            revision: 0,
            notification: None,
            extraction: None,
        })
        .await
        .unwrap();
    DocumentSubmitted {
        schema: SUBMITTED_SCHEMA.into(),
        document_id: id.into(),
        correlation_id: format!("corr-{id}"),
        submitted_at: now,
        content,
        options,
        trace: None,
    }
}

async fn invoke(function: &dyn Function, body: &str, delivery: u32) -> Outcome {
    let request = InvocationRequest::parse(&host_request(body, delivery)).unwrap();
    function
        .invoke(
            &Invocation {
                invocation_id: Some("test".into()),
                function: function.name().into(),
            },
            request,
        )
        .await
}

fn outcome_body(id: &str, kind: &str) -> String {
    serde_json::to_string(&TaskOutcome {
        schema: OUTCOME_SCHEMA.into(),
        task_id: format!("{id}:{kind}"),
        document_id: id.into(),
        correlation_id: Some(format!("corr-{id}")),
        kind: kind.into(),
        status: docflow::task::OutcomeStatus::Succeeded,
        result: Some(ResultRef {
            container: "results".into(),
            blob: format!("tasks/{id}%3A{kind}.json"),
        }),
        model: Some("m".into()),
        usage: docflow::ai::TokenUsage::new(10, 2),
        reused: false,
        error: None,
        attempts: Some(1),
        duration_ms: Some(3),
        dead_lettered: false,
        trace: None,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_document_submitted_sends_nothing_new() {
    let f = fixture();
    let event = submitted(&f.ctx, "doc-a").await;
    let body = serde_json::to_string(&event).unwrap();
    let analyze = AnalyzeDocument::new(f.ctx.clone());
    for delivery in 1..=3 {
        assert!(matches!(
            invoke(&analyze, &body, delivery).await,
            Outcome::Done(_)
        ));
    }
    let tasks = f.broker.counts("ai-tasks").await.unwrap();
    assert_eq!(
        tasks.active, 5,
        "one message per task, repeats dropped as duplicates"
    );
    let deadlines = f.broker.counts("task-results").await.unwrap();
    assert_eq!(deadlines.scheduled, 1, "one deadline");
    let state = f.ctx.store.state("doc-a").await.unwrap().unwrap();
    assert_eq!(state.status, DocumentStatus::Processing);
    assert_eq!(state.tasks.len(), 5);
    let messages = f.broker.browse("ai-tasks", false, 0, 10).await.unwrap();
    for m in &messages {
        assert_eq!(m.message.correlation_id.as_deref(), Some("corr-doc-a"));
        let task = docflow::task::parse_task(&m.message.body).unwrap();
        assert_eq!(m.message.message_id.as_deref(), Some(task.task_id.as_str()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_aggregators_publish_one_analysis_completed() {
    let f = fixture();
    let event = submitted(&f.ctx, "doc-b").await;
    let analyze = AnalyzeDocument::new(f.ctx.clone());
    invoke(&analyze, &serde_json::to_string(&event).unwrap(), 1).await;
    let aggregate = Arc::new(AggregateResults::new(f.ctx.clone()));
    let mut running = Vec::new();
    for round in 0..3 {
        for kind in KINDS {
            let aggregate = aggregate.clone();
            running.push(tokio::spawn(async move {
                invoke(aggregate.as_ref(), &outcome_body("doc-b", kind), round + 1).await
            }));
        }
    }
    for r in running {
        let outcome = r.await.unwrap();
        assert!(matches!(outcome, Outcome::Done(_)), "{outcome:?}");
    }
    let state = f.ctx.store.state("doc-b").await.unwrap().unwrap();
    assert_eq!(state.status, DocumentStatus::Completed);
    assert!(state.completion_published);
    assert!(
        state
            .tasks
            .values()
            .all(|t| t.status == TaskStatus::Succeeded)
    );
    assert_eq!(state.usage().total_tokens, 60, "each outcome counted once");
    let notify = f
        .broker
        .counts("analysis-completed/subscriptions/notify")
        .await
        .unwrap();
    assert_eq!(notify.active, 1, "exactly one AnalysisCompleted");
    // A late deadline changes nothing and publishes nothing.
    let deadline = json!({"schema": "docflow.analysis-deadline.v1", "documentId": "doc-b", "correlationId": "corr-doc-b", "deadlineAt": Utc::now()});
    invoke(aggregate.as_ref(), &deadline.to_string(), 1).await;
    assert_eq!(
        f.broker
            .counts("analysis-completed/subscriptions/notify")
            .await
            .unwrap()
            .active,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_finishes_an_analysis_with_what_it_has() {
    let f = fixture();
    let event = submitted(&f.ctx, "doc-c").await;
    invoke(
        &AnalyzeDocument::new(f.ctx.clone()),
        &serde_json::to_string(&event).unwrap(),
        1,
    )
    .await;
    let aggregate = AggregateResults::new(f.ctx.clone());
    invoke(&aggregate, &outcome_body("doc-c", "summarize"), 1).await;
    let deadline = json!({"schema": "docflow.analysis-deadline.v1", "documentId": "doc-c", "correlationId": "corr-doc-c", "deadlineAt": Utc::now()});
    invoke(&aggregate, &deadline.to_string(), 1).await;
    let state = f.ctx.store.state("doc-c").await.unwrap().unwrap();
    assert_eq!(state.status, DocumentStatus::Partial);
    let failed = state.failed_tasks();
    assert_eq!(failed.len(), 4);
    assert!(failed.iter().all(|t| t.reason == "DeadlineExceeded"));
    // A late outcome does not reopen it.
    invoke(&aggregate, &outcome_body("doc-c", "sentiment"), 1).await;
    let state = f.ctx.store.state("doc-c").await.unwrap().unwrap();
    assert_eq!(state.tasks["sentiment"].status, TaskStatus::Failed);
    assert_eq!(
        f.broker
            .counts("analysis-completed/subscriptions/notify")
            .await
            .unwrap()
            .active,
        1
    );
}

#[tokio::test]
async fn a_transient_failure_retries_later_and_fails_past_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(LocalFolderStore::new(dir.path()));
    let provider = Arc::new(ScriptedProvider::default());
    provider.fail_next((0..3).map(|_| ProviderError::Transient {
        detail: "503 Service Unavailable".into(),
    }));
    let bus = RecordingSender::new();
    let options = ProcessOptions {
        max_transient_retries: 2,
        max_delivery_count: Some(5),
        ..ProcessOptions::default()
    };
    let process = ProcessDocument::new(blobs, provider.clone(), options)
        .with_bus(Arc::new(bus.clone()) as Arc<dyn MessageSender>);
    let body = task_body(
        "doc-d:summarize",
        "summarize",
        json!({"text": "Hello there. A short text."}),
        json!({}),
    );

    let first = invoke(&process, &body, 1).await;
    assert!(
        matches!(first, Outcome::Done(ref r) if r.outputs().is_empty()),
        "{first:?}"
    );
    let copies = bus.sent_to("ai-tasks");
    assert_eq!(copies.len(), 1);
    let copy = &copies[0];
    assert_eq!(copy.message_id.as_deref(), Some("doc-d:summarize:retry:1"));
    assert_eq!(copy.correlation_id.as_deref(), Some("corr-doc-d"));
    assert_eq!(copy.body, body.as_bytes());
    let due = copy.scheduled_enqueue_time.unwrap() - Utc::now();
    assert!(
        due > chrono::Duration::zero() && due <= chrono::Duration::seconds(2),
        "{due}"
    );

    // The copy arrives with its counts (trusted because they name its own message id); past
    // the cap the message is abandoned so that it dead-letters, its remaining deliveries fail
    // fast, and the last one reports the failed outcome with the real reason.
    let with_counts = |retries: i64, transient: i64, delivery: u32| {
        let mut request: serde_json::Value =
            serde_json::from_slice(&host_request(&body, delivery)).unwrap();
        let id = format!("doc-d:summarize:retry:{retries}");
        request["Metadata"]["MessageId"] = json!(serde_json::to_string(&id).unwrap());
        request["Metadata"]["ApplicationProperties"] = json!({
            "x-docflow-retries": retries, "x-docflow-transient-failures": transient,
            "x-docflow-rate-limited": 0, "x-docflow-retry-of": id,
            "x-docflow-failed-input-tokens": 7, "x-docflow-failed-output-tokens": 0
        });
        InvocationRequest::parse(&serde_json::to_vec(&request).unwrap()).unwrap()
    };
    let invocation = Invocation {
        invocation_id: None,
        function: "ProcessDocument".into(),
    };
    let second = process.invoke(&invocation, with_counts(1, 1, 1)).await;
    assert!(matches!(second, Outcome::Done(ref r) if r.outputs().is_empty()));
    assert_eq!(
        bus.sent_to("ai-tasks")[1].message_id.as_deref(),
        Some("doc-d:summarize:retry:2")
    );
    let third = process.invoke(&invocation, with_counts(2, 2, 1)).await;
    let Outcome::Transient {
        reason,
        description,
    } = &third
    else {
        panic!("{third:?}")
    };
    assert_eq!(reason, "ProviderUnavailable");
    assert!(
        description.contains("gave up after 2 retries"),
        "{description}"
    );
    assert_eq!(provider.calls(), 3);
    for delivery in 2..=5 {
        let again = process
            .invoke(&invocation, with_counts(2, 2, delivery))
            .await;
        assert!(matches!(again, Outcome::Transient { .. }), "{again:?}");
    }
    assert_eq!(provider.calls(), 3, "exhausted deliveries fail fast");
    let outcomes = bus.sent_to("task-results");
    assert_eq!(outcomes.len(), 1, "the last delivery reports the task");
    let outcome: TaskOutcome = serde_json::from_slice(&outcomes[0].body).unwrap();
    assert_eq!(outcome.status, docflow::task::OutcomeStatus::Failed);
    assert_eq!(outcome.error.unwrap().reason, "ProviderUnavailable");
    assert!(outcome.dead_lettered);
    assert_eq!(
        outcome.usage.input_tokens, 7,
        "failed calls' tokens are counted"
    );
    assert_eq!(outcome.attempts, Some(7));
}

#[tokio::test]
async fn a_rate_limit_never_burns_a_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Arc::new(ScriptedProvider::default());
    provider.fail_next([ProviderError::RetryAfter {
        delay: Duration::from_secs(30),
        detail: "429".into(),
    }]);
    let bus = RecordingSender::new();
    let process = ProcessDocument::new(
        Arc::new(LocalFolderStore::new(dir.path())),
        provider,
        ProcessOptions {
            max_inline_retry_wait: Duration::from_secs(1),
            ..ProcessOptions::default()
        },
    )
    .with_bus(Arc::new(bus.clone()) as Arc<dyn MessageSender>);
    let body = task_body(
        "doc-e:sentiment",
        "sentiment",
        json!({"text": "Great!"}),
        json!({}),
    );
    let outcome = invoke(&process, &body, 1).await;
    assert!(
        matches!(outcome, Outcome::Done(_)),
        "completed, not abandoned: {outcome:?}"
    );
    let copy = &bus.sent_to("ai-tasks")[0];
    let due = copy.scheduled_enqueue_time.unwrap() - Utc::now();
    assert!(
        due > chrono::Duration::seconds(28),
        "the provider's Retry-After is honoured: {due}"
    );
    assert_eq!(
        copy.property("x-docflow-rate-limited"),
        Some(&docflow::servicebus::PropertyValue::Int(1))
    );
    assert_eq!(
        copy.property("x-docflow-transient-failures"),
        Some(&docflow::servicebus::PropertyValue::Int(0))
    );
}
