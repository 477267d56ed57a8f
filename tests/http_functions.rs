//! The HTTP functions through the real router, in both of the host's modes: payload mode
//! (`POST /SubmitDocument` with `Data.req`, answered in `Outputs.res`) and forwarding mode (the
//! original request at `/api/documents`).

mod common;

use std::sync::Arc;

use common::fixture_json;
use docflow::blob::LocalFolderStore;
use docflow::config::Settings;
use docflow::functions::process_document::ProcessOptions;
use docflow::servicebus::RecordingSender;
use serde_json::{Value, json};

struct App {
    _dir: tempfile::TempDir,
    bus: RecordingSender,
    registry: Arc<docflow::functions::Registry>,
}

fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let bus = RecordingSender::new();
    let settings = Settings::from_lookup(|_| None).unwrap();
    let registry = docflow::app::functions(
        Arc::new(LocalFolderStore::new(dir.path())),
        Arc::new(docflow::ai::offline::OfflineProvider),
        None,
        Arc::new(bus.clone()),
        &settings,
        ProcessOptions::default(),
        ProcessOptions::default(),
    );
    App {
        _dir: dir,
        bus,
        registry: Arc::new(registry),
    }
}

async fn payload_mode(app: &App, request: &Value) -> Value {
    let response = warp::test::request()
        .method("POST")
        .path("/SubmitDocument")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(request).unwrap())
        .reply(&docflow::server::routes(app.registry.clone()))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    body["Outputs"]["res"].clone()
}

#[tokio::test]
async fn payload_mode_answers_in_outputs_res() {
    let app = app();
    // The shared fixture posts a JSON body with fields a submission does not have.
    let refused = payload_mode(
        &app,
        &fixture_json("custom-handler/http-default.request.json"),
    )
    .await;
    assert_eq!(refused["statusCode"], 400);
    assert_eq!(refused["headers"]["Content-Type"], "application/json");
    let error: Value = serde_json::from_str(refused["body"].as_str().unwrap()).unwrap();
    assert_eq!(error["error"]["field"], "priority", "{error}");
    assert!(app.bus.sent().is_empty());

    let mut request = fixture_json("custom-handler/http-default.request.json");
    request["Data"]["req"]["Query"] = json!({});
    request["Data"]["req"]["Headers"]["Content-Type"] = json!(["text/plain"]);
    request["Data"]["req"]["Body"] = json!("Please summarise this short note.");
    let accepted = payload_mode(&app, &request).await;
    assert_eq!(accepted["statusCode"], 202, "{accepted}");
    let body: Value = serde_json::from_str(accepted["body"].as_str().unwrap()).unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        accepted["headers"]["Location"],
        format!("/api/documents/{id}")
    );
    let sent = app.bus.sent_to("documents");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].message_id.as_deref(), Some(id));
    assert_eq!(sent[0].subject.as_deref(), Some("DocumentSubmitted"));
    assert_eq!(
        sent[0].correlation_id.as_deref(),
        body["correlationId"].as_str()
    );
}

#[tokio::test]
async fn forwarding_mode_serves_the_original_request() {
    let app = app();
    let routes = docflow::server::routes(app.registry.clone());
    let response = warp::test::request()
        .method("POST")
        .path("/api/documents?analyses=sentiment")
        .header("content-type", "text/plain")
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .header("x-azure-functions-invocationid", "inv-1")
        .body("Great service, thank you!")
        .reply(&routes)
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        response.headers()["x-correlation-id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let status = warp::test::request()
        .method("GET")
        .path(&location)
        .reply(&routes)
        .await;
    assert_eq!(status.status(), 200);
    let doc: Value = serde_json::from_slice(status.body()).unwrap();
    assert_eq!(doc["status"], "queued");
    assert_eq!(doc["options"]["analyses"], json!(["sentiment"]));
    let missing = warp::test::request()
        .method("GET")
        .path("/api/documents/nope")
        .reply(&routes)
        .await;
    assert_eq!(missing.status(), 404);
    let wrong_method = warp::test::request()
        .method("DELETE")
        .path("/api/documents/nope")
        .reply(&routes)
        .await;
    assert_eq!(wrong_method.status(), 404);
    let body: Value = serde_json::from_slice(wrong_method.body()).unwrap();
    assert!(body["error"]["message"].is_string());
}
