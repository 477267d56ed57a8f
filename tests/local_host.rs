//! The local Functions host against a scripted handler process (real processes, real ports,
//! temporary folders): settlement, dead-lettering, lock renewal, timeouts, crashes, sessions,
//! batches, blob outputs, HTTP triggers and the exact request shapes.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use docflow::broker::ReceiveMode;
use docflow::host::{DevOptions, LocalHost};
use docflow::servicebus::message::Message;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

struct TestApp {
    root: tempfile::TempDir,
    data: tempfile::TempDir,
    log: PathBuf,
}

fn sb_trigger(queue: &str, extra: Value) -> Value {
    let mut b = json!({"name": "message", "type": "serviceBusTrigger", "direction": "in", "queueName": queue, "connection": "ServiceBusConnection"});
    if let (Value::Object(b), Value::Object(extra)) = (&mut b, extra) {
        b.extend(extra);
    }
    b
}

fn write_app(functions: &[(&str, Vec<Value>)], host_extra: Value) -> TestApp {
    let root = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("script.jsonl");
    let handler =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scripted-handler/handler.py");
    let mut host = json!({
        "version": "2.0",
        "functionTimeout": "00:05:00",
        "customHandler": {"description": {"defaultExecutablePath": "python3", "arguments": [handler.display().to_string()]}},
        "extensions": {"http": {"routePrefix": "api"}, "serviceBus": {"maxConcurrentCalls": 4, "maxConcurrentSessions": 2, "maxAutoLockRenewalDuration": "00:05:00"}}
    });
    if let (Value::Object(h), Value::Object(extra)) = (&mut host, host_extra) {
        h.extend(extra);
    }
    std::fs::write(root.path().join("host.json"), host.to_string()).unwrap();
    std::fs::write(
        root.path().join("local.settings.json"),
        json!({"IsEncrypted": false, "Values": {"FUNCTIONS_WORKER_RUNTIME": "custom", "SCRIPT_LOG": log.display().to_string()}}).to_string(),
    )
    .unwrap();
    let queue = |name: &str, props: Value| json!({"Name": name, "Properties": props});
    let topology = json!({"UserConfig": {"Namespaces": [{"Name": "local", "Queues": [
        queue("work", json!({"LockDuration": "PT5S", "MaxDeliveryCount": 3})),
        queue("sessions", json!({"LockDuration": "PT5S", "RequiresSession": true})),
        queue("batch", json!({})),
        queue("next", json!({})),
    ]}]}});
    std::fs::write(
        root.path().join("servicebus.config.json"),
        topology.to_string(),
    )
    .unwrap();
    for (name, bindings) in functions {
        std::fs::create_dir(root.path().join(name)).unwrap();
        std::fs::write(
            root.path().join(name).join("function.json"),
            json!({"bindings": bindings}).to_string(),
        )
        .unwrap();
    }
    TestApp { root, data, log }
}

async fn start(app: &TestApp) -> (LocalHost, CancellationToken) {
    start_with_env(app, Vec::new()).await
}

async fn start_with_env(
    app: &TestApp,
    env: Vec<(String, String)>,
) -> (LocalHost, CancellationToken) {
    let shutdown = CancellationToken::new();
    let options = DevOptions {
        app_root: app.root.path().to_path_buf(),
        data_dir: app.data.path().to_path_buf(),
        http_port: 0,
        broker_port: 0,
        amqp_port: None,
        handler_log: None,
        env,
        instances: 1,
    };
    (
        LocalHost::start(options, shutdown.clone()).await.unwrap(),
        shutdown,
    )
}

fn records(app: &TestApp) -> Vec<Value> {
    std::fs::read_to_string(&app.log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn ends(app: &TestApp, function: &str) -> Vec<Value> {
    records(app)
        .into_iter()
        .filter(|r| r["phase"] == "end" && r["function"] == function)
        .collect()
}

async fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls an async condition until it holds.
async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The raw body text of a recorded Service Bus invocation.
fn body_text(record: &Value) -> String {
    serde_json::from_str(record["request"]["Data"]["message"].as_str().unwrap()).unwrap()
}

async fn send(host: &LocalHost, queue: &str, message: Message) {
    host.context()
        .broker
        .send(queue, vec![message])
        .await
        .unwrap();
}

async fn dead_letters(host: &LocalHost, queue: &str) -> Vec<docflow::servicebus::ReceivedMessage> {
    host.context()
        .broker
        .browse(queue, true, 0, 100)
        .await
        .unwrap()
}

async fn counts(host: &LocalHost, queue: &str) -> docflow::broker::Counts {
    host.context().broker.counts(queue).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_2xx_reply_abandons_until_the_message_is_dead_lettered() {
    let app = write_app(
        &[("Fail500", vec![sb_trigger("work", json!({}))])],
        json!({}),
    );
    let (host, _stop) = start(&app).await;
    send(&host, "work", Message::new("{\"x\":1}")).await;
    wait_until("three failed deliveries", Duration::from_secs(20), || {
        ends(&app, "Fail500").len() >= 3
    })
    .await;
    eventually("dead-lettering", Duration::from_secs(10), || async {
        dead_letters(&host, "work").await.len() == 1
    })
    .await;
    let dead = dead_letters(&host, "work").await;
    assert_eq!(
        dead[0].dead_letter_reason(),
        Some("MaxDeliveryCountExceeded")
    );
    let deliveries: Vec<Value> = ends(&app, "Fail500")
        .iter()
        .map(|r| r["deliveryCount"].clone())
        .collect();
    assert_eq!(deliveries, vec![json!(1), json!(2), json!(3)]);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_without_content_type_is_abandoned() {
    let app = write_app(
        &[("NoContentType", vec![sb_trigger("work", json!({}))])],
        json!({}),
    );
    let (host, _stop) = start(&app).await;
    send(&host, "work", Message::new("{}")).await;
    wait_until("redeliveries", Duration::from_secs(20), || {
        ends(&app, "NoContentType").len() >= 2
    })
    .await;
    assert_eq!(
        ends(&app, "NoContentType")[1]["deliveryCount"],
        2,
        "the first delivery was abandoned"
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_renewal_keeps_a_slow_invocation_from_being_redelivered() {
    let app = write_app(&[("Slow", vec![sb_trigger("work", json!({}))])], json!({}));
    let (host, _stop) = start(&app).await;
    send(&host, "work", Message::new("{}")).await;
    wait_until("the slow invocation", Duration::from_secs(30), || {
        ends(&app, "Slow").len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let starts = records(&app)
        .iter()
        .filter(|r| r["phase"] == "start")
        .count();
    assert_eq!(
        starts, 1,
        "the 5 s lock was renewed during the 7 s invocation: no second delivery"
    );
    let c = counts(&host, "work").await;
    assert_eq!((c.active, c.dead_lettered), (0, 0), "completed");
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_invocation_in_flight_finish_and_completes_its_message() {
    let app = write_app(&[("Slow", vec![sb_trigger("work", json!({}))])], json!({}));
    let (host, _stop) = start_with_env(&app, vec![("SLOW_SECONDS".into(), "2".into())]).await;
    let broker = host.context().broker.clone();
    send(&host, "work", Message::new("{}")).await;
    wait_until("the invocation to start", Duration::from_secs(30), || {
        records(&app).iter().any(|r| r["phase"] == "start")
    })
    .await;
    // As on Azure: the listener stops receiving, the handler and the broker stay up until the
    // invocation in flight is over, and its message is completed, not abandoned.
    host.shutdown().await;
    let ended = ends(&app, "Slow");
    assert_eq!(ended.len(), 1, "the handler finished the invocation");
    assert_eq!(ended[0]["deliveryCount"], 1);
    let c = broker.counts("work").await.unwrap();
    assert_eq!(
        (c.active, c.locked, c.dead_lettered),
        (0, 0, 0),
        "the message was completed before the host stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_timeout_restarts_the_handler_and_the_message_is_redelivered() {
    let app = write_app(
        &[("HangOnce", vec![sb_trigger("work", json!({}))])],
        json!({"functionTimeout": "00:00:02"}),
    );
    let (host, _stop) = start(&app).await;
    send(&host, "work", Message::new("{}")).await;
    wait_until("the redelivery to succeed", Duration::from_secs(30), || {
        ends(&app, "HangOnce")
            .iter()
            .any(|r| r["deliveryCount"] == 2)
    })
    .await;
    let starts: Vec<Value> = records(&app)
        .into_iter()
        .filter(|r| r["phase"] == "start")
        .collect();
    assert_eq!(starts[0]["deliveryCount"], 1);
    assert_ne!(
        starts[0]["pid"], starts[1]["pid"],
        "the handler process was restarted"
    );
    eventually("completion", Duration::from_secs(5), || async {
        counts(&host, "work").await.active == 0
    })
    .await;
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_handler_is_restarted_and_the_message_processed_once() {
    let app = write_app(
        &[("SlowOnce", vec![sb_trigger("work", json!({}))])],
        json!({}),
    );
    let (host, _stop) = start(&app).await;
    send(
        &host,
        "work",
        Message::new("{}").with_message_id("only-one"),
    )
    .await;
    wait_until(
        "the first invocation to start",
        Duration::from_secs(20),
        || !records(&app).is_empty(),
    )
    .await;
    let pid = records(&app)[0]["pid"].as_i64().unwrap();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    wait_until("the redelivery", Duration::from_secs(30), || {
        ends(&app, "SlowOnce").len() == 1
    })
    .await;
    let done = ends(&app, "SlowOnce");
    assert_eq!(done[0]["deliveryCount"], 2);
    assert_ne!(
        done[0]["pid"].as_i64().unwrap(),
        pid,
        "a new handler process served it"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ends(&app, "SlowOnce").len(), 1, "processed exactly once");
    assert_eq!(counts(&host, "work").await.active, 0);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_keep_fifo_order_per_session_and_run_in_parallel() {
    let app = write_app(
        &[(
            "Session",
            vec![sb_trigger("sessions", json!({"isSessionsEnabled": true}))],
        )],
        json!({}),
    );
    let (host, _stop) = start(&app).await;
    for i in 0..4 {
        for s in ["A", "B"] {
            send(
                &host,
                "sessions",
                Message::new(format!("{{\"s\":\"{s}\",\"i\":{i}}}")).with_session_id(s),
            )
            .await;
        }
    }
    wait_until("eight invocations", Duration::from_secs(30), || {
        ends(&app, "Session").len() == 8
    })
    .await;
    let done = ends(&app, "Session");
    for s in ["A", "B"] {
        let order: Vec<i64> = done
            .iter()
            .filter(|r| r["sessionId"] == s)
            .map(|r| {
                serde_json::from_str::<Value>(&body_text(r)).unwrap()["i"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(order, vec![0, 1, 2, 3], "session {s} in order");
    }
    let span = |s: &str| {
        let rs: Vec<&Value> = done.iter().filter(|r| r["sessionId"] == s).collect();
        (
            rs.iter()
                .map(|r| r["started"].as_f64().unwrap())
                .fold(f64::MAX, f64::min),
            rs.iter()
                .map(|r| r["ended"].as_f64().unwrap())
                .fold(0.0, f64::max),
        )
    };
    let (a, b) = (span("A"), span("B"));
    assert!(
        a.0 < b.1 && b.0 < a.1,
        "sessions A {a:?} and B {b:?} overlapped in time"
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_trigger_gets_the_batch_payload_shape() {
    let app = write_app(
        &[(
            "Batch",
            vec![sb_trigger(
                "batch",
                json!({"cardinality": "many", "maxMessageBatchSize": 10}),
            )],
        )],
        json!({}),
    );
    // Queue the messages before the host starts, so they arrive as one batch.
    let app_root = app.root.path().to_path_buf();
    {
        let entities = docflow::broker::Entities::parse(
            &std::fs::read_to_string(app_root.join("servicebus.config.json")).unwrap(),
        )
        .unwrap();
        let broker = docflow::broker::Broker::open(
            entities,
            docflow::broker::BrokerOptions::new(app.data.path().join("broker")),
        )
        .unwrap();
        for i in 0..3 {
            broker
                .send(
                    "batch",
                    vec![
                        Message::new(format!("{{\"documentId\":\"doc-{i}\"}}"))
                            .with_correlation_id(format!("c{i}")),
                    ],
                )
                .await
                .unwrap();
        }
    }
    let (host, _stop) = start(&app).await;
    wait_until("the batch", Duration::from_secs(20), || {
        !ends(&app, "Batch").is_empty()
    })
    .await;
    let request = &ends(&app, "Batch")[0]["request"];
    let messages: Vec<Value> =
        serde_json::from_str(request["Data"]["message"].as_str().unwrap()).unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0], json!({"documentId": "doc-0"}));
    let fixture = common::fixture_json("custom-handler/servicebus-batch.request.json");
    let expected: std::collections::BTreeSet<&String> =
        fixture["Metadata"].as_object().unwrap().keys().collect();
    let got: std::collections::BTreeSet<&String> =
        request["Metadata"].as_object().unwrap().keys().collect();
    assert_eq!(
        got, expected,
        "the same metadata keys as the host's batch payload"
    );
    let counts_: Vec<i64> =
        serde_json::from_str(request["Metadata"]["DeliveryCountArray"].as_str().unwrap()).unwrap();
    assert_eq!(counts_, vec![1, 1, 1]);
    let correlation: Vec<Value> =
        serde_json::from_str(request["Metadata"]["CorrelationIdArray"].as_str().unwrap()).unwrap();
    assert_eq!(correlation, vec![json!("c0"), json!("c1"), json!("c2")]);
    let stamp = serde_json::from_str::<Vec<String>>(
        request["Metadata"]["EnqueuedTimeUtcArray"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert!(
        regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}$")
            .unwrap()
            .is_match(&stamp[0]),
        "{stamp:?}"
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_single_message_request_matches_the_host_fixture() {
    let app = write_app(
        &[
            ("Echo", vec![sb_trigger("work", json!({}))]),
            (
                "EchoBinary",
                vec![sb_trigger("batch", json!({"dataType": "binary"}))],
            ),
        ],
        json!({}),
    );
    let (host, _stop) = start(&app).await;
    let body = r#"{"documentId":"doc-123","blobPath":"incoming/doc-123.pdf","task":"summarize","tenantId":"contoso"}"#;
    let message = || {
        Message::new(body)
            .with_message_id("b7e0c1d2-8f3a-4c55-a1e2-9d0f6b7c8a91")
            .with_correlation_id("req-7781")
            .with_content_type("application/json")
            .with_property("tenant", "contoso")
            .with_property("priority", 5i64)
            .with_time_to_live(Duration::from_secs(3600))
    };
    send(&host, "work", message()).await;
    send(&host, "batch", message()).await;
    wait_until("both invocations", Duration::from_secs(20), || {
        ends(&app, "Echo").len() == 1 && ends(&app, "EchoBinary").len() == 1
    })
    .await;
    let no_offset = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$").unwrap();
    let offset = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$").unwrap();
    let seven_digits = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$").unwrap();
    for (function, fixture) in [
        ("Echo", "servicebus-single.request.json"),
        ("EchoBinary", "servicebus-single-binary.request.json"),
    ] {
        let got = &ends(&app, function)[0]["request"];
        let want = common::fixture_json(&format!("custom-handler/{fixture}"));
        let keys = |v: &Value| {
            v.as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<std::collections::BTreeSet<String>>()
        };
        assert_eq!(
            keys(&got["Metadata"]),
            keys(&want["Metadata"]),
            "{function}: metadata keys"
        );
        assert_eq!(
            keys(&got["Data"]),
            keys(&want["Data"]),
            "{function}: data keys"
        );
        assert_eq!(
            got["Data"]["message"], want["Data"]["message"],
            "{function}: body encoding"
        );
        for key in [
            "DeliveryCount",
            "LockToken",
            "MessageId",
            "ContentType",
            "CorrelationId",
            "documentId",
            "tenantId",
        ] {
            if want["Metadata"].get(key).is_some() && key != "LockToken" {
                assert_eq!(
                    got["Metadata"][key], want["Metadata"][key],
                    "{function}: {key}"
                );
            }
        }
        let lock = got["Metadata"]["LockToken"].as_str().unwrap();
        assert!(
            lock.starts_with('"') && lock.ends_with('"'),
            "LockToken double-encoded: {lock}"
        );
        assert!(
            got["Metadata"]["SequenceNumber"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .is_ok()
        );
        assert_eq!(
            got["Metadata"]["ApplicationProperties"],
            want["Metadata"]["ApplicationProperties"]
        );
        assert!(no_offset.is_match(got["Metadata"]["EnqueuedTimeUtc"].as_str().unwrap()));
        assert!(offset.is_match(got["Metadata"]["ExpiresAt"].as_str().unwrap()));
        assert_eq!(
            keys(&got["Metadata"]["sys"]),
            keys(&want["Metadata"]["sys"])
        );
        assert!(seven_digits.is_match(got["Metadata"]["sys"]["UtcNow"].as_str().unwrap()));
        assert_eq!(
            keys(&got["Metadata"]["Client"]),
            keys(&want["Metadata"]["Client"])
        );
    }
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_output_paths_resolve_binding_expressions() {
    let blob_out = |name: &str, path: &str| json!({"name": name, "type": "blob", "direction": "out", "path": path, "connection": "AzureWebJobsStorage"});
    let app = write_app(
        &[
            (
                "BlobOut",
                vec![
                    sb_trigger("work", json!({})),
                    blob_out("result", "out/{documentId}/{MessageId}-{sys.randguid}.json"),
                ],
            ),
            (
                "Forward",
                vec![
                    sb_trigger("batch", json!({})),
                    json!({"name": "next", "type": "serviceBus", "direction": "out", "queueName": "next", "connection": "ServiceBusConnection"}),
                ],
            ),
        ],
        json!({}),
    );
    let (host, _stop) = start(&app).await;
    send(
        &host,
        "work",
        Message::new(r#"{"documentId":"doc-9"}"#).with_message_id("m-9"),
    )
    .await;
    send(&host, "batch", Message::new("{}")).await;
    let folder = app.data.path().join("blobs/out/doc-9");
    wait_until("the blob", Duration::from_secs(20), || {
        folder.is_dir() && std::fs::read_dir(&folder).unwrap().count() == 1
    })
    .await;
    let file = std::fs::read_dir(&folder)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        regex::Regex::new(r"^m-9-[0-9a-f-]{36}\.json$")
            .unwrap()
            .is_match(&name),
        "{name}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        r#"{"document":"doc-9","ok":true}"#,
        "objects are written compact"
    );
    let forwarded = host
        .context()
        .broker
        .receive(
            "next",
            false,
            ReceiveMode::ReceiveAndDelete,
            Duration::from_secs(10),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        forwarded.message.body, br#"{"from": "Forward"}"#,
        "array elements are sent exactly"
    );
    assert_eq!(
        forwarded.message.content_type.as_deref(),
        Some("text/plain")
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresolvable_blob_path_fails_the_invocation() {
    let app = write_app(
        &[(
            "BlobOut",
            vec![
                sb_trigger("work", json!({})),
                json!({"name": "result", "type": "blob", "direction": "out", "path": "out/{missing}.json"}),
            ],
        )],
        json!({}),
    );
    let (host, _stop) = start(&app).await;
    send(&host, "work", Message::new(r#"{"documentId":"doc-1"}"#)).await;
    eventually(
        "dead-lettering after failed outputs",
        Duration::from_secs(30),
        || async { dead_letters(&host, "work").await.len() == 1 },
    )
    .await;
    assert_eq!(
        ends(&app, "BlobOut").len(),
        3,
        "each delivery ran the handler, then the output failed"
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_triggers_map_route_parameters_and_the_res_output() {
    let app = write_app(
        &[(
            "Http",
            vec![
                json!({"name": "req", "type": "httpTrigger", "direction": "in", "methods": ["get", "post"], "route": "items/{id}", "authLevel": "anonymous"}),
                json!({"name": "res", "type": "http", "direction": "out"}),
            ],
        )],
        json!({}),
    );
    let (host, _stop) = start(&app).await;
    let base = format!("http://127.0.0.1:{}", host.http_port());
    let http = reqwest::Client::new();
    let answer = http
        .post(format!("{base}/api/items/42?x=1&x=2"))
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    assert_eq!(answer.headers()["x-item"], "42");
    assert_eq!(answer.headers()["content-type"], "application/json");
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body,
        json!({"id": "42", "query": {"x": "1,2"}, "method": "POST", "body": "hello"})
    );
    let missing = http
        .get(format!("{base}/api/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.json::<Value>().await.unwrap()["error"]["message"].is_string());
    let wrong_method = http
        .delete(format!("{base}/api/items/42"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 404);
    let table = host.function_table();
    assert!(
        table.contains(&format!("Http: [GET,POST] {base}/api/items/{{id}}")),
        "{table}"
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_mode_sends_the_original_request_to_the_handler() {
    let app = write_app(
        &[(
            "Ping",
            vec![
                json!({"name": "req", "type": "httpTrigger", "direction": "in", "methods": ["get"], "route": "ping"}),
                json!({"name": "res", "type": "http", "direction": "out"}),
            ],
        )],
        json!({"customHandler": {
            "description": {"defaultExecutablePath": "python3", "arguments": [Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scripted-handler/handler.py").display().to_string()]},
            "enableForwardingHttpRequest": true
        }}),
    );
    let (host, _stop) = start(&app).await;
    let answer = reqwest::get(format!(
        "http://127.0.0.1:{}/api/ping?x=1",
        host.http_port()
    ))
    .await
    .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.json::<Value>().await.unwrap(),
        json!({"status": "ready"}),
        "the handler's own answer, unchanged"
    );
    assert!(
        records(&app).is_empty(),
        "no Data/Metadata invocation was made"
    );
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_requests_honour_function_timeout() {
    let handler =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scripted-handler/handler.py");
    let app = write_app(
        &[(
            "Slow",
            vec![
                json!({"name": "req", "type": "httpTrigger", "direction": "in", "methods": ["get"], "route": "{what}"}),
                json!({"name": "res", "type": "http", "direction": "out"}),
            ],
        )],
        json!({"functionTimeout": "00:00:02", "customHandler": {
            "description": {"defaultExecutablePath": "python3", "arguments": [handler.display().to_string()]},
            "enableForwardingHttpRequest": true
        }}),
    );
    let (host, _stop) = start(&app).await;
    let base = format!("http://127.0.0.1:{}/api", host.http_port());
    // The handler sleeps 30 s on /api/slow: the host answers 500 at functionTimeout.
    let answer = reqwest::get(format!("{base}/slow")).await.unwrap();
    assert_eq!(answer.status(), 500);
    let body: Value = answer.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exceeded functionTimeout"),
        "{body}"
    );
    // The handler was restarted, and the next request is served.
    let next = reqwest::get(format!("{base}/ping")).await.unwrap();
    assert_eq!(next.status(), 200);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrent_calls_bounds_parallel_invocations() {
    let app = write_app(
        &[("Slow", vec![sb_trigger("batch", json!({}))])],
        json!({"extensions": {"serviceBus": {"maxConcurrentCalls": 2}}}),
    );
    let (host, _stop) = start_with_env(&app, vec![("SLOW_SECONDS".into(), "0.6".into())]).await;
    for i in 0..6 {
        send(&host, "batch", Message::new(format!("{{\"i\":{i}}}"))).await;
    }
    wait_until("six invocations", Duration::from_secs(30), || {
        ends(&app, "Slow").len() == 6
    })
    .await;
    let done = ends(&app, "Slow");
    let mut most = 0;
    for r in &done {
        let t = r["started"].as_f64().unwrap() + 0.05;
        let running = done
            .iter()
            .filter(|o| o["started"].as_f64().unwrap() <= t && o["ended"].as_f64().unwrap() > t)
            .count();
        most = most.max(running);
    }
    assert_eq!(most, 2, "two invocations at a time, never more");
    host.shutdown().await;
}

#[test]
fn unsupported_bindings_are_refused_with_file_and_field() {
    let app = write_app(
        &[(
            "Timer",
            vec![json!({"name": "t", "type": "timerTrigger", "direction": "in"})],
        )],
        json!({}),
    );
    let err = docflow::host::config::AppConfig::load(app.root.path()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Timer/function.json: $.bindings[0].type: timerTrigger (in) bindings are not supported by docflow dev"
    );
}
