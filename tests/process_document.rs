//! ProcessDocument through the real router: done, effectively once, poison, transient, rate limits.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{TestApp, host_request, outcome_messages, task_body};
use docflow::ai::ProviderError;
use docflow::blob::BlobStore;
use docflow::functions::process_document::{OUTCOME_BINDING, ProcessOptions, TRIGGER_BINDING};
use docflow::poison::sha256_hex;
use serde_json::{Value, json};

const CONTRACT: &str = "This Services Agreement is made between Acme Widgets Inc. and Globex GmbH. \
    Acme will deliver the software by March 3, 2025. Globex will pay $1,200.00 per month. \
    Either party may terminate this Agreement for material breach on thirty days written notice.";

fn summarize_task(task_id: &str) -> String {
    task_body(
        task_id,
        "summarize",
        json!({"text": CONTRACT}),
        json!({"maxWords": 30}),
    )
}

#[tokio::test]
async fn a_valid_task_returns_the_outcome_and_stores_the_result() {
    let app = TestApp::new();
    let reply = app
        .post(
            "ProcessDocument",
            &host_request(&summarize_task("doc-42:summarize"), 1),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert_eq!(reply.body["ReturnValue"], Value::Null);
    let outputs = reply.body["Outputs"].as_object().unwrap();
    assert_eq!(outputs.keys().collect::<Vec<_>>(), vec![OUTCOME_BINDING]);
    let outcomes = outcome_messages(&reply);
    assert_eq!(outcomes.len(), 1);
    let outcome = &outcomes[0];
    assert_eq!(outcome["schema"], "ai.task-outcome.v1");
    assert_eq!(outcome["status"], "succeeded");
    assert_eq!(outcome["taskId"], "doc-42:summarize");
    assert_eq!(outcome["documentId"], "doc-42");
    assert_eq!(outcome["correlationId"], "corr-doc-42");
    assert_eq!(outcome["kind"], "summarize");
    assert_eq!(outcome["reused"], false);
    assert_eq!(
        outcome["result"],
        json!({"container": "results", "blob": "tasks/doc-42%3Asummarize.json"})
    );
    assert!(outcome["usage"]["totalTokens"].as_u64().unwrap() > 0);
    assert!(outcome["model"].as_str().unwrap().starts_with("offline-"));
    assert!(
        reply.body["Logs"][0]
            .as_str()
            .unwrap()
            .contains("doc-42:summarize succeeded")
    );

    let result = app
        .blob_json("results", "tasks/doc-42%3Asummarize.json")
        .await;
    assert_eq!(result["schema"], "ai.task-result.v1");
    assert_eq!(result["output"]["kind"], "summarize");
    assert!(!result["output"]["summary"].as_str().unwrap().is_empty());
    assert_eq!(app.provider.calls(), 1);
}

#[tokio::test]
async fn a_redelivered_task_completes_without_calling_the_provider() {
    let app = TestApp::new();
    let body = summarize_task("doc-42:summarize");
    let first = app.post("ProcessDocument", &host_request(&body, 1)).await;
    assert_eq!(first.status, 200);
    let again = app.post("ProcessDocument", &host_request(&body, 2)).await;
    assert_eq!(again.status, 200);
    assert_eq!(
        app.provider.calls(),
        1,
        "the second delivery must not call the provider"
    );
    let (a, b) = (&outcome_messages(&first)[0], &outcome_messages(&again)[0]);
    assert_eq!(b["reused"], true);
    assert_eq!(a["result"], b["result"]);
    assert_eq!(a["usage"], b["usage"]);
}

#[tokio::test]
async fn concurrent_duplicate_deliveries_store_one_result() {
    let app = std::sync::Arc::new(TestApp::new());
    let body = summarize_task("doc-9:summarize");
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (app, request) = (app.clone(), host_request(&body, i + 1));
        tasks.push(tokio::spawn(async move {
            app.post("ProcessDocument", &request).await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        let reply = t.await.unwrap();
        assert_eq!(reply.status, 200);
        results.push(outcome_messages(&reply)[0]["result"].clone());
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    let stored = app.blobs.list("results", "tasks/").await.unwrap();
    assert_eq!(stored.len(), 1);
}

/// Posts `body` twice; both must be poison with `reason`, recorded, and the provider untouched.
async fn assert_poison_twice(app: &TestApp, body: &str, reason: &str, key: &str) {
    let first = app.post("ProcessDocument", &host_request(body, 1)).await;
    assert_eq!(first.status, 422, "{}", first.body);
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    assert_eq!(first.body["error"]["code"], reason);
    assert_eq!(first.body["error"]["alreadyRecorded"], false);
    let blob = format!("poison/{}.json", docflow::task::encode_segment(key));
    let record = app.blob_json("state", &blob).await;
    assert_eq!(record["reason"], reason);
    assert_eq!(record["key"], key);
    assert_eq!(record["bodySha256"], sha256_hex(body.as_bytes()));
    assert_eq!(record["deliveryCount"], 1);
    assert!(!record["description"].as_str().unwrap().is_empty());

    let calls = app.provider.calls();
    let second = app.post("ProcessDocument", &host_request(body, 2)).await;
    assert_eq!(second.status, 422);
    assert_eq!(second.body["error"]["code"], reason);
    assert_eq!(
        second.body["error"]["alreadyRecorded"], true,
        "the second delivery must fail fast"
    );
    assert_eq!(
        app.provider.calls(),
        calls,
        "a poison redelivery must not call the provider"
    );
}

#[tokio::test]
async fn unknown_task_kind_is_poison() {
    let app = TestApp::new();
    let body = task_body(
        "doc-1:translate",
        "translate",
        json!({"text": "Hello."}),
        json!({}),
    );
    assert_poison_twice(&app, &body, "UnknownTaskKind", "doc-1:translate").await;
    assert_eq!(app.provider.calls(), 0);
}

#[tokio::test]
async fn invalid_json_body_is_poison_keyed_by_its_hash() {
    let app = TestApp::new();
    let body = "{\"schema\": \"ai.task.v1\", \"taskId\": ";
    let key = format!("body-sha256-{}", sha256_hex(body.as_bytes()));
    assert_poison_twice(&app, body, "InvalidMessageBody", &key).await;
    assert_eq!(app.provider.calls(), 0);
}

#[tokio::test]
async fn another_message_with_a_known_poison_body_keeps_its_own_last_error() {
    let app = TestApp::new();
    let body = "this is not a task";
    for id in ["poison-1", "poison-2"] {
        let mut request: Value = serde_json::from_slice(&host_request(body, 1)).unwrap();
        request["Metadata"]["MessageId"] = common::host_string(id);
        let reply = app
            .post("ProcessDocument", &serde_json::to_vec(&request).unwrap())
            .await;
        assert_eq!(reply.status, 422, "{}", reply.body);
    }
    // The second failed fast on the first's poison record, and still says why under its id:
    // dead-letter triage joins these records by MessageId.
    for id in ["poison-1", "poison-2"] {
        let record = app
            .blob_json("state", &format!("last-errors/{id}.json"))
            .await;
        assert_eq!(record["reason"], "InvalidMessageBody", "{id}");
    }
}

#[tokio::test]
async fn unknown_schema_version_is_poison() {
    let app = TestApp::new();
    let body = summarize_task("doc-2:summarize").replace("ai.task.v1", "ai.task.v2");
    assert_poison_twice(&app, &body, "UnknownSchema", "doc-2:summarize").await;
    assert_eq!(app.provider.calls(), 0);
}

#[tokio::test]
async fn missing_referenced_content_is_poison() {
    let app = TestApp::new();
    let body = task_body(
        "doc-3:summarize",
        "summarize",
        json!({"contentRef": {"container": "documents", "blob": "doc-3", "contentType": "text/plain"}}),
        json!({}),
    );
    assert_poison_twice(&app, &body, "ContentNotFound", "doc-3:summarize").await;
    assert_eq!(app.provider.calls(), 0);
}

#[tokio::test]
async fn a_content_filter_rejection_is_poison_and_not_retried() {
    let app = TestApp::new();
    app.provider.fail_next([ProviderError::Rejected {
        reason: "ContentFiltered",
        detail: "400: content filter".into(),
    }]);
    assert_poison_twice(
        &app,
        &summarize_task("doc-4:summarize"),
        "ContentFiltered",
        "doc-4:summarize",
    )
    .await;
    assert_eq!(app.provider.calls(), 1);
}

#[tokio::test]
async fn a_corrected_message_for_a_poisoned_task_is_processed() {
    let app = TestApp::new();
    let bad = task_body(
        "doc-5:classify",
        "classify",
        json!({"text": CONTRACT}),
        json!({}),
    );
    assert_eq!(
        app.post("ProcessDocument", &host_request(&bad, 1))
            .await
            .status,
        422
    );
    let fixed = task_body(
        "doc-5:classify",
        "classify",
        json!({"text": CONTRACT}),
        json!({"labels": ["termination", "payment"]}),
    );
    let reply = app.post("ProcessDocument", &host_request(&fixed, 1)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn referenced_content_is_read_and_verified() {
    let app = TestApp::new();
    app.blobs
        .put(
            "documents",
            "doc-6.txt",
            Bytes::from_static(CONTRACT.as_bytes()),
            "text/plain",
        )
        .await
        .unwrap();
    let reference = json!({"contentRef": {"container": "documents", "blob": "doc-6.txt", "contentType": "text/plain",
        "sizeBytes": CONTRACT.len(), "sha256": sha256_hex(CONTRACT.as_bytes())}});
    let body = task_body(
        "doc-6:extract_entities",
        "extract_entities",
        reference.clone(),
        json!({}),
    );
    let reply = app.post("ProcessDocument", &host_request(&body, 1)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let result = app
        .blob_json("results", "tasks/doc-6%3Aextract_entities.json")
        .await;
    let texts: Vec<&str> = result["output"]["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert!(
        texts.contains(&"$1,200.00") && texts.contains(&"March 3, 2025"),
        "{texts:?}"
    );

    let mut tampered = reference;
    tampered["contentRef"]["sha256"] = json!("0".repeat(64));
    let body = task_body("doc-6:sentiment", "sentiment", tampered, json!({}));
    let reply = app.post("ProcessDocument", &host_request(&body, 1)).await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.body["error"]["code"], "ContentHashMismatch");
}

#[tokio::test]
async fn a_transient_provider_failure_abandons_without_recording_poison() {
    let app = TestApp::new();
    app.provider.fail_next([ProviderError::Transient {
        detail: "503 from provider".into(),
    }]);
    let body = summarize_task("doc-7:summarize");
    let first = app.post("ProcessDocument", &host_request(&body, 1)).await;
    assert_eq!(first.status, 503);
    assert_eq!(first.body["error"]["outcome"], "transient");
    assert!(
        !app.blob_exists("state", "poison/doc-7%3Asummarize.json")
            .await
    );
    let second = app.post("ProcessDocument", &host_request(&body, 2)).await;
    assert_eq!(second.status, 200);
    assert_eq!(app.provider.calls(), 2);
}

#[tokio::test]
async fn a_short_rate_limit_waits_in_place() {
    let app = TestApp::new();
    app.provider.fail_next([ProviderError::RetryAfter {
        delay: Duration::from_millis(50),
        detail: "429".into(),
    }]);
    let reply = app
        .post(
            "ProcessDocument",
            &host_request(&summarize_task("doc-8:summarize"), 1),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(app.provider.calls(), 2);
}

#[tokio::test]
async fn a_long_rate_limit_abandons_the_message() {
    let app = TestApp::with_options(ProcessOptions {
        max_inline_retry_wait: Duration::from_secs(10),
        ..ProcessOptions::default()
    });
    app.provider.fail_next([ProviderError::RetryAfter {
        delay: Duration::from_secs(60),
        detail: "429".into(),
    }]);
    let reply = app
        .post(
            "ProcessDocument",
            &host_request(&summarize_task("doc-8:summarize"), 1),
        )
        .await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.body["error"]["code"], "RateLimited");
    assert_eq!(app.provider.calls(), 1);
}

#[test]
fn function_json_declares_what_the_code_reads() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let function: Value =
        serde_json::from_slice(&std::fs::read(root.join("ProcessDocument/function.json")).unwrap())
            .unwrap();
    let bindings = function["bindings"].as_array().unwrap();
    let trigger = bindings.iter().find(|b| b["direction"] == "in").unwrap();
    assert_eq!(trigger["type"], "serviceBusTrigger");
    assert_eq!(trigger["name"], TRIGGER_BINDING);
    assert_eq!(trigger["queueName"], "ai-tasks");
    assert!(trigger.get("cardinality").is_none_or(|c| c == "one"));
    let output = bindings.iter().find(|b| b["direction"] == "out").unwrap();
    assert_eq!(output["type"], "serviceBus");
    assert_eq!(output["name"], OUTCOME_BINDING);
    assert_eq!(output["queueName"], "task-results");
    assert_eq!(output["connection"], trigger["connection"]);

    let host: Value =
        serde_json::from_slice(&std::fs::read(root.join("host.json")).unwrap()).unwrap();
    assert_eq!(host["version"], "2.0");
    assert_eq!(
        host["customHandler"]["description"]["defaultExecutablePath"],
        "docflow"
    );
    assert_eq!(
        host["customHandler"]["description"]["arguments"],
        json!(["serve"])
    );
    let sb = &host["extensions"]["serviceBus"];
    assert_eq!(sb["autoCompleteMessages"], true);
    assert!(sb["maxConcurrentCalls"].as_u64().is_some());
    let timespan = |v: &Value| {
        let parts: Vec<f64> = v
            .as_str()
            .unwrap()
            .split(':')
            .map(|p| p.parse().unwrap())
            .collect();
        parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
    };
    assert!(timespan(&sb["maxAutoLockRenewalDuration"]) >= timespan(&host["functionTimeout"]));

    let settings: Value =
        serde_json::from_slice(&std::fs::read(root.join("local.settings.json")).unwrap()).unwrap();
    assert_eq!(settings["Values"]["FUNCTIONS_WORKER_RUNTIME"], "custom");
    let connection = trigger["connection"].as_str().unwrap();
    assert!(
        settings["Values"][connection]
            .as_str()
            .unwrap()
            .contains("UseDevelopmentEmulator=true")
    );
}

#[test]
fn topology_file_holds_the_architecture() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let topology = docflow::topology::Topology::load(&root.join("servicebus.config.json")).unwrap();
    assert_eq!(topology.max_delivery_count("ai-tasks"), Some(5));
    let ai_tasks = topology.entity("ai-tasks").unwrap();
    assert_eq!(ai_tasks.requires_duplicate_detection, Some(true));
    assert_eq!(
        topology.entity("summary-chunks").unwrap().requires_session,
        Some(true)
    );
    for entity in [
        "task-results",
        "audit",
        "documents/analyze",
        "documents/audit",
        "analysis-completed/notify",
        "analysis-completed/audit",
    ] {
        assert!(topology.entity(entity).is_some(), "{entity}");
    }
    assert_eq!(
        topology
            .entity("documents/audit")
            .unwrap()
            .forward_to
            .as_deref(),
        Some("audit")
    );
    for queue in &topology.namespace.queues {
        let lock = queue.properties.lock_duration.as_deref().unwrap();
        assert!(
            docflow::topology::parse_iso8601_duration(lock).unwrap() <= Duration::from_secs(300)
        );
    }
}

#[tokio::test]
async fn the_readme_sample_request_is_processed() {
    let app = TestApp::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let request =
        std::fs::read(root.join("docs/host-requests/process-document.request.json")).unwrap();
    let reply = app.post("ProcessDocument", &request).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let outcome = &outcome_messages(&reply)[0];
    assert_eq!(outcome["taskId"], "msa-2025:summarize");
    let result = app
        .blob_json("results", "tasks/msa-2025%3Asummarize.json")
        .await;
    let summary = result["output"]["summary"].as_str().unwrap();
    assert!(summary.split_whitespace().count() <= 60, "{summary}");
}

#[tokio::test]
async fn the_last_delivery_of_a_poison_message_reports_a_failed_outcome() {
    let mut app = TestApp::new();
    let captured = docflow::servicebus::RecordingSender::new();
    let options = ProcessOptions {
        max_delivery_count: Some(5),
        ..ProcessOptions::default()
    };
    let function =
        docflow::functions::ProcessDocument::new(app.blobs.clone(), app.provider.clone(), options)
            .with_bus(std::sync::Arc::new(captured.clone()));
    app.registry = std::sync::Arc::new(
        docflow::functions::Registry::new().with(std::sync::Arc::new(function)),
    );
    let body = task_body(
        "doc-11:translate",
        "translate",
        json!({"text": "Hello."}),
        json!({}),
    );
    for delivery in 1..=4 {
        assert_eq!(
            app.post("ProcessDocument", &host_request(&body, delivery))
                .await
                .status,
            422
        );
    }
    assert!(captured.sent().is_empty(), "not the last delivery yet");
    let last = app.post("ProcessDocument", &host_request(&body, 5)).await;
    assert_eq!(
        last.status, 422,
        "still abandoned, so Service Bus dead-letters it"
    );
    let sent = captured.sent_to("task-results");
    assert_eq!(sent.len(), 1);
    let outcome: docflow::task::TaskOutcome = serde_json::from_slice(&sent[0].body).unwrap();
    let message_id = sent[0].message_id.clone().unwrap();
    assert!(
        outcome.dead_lettered,
        "the message is dead-lettered after this delivery"
    );
    assert_eq!(outcome.status, docflow::task::OutcomeStatus::Failed);
    assert_eq!(outcome.task_id, "doc-11:translate");
    assert_eq!(outcome.document_id, "doc-11");
    assert_eq!(outcome.correlation_id.as_deref(), Some("corr-doc-11"));
    assert_eq!(outcome.error.as_ref().unwrap().reason, "UnknownTaskKind");
    assert!(
        message_id.starts_with("doc-11:translate:failed:"),
        "a stable id, so a repeat is de-duplicated: {message_id}"
    );
    assert_eq!(app.provider.calls(), 0);
}
