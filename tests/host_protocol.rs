//! The host wire protocol: every shared fixture and every edge case, fed through the real router.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::{TestApp, fixture, fixture_json, fixtures_dir};
use docflow::functions::{Function, Invocation, Registry};
use docflow::outcome::Outcome;
use docflow::protocol::{
    HttpResponseData, InvocationRequest, InvocationResponse, TriggerDataType, host_rules,
};
use serde_json::{Value, json};

/// A protocol-only function: decodes its trigger the way the function's declaration says and
/// returns what it decoded, so fixtures of triggers docflow has no function for yet still run
/// through the real router.
struct Echo {
    name: &'static str,
    kind: EchoKind,
}

enum EchoKind {
    Batch(TriggerDataType),
    Http,
}

#[async_trait]
impl Function for Echo {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn invoke(&self, _: &Invocation, request: InvocationRequest) -> Outcome {
        let decoded = match self.kind {
            EchoKind::Batch(data_type) => {
                match request.service_bus_batch("messages", data_type) {
                    Ok(messages) => {
                        json!(messages.iter().map(|m| json!({
                    "body": String::from_utf8_lossy(&m.body),
                    "bodyLen": m.body.len(),
                    "messageId": m.properties.message_id,
                    "deliveryCount": m.properties.delivery_count,
                    "correlationId": m.properties.correlation_id,
                    "sequenceNumber": m.properties.sequence_number,
                    "enqueuedTime": m.properties.enqueued_time.map(|t| t.to_rfc3339()),
                    "tenant": m.properties.application_properties.get("tenant"),
                })).collect::<Vec<_>>())
                    }
                    Err(e) => return Outcome::BadRequest(e),
                }
            }
            EchoKind::Http => match request.http_request("req") {
                Ok(req) => {
                    let body = json!({"method": req.method, "url": req.url, "query": req.query,
                        "params": req.params, "contentType": req.header("content-type"),
                        "correlation": req.header("x-correlation-id"), "body": req.body});
                    return Outcome::Done(
                        InvocationResponse::new().http("res", HttpResponseData::json(200, &body)),
                    );
                }
                Err(e) => return Outcome::BadRequest(e),
            },
        };
        Outcome::Done(
            InvocationResponse::new()
                .blob_json("decoded", &decoded)
                .expect("a JSON value serializes"),
        )
    }
}

fn echo_app() -> TestApp {
    let mut app = TestApp::new();
    let registry = Registry::new()
        .with(Arc::new(Echo {
            name: "ProcessDocumentBatch",
            kind: EchoKind::Batch(TriggerDataType::String),
        }))
        .with(Arc::new(Echo {
            name: "BinaryBatch",
            kind: EchoKind::Batch(TriggerDataType::Binary),
        }))
        .with(Arc::new(Echo {
            name: "SubmitDocument",
            kind: EchoKind::Http,
        }));
    app.registry = Arc::new(registry);
    app
}

/// The copies of the shared host fixtures are byte for byte the originals: their checksums, taken
/// from the shared fixtures, are committed in `SHA256SUMS`; where the shared fixtures are
/// beside the checkout, they are compared too. A missing or changed copy fails.
#[test]
fn fixture_copies_match_the_shared_originals() {
    let copies = fixtures_dir().join("custom-handler");
    let sums =
        std::fs::read_to_string(copies.join("SHA256SUMS")).expect("SHA256SUMS of the copies");
    let mut checked = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (sum, name) = line.split_once("  ").expect("sha256sum format");
        let copy = std::fs::read(copies.join(name)).unwrap_or_else(|_| panic!("no copy of {name}"));
        assert_eq!(
            docflow::poison::sha256_hex(&copy),
            sum,
            "{name} differs from the original"
        );
        let shared = fixtures_dir()
            .join("../../../shared/fixtures/custom-handler")
            .join(name);
        if let Ok(original) = std::fs::read(&shared) {
            assert_eq!(original, copy, "{name} differs from the shared fixture");
        }
        checked += 1;
    }
    assert_eq!(checked, 6, "every shared fixture has a checksum");
}

#[tokio::test]
async fn readiness_probe_answers_json() {
    let app = TestApp::new();
    let reply = app.request("GET", "/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert_eq!(reply.body, json!({"status": "ready"}));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = TestApp::new();
    let reply = app.request("GET", "/nothing/here").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert_eq!(reply.body["error"]["code"], "NotFound");
    let reply = app.request("PUT", "/ProcessDocument").await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.body["error"]["code"], "MethodNotAllowed");
}

#[tokio::test]
async fn unknown_function_is_a_json_404() {
    let app = TestApp::new();
    let reply = app
        .post(
            "NoSuchFunction",
            &fixture("custom-handler/servicebus-single.request.json"),
        )
        .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        reply.body,
        json!({"error": {"code": "FunctionNotFound", "message": "no function named \"NoSuchFunction\"", "function": "NoSuchFunction"}})
    );
}

#[tokio::test]
async fn servicebus_single_fixture_through_process_document() {
    // The fixture's body is not an ai.task.v1 message: poison, reason recorded, fast fail next.
    let app = TestApp::new();
    let request = fixture("custom-handler/servicebus-single.request.json");
    let first = app.post("ProcessDocument", &request).await;
    assert_eq!(first.status, 422);
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    assert_eq!(first.body["error"]["code"], "UnknownSchema");
    assert_eq!(first.body["error"]["alreadyRecorded"], false);
    let second = app.post("ProcessDocument", &request).await;
    assert_eq!(second.status, 422);
    assert_eq!(second.body["error"]["alreadyRecorded"], true);
    assert_eq!(app.provider.calls(), 0);
}

#[tokio::test]
async fn servicebus_binary_fixture_decodes_to_the_same_message() {
    let text = InvocationRequest::parse(&fixture("custom-handler/servicebus-single.request.json"))
        .unwrap();
    let binary = InvocationRequest::parse(&fixture(
        "custom-handler/servicebus-single-binary.request.json",
    ))
    .unwrap();
    let a = text
        .service_bus_message("message", TriggerDataType::String)
        .unwrap();
    let b = binary
        .service_bus_message("message", TriggerDataType::Binary)
        .unwrap();
    assert_eq!(a.body, b.body);
    assert_eq!(
        a.body,
        br#"{"documentId":"doc-123","blobPath":"incoming/doc-123.pdf","task":"summarize","tenantId":"contoso"}"#
    );
    let p = &b.properties;
    assert_eq!(
        p.message_id.as_deref(),
        Some("b7e0c1d2-8f3a-4c55-a1e2-9d0f6b7c8a91")
    );
    assert_eq!(p.correlation_id.as_deref(), Some("req-7781"));
    assert_eq!(p.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        p.lock_token.as_deref(),
        Some("6c2b9f6e-1d3a-4e8b-9b1f-2a7d4c5e6f70")
    );
    assert_eq!(p.delivery_count, Some(1));
    assert_eq!(p.sequence_number, Some(42));
    assert_eq!(
        p.enqueued_time.unwrap().to_rfc3339(),
        "2025-03-01T10:20:31+00:00"
    );
    assert_eq!(
        p.expires_at.unwrap().to_rfc3339(),
        "2025-03-15T10:20:31+00:00"
    );
    assert_eq!(p.application_properties["priority"], 5);
    assert!(
        p.shadowed.is_empty(),
        "binary bodies are not merged into metadata"
    );
    assert_eq!(a.properties.shadowed.len(), 4);
    let sys = text.sys().unwrap();
    assert_eq!(sys.method_name.as_deref(), Some("ProcessDocument"));
    // Through the router: ProcessDocument recognises base64 whatever its declaration says.
    let app = TestApp::new();
    let reply = app
        .post(
            "ProcessDocument",
            &fixture("custom-handler/servicebus-single-binary.request.json"),
        )
        .await;
    assert_eq!(reply.status, 422);
    assert_eq!(reply.body["error"]["code"], "UnknownSchema");
}

#[tokio::test]
async fn servicebus_batch_fixture_through_the_router() {
    let app = TestApp::new();
    let reply = app
        .post(
            "ProcessDocumentBatch",
            &fixture("custom-handler/servicebus-batch.request.json"),
        )
        .await;
    assert_eq!(reply.status, 404, "docflow has no batch function yet");

    let reply = echo_app()
        .post(
            "ProcessDocumentBatch",
            &fixture("custom-handler/servicebus-batch.request.json"),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body["Outputs"]["decoded"],
        json!([
            {"body": r#"{"blobPath":"incoming/doc-1.pdf","documentId":"doc-1","task":"summarize"}"#, "bodyLen": 73,
             "messageId": "msg-0001", "deliveryCount": 1, "correlationId": null, "sequenceNumber": 101,
             "enqueuedTime": "2025-03-01T10:20:31.527+00:00", "tenant": "contoso"},
            {"body": r#"{"blobPath":"incoming/doc-2.docx","documentId":"doc-2","task":"classify"}"#, "bodyLen": 73,
             "messageId": "msg-0002", "deliveryCount": 3, "correlationId": "req-7781", "sequenceNumber": 102,
             "enqueuedTime": "2025-03-01T10:20:32.104+00:00", "tenant": "fabrikam"}
        ])
    );
}

#[tokio::test]
async fn batch_with_string_and_binary_data_types() {
    let reply = echo_app()
        .post(
            "ProcessDocumentBatch",
            &fixture("edge/servicebus-batch-string.request.json"),
        )
        .await;
    assert_eq!(reply.status, 200);
    let decoded = &reply.body["Outputs"]["decoded"];
    assert_eq!(
        decoded[0]["body"],
        r#"{"documentId":"doc-1","task":"summarize"}"#
    );
    assert_eq!(decoded[1]["body"], "plain text body, not JSON");

    let reply = echo_app()
        .post(
            "BinaryBatch",
            &fixture("edge/servicebus-batch-binary.request.json"),
        )
        .await;
    assert_eq!(reply.status, 200);
    let decoded = &reply.body["Outputs"]["decoded"];
    assert_eq!(
        decoded[0]["body"],
        r#"{"documentId":"doc-1","task":"summarize"}"#
    );
    assert_eq!(decoded[1]["bodyLen"], 3);
}

#[tokio::test]
async fn http_default_fixture_through_the_router() {
    let app = TestApp::new();
    let reply = app
        .post(
            "SubmitDocument",
            &fixture("custom-handler/http-default.request.json"),
        )
        .await;
    assert_eq!(
        reply.status, 404,
        "docflow has no SubmitDocument function yet"
    );

    let reply = echo_app()
        .post(
            "SubmitDocument",
            &fixture("custom-handler/http-default.request.json"),
        )
        .await;
    assert_eq!(reply.status, 200);
    let res = &reply.body["Outputs"]["res"];
    assert_eq!(res["statusCode"], 200);
    assert_eq!(res["headers"]["Content-Type"], "application/json");
    let echoed: Value = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        echoed,
        json!({"method": "POST", "url": "http://localhost:7071/api/documents?priority=high",
               "query": {"priority": "high"}, "params": {}, "contentType": "application/json",
               "correlation": null, "body": "{\"documentId\":\"doc-123\",\"task\":\"summarize\"}"})
    );
}

#[tokio::test]
async fn http_legacy_shapes_are_accepted() {
    let reply = echo_app()
        .post(
            "SubmitDocument",
            &fixture("edge/http-legacy-shapes.request.json"),
        )
        .await;
    assert_eq!(reply.status, 200);
    let echoed: Value =
        serde_json::from_str(reply.body["Outputs"]["res"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["query"], json!({"priority": "low"}));
    assert_eq!(echoed["params"], json!({"id": "doc-9"}));
    assert_eq!(echoed["correlation"], "corr-1");
}

#[test]
fn response_fixtures_are_what_the_builder_produces() {
    let sb = InvocationResponse::new()
        .service_bus_messages(
            "resultMessage",
            [
                r#"{"documentId":"doc-123","status":"completed","resultBlob":"results/doc-123.json"}"#,
                r#"{"documentId":"doc-123","event":"audit","durationMs":8412}"#,
            ],
        )
        .blob_json(
            "resultBlob",
            &json!({"documentId": "doc-123", "task": "summarize", "summary": "Three-paragraph summary ...",
                    "model": "example-model", "tokens": {"input": 5120, "output": 380}}),
        )
        .unwrap()
        .log("doc-123: downloaded 1.2 MB from incoming/doc-123.pdf")
        .log("doc-123: summary written");
    assert_eq!(
        serde_json::to_value(&sb).unwrap(),
        fixture_json("custom-handler/servicebus.response.json")
    );

    let http = InvocationResponse::new()
        .http(
            "res",
            HttpResponseData::json(202, &json!({"documentId": "doc-123", "status": "queued"}))
                .header("Location", "/api/documents/doc-123"),
        )
        .service_bus_messages(
            "taskMessage",
            [r#"{"documentId":"doc-123","task":"summarize"}"#],
        )
        .log("accepted doc-123");
    let mut expected = fixture_json("custom-handler/http-default.response.json");
    // The fixture uses the single-string form; docflow always uses the array form, which the
    // host sends with the same bytes (§2.3) and which cannot fall into the base64 trap.
    let single = expected["Outputs"]["taskMessage"].clone();
    assert_eq!(
        host_rules::service_bus_bodies(&single).len(),
        host_rules::service_bus_bodies(&http.outputs()["taskMessage"]).len()
    );
    expected["Outputs"]["taskMessage"] = json!([single]);
    assert_eq!(serde_json::to_value(&http).unwrap(), expected);
}

#[tokio::test]
async fn body_properties_never_override_the_task_identity() {
    let request = fixture("edge/servicebus-body-collides-with-metadata.request.json");
    let parsed = InvocationRequest::parse(&request).unwrap();
    let message = parsed
        .service_bus_message("message", TriggerDataType::String)
        .unwrap();
    assert_eq!(
        message.properties.message_id, None,
        "MessageId was overwritten by the body"
    );
    assert!(
        message
            .properties
            .shadowed
            .contains(&"messageid".to_string())
    );

    let app = TestApp::new();
    let reply = app.post("ProcessDocument", &request).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let outcome = &common::outcome_messages(&reply)[0];
    assert_eq!(outcome["taskId"], "doc-7:sentiment");
    assert!(
        app.blob_exists("results", "tasks/doc-7%3Asentiment.json")
            .await
    );
}

#[tokio::test]
async fn numbers_and_offset_timestamps_are_accepted() {
    let parsed =
        InvocationRequest::parse(&fixture("edge/servicebus-numbers-and-offsets.request.json"))
            .unwrap();
    let message = parsed
        .service_bus_message("message", TriggerDataType::String)
        .unwrap();
    assert_eq!(message.properties.delivery_count, Some(2));
    assert_eq!(message.properties.sequence_number, Some(43));
    assert_eq!(
        message.properties.enqueued_time.unwrap().to_rfc3339(),
        "2025-03-01T10:20:31+00:00"
    );
    assert_eq!(
        message.properties.expires_at.unwrap().to_rfc3339(),
        "2025-03-15T10:20:31+00:00"
    );
}

#[tokio::test]
async fn malformed_requests_are_400_with_the_problem_named_and_no_side_effect() {
    let cases = [
        (
            "edge/not-json.request.txt",
            "RequestNotJson",
            "request body is not JSON",
        ),
        (
            "edge/missing-data.request.json",
            "RequestFieldMissing",
            "request is missing $.Data",
        ),
        (
            "edge/data-not-object.request.json",
            "RequestSchemaInvalid",
            "request field $.Data is not an object",
        ),
        (
            "edge/top-level-array.request.json",
            "RequestSchemaInvalid",
            "request field $ is not",
        ),
        (
            "edge/missing-trigger-binding.request.json",
            "RequestFieldMissing",
            "request is missing $.Data.message",
        ),
    ];
    let app = TestApp::new();
    for (file, code, message) in cases {
        let reply = app.post("ProcessDocument", &fixture(file)).await;
        assert_eq!(reply.status, 400, "{file}");
        assert_eq!(reply.content_type.as_deref(), Some("application/json"));
        assert_eq!(reply.body["error"]["code"], code, "{file}");
        let text = reply.body["error"]["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{file}: {text}");
    }
    let empty = app.post("ProcessDocument", b"").await;
    assert_eq!(empty.status, 400);
    assert!(
        app.files().is_empty(),
        "malformed requests wrote {:?}",
        app.files()
    );
    assert_eq!(app.provider.calls(), 0);
}
