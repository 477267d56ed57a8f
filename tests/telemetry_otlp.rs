//! One OpenTelemetry trace per document: `docflow dev` with the standard OTLP variables set
//! exports the handler's spans to a real OTLP/HTTP receiver (OpenTelemetry's own protobuf
//! definitions, `tests/fixtures/otlp/receiver.py`, installed by
//! `scripts/install-otlp-receiver.sh`).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, free_port};
use serde_json::Value;

/// The receiver on a free port, with extra arguments (`--tls-dir DIR`); returns it and its
/// port.
fn start_receiver_with(args: &[&str]) -> (Running, u16) {
    let python = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.tools/otlp-receiver-venv/bin/python"
    );
    assert!(
        std::path::Path::new(python).exists(),
        "{python} is missing: run bash scripts/install-test-tools.sh"
    );
    let mut child = Command::new(python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/otlp/receiver.py"
        ))
        .args(["--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .trim()
        .strip_prefix("LISTENING ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("the receiver printed {line:?}"));
    (Running(child), port)
}

fn start_dev(data: &std::path::Path, http_port: u16, env: &[(&str, String)]) -> Running {
    let mut command = Command::new(env!("CARGO_BIN_EXE_docflow"));
    command
        .args(["dev", "--app-root", env!("CARGO_MANIFEST_DIR")])
        .args(["--http-port", &http_port.to_string(), "--broker-port", "0"])
        .args(["--dashboard-port", "0"])
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let running = Running(command.spawn().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", http_port)).is_err() {
        assert!(Instant::now() < deadline, "docflow dev did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    running
}

/// `docflow dev` with a fresh receiver: `OTEL_EXPORTER_OTLP_ENDPOINT` points at it unless
/// `otlp` is false, and `env` is set besides (`{receiver}` in a value is its port).
struct Stack {
    api: String,
    receiver: u16,
    _dev: Running,
    _data: tempfile::TempDir,
    _receiver: Running,
}

impl Stack {
    fn start(receiver_args: &[&str], otlp: bool, env: &[(&str, &str)]) -> Self {
        let (receiver_process, receiver) = start_receiver_with(receiver_args);
        let mut vars: Vec<(&str, String)> = env
            .iter()
            .map(|(k, v)| (*k, v.replace("{receiver}", &receiver.to_string())))
            .collect();
        if otlp {
            vars.push((
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{receiver}"),
            ));
        }
        let data = tempfile::tempdir().unwrap();
        let http_port = free_port();
        let dev = start_dev(data.path(), http_port, &vars);
        Stack {
            api: format!("http://127.0.0.1:{http_port}/api/documents"),
            receiver,
            _dev: dev,
            _data: data,
            _receiver: receiver_process,
        }
    }
}

/// What the receiver holds at `url` (its `/spans`, `/metrics` or `/ai`).
async fn received(client: &reqwest::Client, url: &str) -> Vec<Value> {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

async fn submit(http: &reqwest::Client, api: &str, traceparent: Option<&str>) -> Value {
    let mut request = http
        .post(format!("{api}?analyses=summarize,sentiment"))
        .header("content-type", "text/plain")
        .body("Globex GmbH will pay $1,200.00 on March 3, 2025. Either party may terminate.");
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    let accepted = request.send().await.unwrap();
    assert_eq!(accepted.status().as_u16(), 202);
    let body: Value = accepted.json().await.unwrap();
    let url = format!("{api}/{}", body["id"].as_str().unwrap());
    common::completed(http, &url, Duration::from_secs(60)).await
}

/// The spans of one trace, once its last ones have arrived: the completion's consumer span,
/// both audit records and the local host's receipt and settlement of a task, which its own
/// process exports on its own schedule (or after 30 s).
async fn trace_spans(receiver: u16, trace_id: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = received(
            &reqwest::Client::new(),
            &format!("http://127.0.0.1:{receiver}/spans"),
        )
        .await;
        let spans: Vec<Value> = all
            .into_iter()
            .filter(|s| s["trace_id"] == trace_id)
            .collect();
        let count = |name: &str| spans.iter().filter(|s| s["name"] == name).count();
        let hosted = |name: &str| {
            spans
                .iter()
                .any(|s| s["name"] == name && s["resource"]["service.name"] == "docflow-local-host")
        };
        let done = count("process analysis-completed") == 1
            && count("process audit") == 2
            && hosted("receive ai-tasks")
            && hosted("complete ai-tasks");
        if done || Instant::now() > deadline {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_per_document_reaches_an_otlp_receiver() {
    let stack = Stack::start(&[], true, &[("OTEL_BSP_SCHEDULE_DELAY", "100")]);
    let (api, receiver_port) = (stack.api.as_str(), stack.receiver);
    let http = reqwest::Client::new();
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let doc = submit(
        &http,
        api,
        Some(&format!("00-{caller_trace}-{caller_span}-01")),
    )
    .await;
    assert_eq!(doc["correlationId"], caller_trace);
    assert_eq!(doc["traceId"], caller_trace, "the document names its trace");
    let all_spans = trace_spans(receiver_port, caller_trace).await;
    let by_id: BTreeMap<&str, &Value> = all_spans
        .iter()
        .map(|s| (s["span_id"].as_str().unwrap(), s))
        .collect();
    // The local host's own spans (the process of `docflow dev`) are in the same trace: it
    // receives each message on the context its application properties carry, and settles it.
    let service = |s: &Value| {
        s["resource"]["service.name"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    let host: Vec<&Value> = all_spans
        .iter()
        .filter(|s| service(s) == "docflow-local-host")
        .collect();
    let receive = host
        .iter()
        .find(|s| s["name"] == "receive ai-tasks" && s["kind"] == "consumer")
        .unwrap_or_else(|| panic!("the local host received a task: {host:#?}"));
    assert!(receive["attributes"]["docflow.queue_wait_ms"].as_i64() >= Some(0));
    assert!(
        host.iter().any(|s| s["name"] == "complete ai-tasks"
            && s["kind"] == "client"
            && s["parent_span_id"] == receive["span_id"]),
        "the message was completed inside its receive span"
    );
    let spans: Vec<Value> = all_spans
        .iter()
        .filter(|s| service(s) == "docflow")
        .cloned()
        .collect();
    let names: BTreeSet<String> = spans
        .iter()
        .map(|s| {
            format!(
                "{} {}",
                s["kind"].as_str().unwrap(),
                s["name"].as_str().unwrap()
            )
        })
        .collect();
    for expected in [
        "server POST /documents",
        "producer send documents",
        "consumer process documents",
        "producer send ai-tasks",
        "consumer process ai-tasks",
        "producer send task-results",
        "consumer process task-results",
        "producer send analysis-completed",
        "consumer process analysis-completed",
    ] {
        assert!(names.contains(expected), "{expected} in {names:#?}");
    }
    // Parentage: the submission continues the caller's span; every consumer span is a child
    // of the producer span that created its message.
    let server = spans.iter().find(|s| s["kind"] == "server").unwrap();
    assert_eq!(server["parent_span_id"], caller_span);
    for consumer in spans.iter().filter(|s| s["kind"] == "consumer") {
        let parent = by_id
            .get(consumer["parent_span_id"].as_str().unwrap())
            .unwrap_or_else(|| panic!("the parent of {consumer} is in the trace"));
        assert_eq!(parent["kind"], "producer", "{consumer}");
        // AuditLog reads what the topics' `audit` subscriptions forward to its queue.
        if consumer["name"] != "process audit" {
            assert_eq!(
                parent["name"]
                    .as_str()
                    .unwrap()
                    .replace("send ", "process "),
                consumer["name"].as_str().unwrap()
            );
        }
        assert_eq!(consumer["attributes"]["messaging.system"], "servicebus");
        assert!(
            consumer["attributes"]["docflow.queue_wait_ms"].as_i64() >= Some(0),
            "the queue wait is on {consumer}"
        );
    }
    let tasks = spans
        .iter()
        .filter(|s| s["name"] == "process ai-tasks")
        .count();
    assert_eq!(tasks, 2, "one consumer span per task");
    let task = spans
        .iter()
        .find(|s| s["name"] == "process ai-tasks")
        .unwrap();
    assert_eq!(
        task["attributes"]["messaging.servicebus.message.delivery_count"],
        1
    );
    assert_eq!(
        task["attributes"]["messaging.message.conversation_id"],
        caller_trace
    );

    // The fan-in: the invocation that completes the document links to every task's span (the
    // producer span of the task's outcome, a child of the task's consumer span).
    let completed = spans
        .iter()
        .find(|s| s["name"] == "send analysis-completed")
        .unwrap();
    let fan_in = by_id[completed["parent_span_id"].as_str().unwrap()];
    let links = fan_in["links"].as_array().unwrap();
    assert_eq!(links.len(), 2, "{fan_in}");
    for link in links {
        let linked = by_id[link["span_id"].as_str().unwrap()];
        assert_eq!(linked["name"], "send task-results", "{linked}");
        assert_eq!(
            by_id[linked["parent_span_id"].as_str().unwrap()]["name"],
            "process ai-tasks"
        );
    }

    // Without a traceparent, a submission starts a trace of its own.
    let doc = submit(&http, api, None).await;
    let correlation = doc["correlationId"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let own = loop {
        let all = received(&http, &format!("http://127.0.0.1:{receiver_port}/spans")).await;
        let root = all.iter().find(|s| {
            s["name"] == "POST /documents"
                && s["parent_span_id"] == ""
                && s["trace_id"] != caller_trace
        });
        if let Some(root) = root {
            let own = root["trace_id"].as_str().unwrap().to_string();
            assert_eq!(
                doc["traceId"],
                own.as_str(),
                "a new trace, named by the document"
            );
            break own;
        }
        assert!(Instant::now() < deadline, "no root span for {correlation}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let spans = trace_spans(receiver_port, &own).await;
    assert!(
        spans
            .iter()
            .any(|s| s["name"] == "process analysis-completed"),
        "the second document's trace reaches its completion"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_insights_receives_one_operation_per_document() {
    // The receiver stands in for Application Insights' ingestion endpoint (`/v2/track`). The
    // exporter speaks HTTPS only, so the receiver serves a certificate signed by a CA of its
    // own that the app is told to trust (SSL_CERT_FILE).
    let tls = tempfile::tempdir().unwrap();
    let ca_file = tls.path().join("ca.pem").display().to_string();
    let stack = Stack::start(
        &["--tls-dir", tls.path().to_str().unwrap()],
        false,
        &[
            (
                "APPLICATIONINSIGHTS_CONNECTION_STRING",
                "InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=https://127.0.0.1:{receiver}/",
            ),
            ("SSL_CERT_FILE", &ca_file),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let (api, receiver_port) = (stack.api.as_str(), stack.receiver);
    let trace = "0af7651916cd43dd8448eb211c80319c";
    submit(
        &reqwest::Client::new(),
        api,
        Some(&format!("00-{trace}-b7ad6b7169203331-01")),
    )
    .await;
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(tls.path().join("ca.pem")).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let envelopes = loop {
        let all = received(&client, &format!("https://127.0.0.1:{receiver_port}/ai")).await;
        let ours: Vec<Value> = all
            .into_iter()
            .filter(|e| e["tags"]["ai.operation.id"] == trace)
            .collect();
        let completed = ours
            .iter()
            .any(|e| e["data"]["baseData"]["name"] == "process analysis-completed");
        // The local host's items come from its own process, on its own schedule.
        let hosted = ours
            .iter()
            .any(|e| e["tags"]["ai.cloud.role"] == "docflow-local-host");
        if (completed && hosted) || Instant::now() > deadline {
            break ours;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let items: BTreeSet<(String, String)> = envelopes
        .iter()
        .map(|e| {
            (
                e["data"]["baseType"].as_str().unwrap_or("").to_string(),
                e["data"]["baseData"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    for (base, name) in [
        ("RequestData", "POST /documents"),
        ("RemoteDependencyData", "send documents"),
        ("RequestData", "process documents"),
        ("RemoteDependencyData", "send ai-tasks"),
        ("RequestData", "process ai-tasks"),
        ("RequestData", "process task-results"),
        ("RequestData", "process analysis-completed"),
    ] {
        assert!(
            items.contains(&(base.to_string(), name.to_string())),
            "{base} {name} in {items:#?}"
        );
    }
    assert!(
        envelopes
            .iter()
            .all(|e| e["iKey"] == "00000000-0000-0000-0000-000000000001"),
        "every item carries the connection string's key"
    );
    // The application map shows the app and the host that runs it, in one operation.
    let roles: BTreeSet<&str> = envelopes
        .iter()
        .filter_map(|e| e["tags"]["ai.cloud.role"].as_str())
        .collect();
    assert_eq!(roles, BTreeSet::from(["docflow", "docflow-local-host"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_reach_an_otlp_receiver() {
    let stack = Stack::start(&[], true, &[("OTEL_METRIC_EXPORT_INTERVAL", "500")]);
    let http = reqwest::Client::new();
    submit(&http, &stack.api, None).await;
    // Every export carries the cumulative sums: wait for one after the document completed.
    let wanted = [
        "docflow.invocations",
        "messaging.process.duration",
        "docflow.queue.wait",
        "docflow.document.duration",
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "docflow.llm.requests",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = received(
            &http,
            &format!("http://127.0.0.1:{}/metrics", stack.receiver),
        )
        .await;
        let names: BTreeSet<&str> = metrics.iter().filter_map(|m| m["name"].as_str()).collect();
        let aggregated = metrics.iter().any(|m| {
            m["name"] == "docflow.invocations"
                && m["scope"] == "docflow"
                && m.to_string().contains("AggregateResults")
        });
        if wanted.iter().all(|w| names.contains(w)) && aggregated {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics received: {names:?}, AggregateResults counted: {aggregated}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
