//! `POST /v1/traces` in process: a captured export of the handler is kept by trace and passed
//! on unchanged to the user's endpoint; bad JSON, other encodings and foreign peers are refused.

use std::sync::Arc;

use docflow_app::dead_letters::{AuditTrail, Reasons};
use docflow_app::pipeline::store::{Containers, DocumentStore};
use docflow_blob::LocalFolderStore;
use docflow_broker::{Broker, BrokerOptions, Entities};
use docflow_dashboard::sources::{LocalBroker, Sources};
use docflow_dashboard::traces::TraceId;
use docflow_dashboard::traces::forward::{ForwardOptions, Forwarder};
use docflow_dashboard::{Bound, Dashboard};
use serde_json::{Value, json};
use warp::Filter as _;

const CAPTURED: &str = include_str!("fixtures/otlp-document.jsonl");
const TRACE: &str = "0585e92f14de945d0dbb84ae3e35bed0";

async fn dashboard(dir: &std::path::Path) -> (Arc<Dashboard>, String) {
    let topology = json!({"UserConfig": {"Namespaces": [{"Name": "sbemulatorns",
        "Queues": [{"Name": "q", "Properties": {}}], "Topics": []}]}});
    let entities = Entities::from_json(&topology).unwrap();
    let broker = Broker::open(entities, BrokerOptions::new(dir.join("broker"))).unwrap();
    let blobs: Arc<dyn docflow_blob::BlobStore> =
        Arc::new(LocalFolderStore::new(dir.join("blobs")));
    let containers = Containers::default();
    let sources = Sources {
        store: DocumentStore::new(blobs.clone(), containers.clone()),
        bus: Arc::new(LocalBroker(broker)),
        reasons: Reasons(None),
        audit: AuditTrail::new(blobs, containers.audit.clone()),
    };
    let bound = Bound::bind("127.0.0.1:0".parse().unwrap(), sources)
        .await
        .unwrap();
    (bound.dashboard().clone(), bound.local_addr().to_string())
}

fn post(host: &str, body: &str) -> warp::test::RequestBuilder {
    warp::test::request()
        .method("POST")
        .path("/v1/traces")
        .header("host", host)
        .header("content-type", "application/json")
        .remote_addr("127.0.0.1:40000".parse().unwrap())
        .body(body)
}

#[tokio::test]
async fn exports_are_kept_by_trace_and_passed_on_unchanged() {
    // The user's own receiver.
    let (got_tx, mut got) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let receiver = warp::path!("v1" / "traces")
        .and(warp::header::<String>("x-team"))
        .and(warp::body::bytes())
        .map(move |team: String, body: bytes::Bytes| {
            got_tx
                .send((team, String::from_utf8_lossy(&body).into_owned()))
                .unwrap();
            "{}"
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(warp::serve(receiver).incoming(listener).run());

    let dir = tempfile::tempdir().unwrap();
    let (d, host) = dashboard(dir.path()).await;
    let forward = ForwardOptions::from_lookup(|k| match k {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some(format!("http://{addr}")),
        "OTEL_EXPORTER_OTLP_HEADERS" => Some("x-team=docs".into()),
        _ => None,
    });
    d.forward.set(Forwarder::start(forward).unwrap()).unwrap();
    let routes = docflow_dashboard::routes::routes(d.clone());
    for body in CAPTURED.lines() {
        let r = post(&host, body).reply(&routes).await;
        assert_eq!(r.status(), 200, "{:?}", r.body());
        assert_eq!(r.body().as_ref(), b"{}");
    }
    assert_eq!(d.traces.trace(TraceId::parse(TRACE).unwrap()).len(), 25);
    for body in CAPTURED.lines() {
        let (team, forwarded) =
            tokio::time::timeout(std::time::Duration::from_secs(10), got.recv())
                .await
                .unwrap()
                .unwrap();
        assert_eq!((team.as_str(), forwarded.as_str()), ("docs", body));
    }
}

#[tokio::test]
async fn bad_bodies_other_encodings_and_foreign_peers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (d, host) = dashboard(dir.path()).await;
    let routes = docflow_dashboard::routes::routes(d.clone());
    let bad = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#;
    let r = post(&host, bad).reply(&routes).await;
    assert_eq!(r.status(), 400);
    let error: Value = serde_json::from_slice(r.body()).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("resourceSpans[0].scopeSpans[0].spans[0].traceId"),
        "{message}"
    );

    let protobuf = post(&host, "\u{0a}").header("content-type", "application/x-protobuf");
    assert_eq!(protobuf.reply(&routes).await.status(), 415);
    let far = post(&host, "{}").remote_addr("192.0.2.7:40000".parse().unwrap());
    assert_eq!(far.reply(&routes).await.status(), 403);
    let rebound = post(&host, "{}").header("host", "rebound.example");
    assert_eq!(rebound.reply(&routes).await.status(), 403);
    assert!(d.traces.is_empty());
    assert_eq!(
        post(&host, "{}").reply(&routes).await.status(),
        200,
        "an empty export"
    );
}
