//! `GET /metrics`, read by a Prometheus text parser (`prometheus-parse`): the handler's own
//! (`docflow serve`), and `docflow dev`'s on the dashboard's port, which adds the broker's
//! gauges per queue and subscription to the handler's metrics.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Running, free_port};
use prometheus_parse::{Sample, Scrape, Value};

fn parse(text: &str) -> Scrape {
    Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text parses")
}

async fn scrape(url: &str) -> (String, Scrape) {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "{url}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.unwrap();
    let scrape = parse(&text);
    (text, scrape)
}

/// The samples of `metric` whose labels include every one of `labels`.
fn samples<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect()
}

/// A counter's or gauge's value summed over matching samples.
fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    samples(scrape, metric, labels)
        .iter()
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            other => panic!("{metric} is not a single value: {other:?}"),
        })
        .sum()
}

/// A histogram's count (its `+Inf` bucket) summed over matching samples.
fn count(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    samples(scrape, metric, labels)
        .iter()
        .map(|s| match &s.value {
            Value::Histogram(buckets) => buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map_or(0.0, |b| b.count),
            other => panic!("{metric} is not a histogram: {other:?}"),
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_serves_its_metrics() {
    let port = free_port();
    let blobs = tempfile::tempdir().unwrap();
    let _serve = Running(
        Command::new(env!("CARGO_BIN_EXE_docflow"))
            .args(["serve", "--port", &port.to_string()])
            .env("DOCFLOW_BLOB_DIR", blobs.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(&base).await.is_err() {
        assert!(Instant::now() < deadline, "docflow serve did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An HTTP function in forwarding mode: a document that does not exist.
    let missing = reqwest::get(format!("{base}/api/documents/no-such-document"))
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    // A submission refused (an empty body).
    let refused = reqwest::Client::new()
        .post(format!("{base}/api/documents"))
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    assert!(refused.status().is_client_error(), "{}", refused.status());
    let (text, scrape) = scrape(&format!("{base}/metrics")).await;
    assert_eq!(
        value(
            &scrape,
            "docflow_invocations_total",
            &[("function", "SubmitDocument"), ("outcome", "client_error")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        count(
            &scrape,
            "http_server_request_duration_seconds",
            &[("http_route", "documents"), ("http_request_method", "POST")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &scrape,
            "docflow_invocations_total",
            &[("function", "GetDocument"), ("outcome", "client_error")]
        ),
        1.0,
        "{text}"
    );
    // (This parser stops at the first `}` of a label value: the route `documents/{id?}` is
    // checked as text, the histogram through SubmitDocument's `documents` below.)
    assert!(text.contains(r#"http_route="documents/{id?}""#), "{text}");
    assert!(
        !samples(&scrape, "target_info", &[("service_name", "docflow")]).is_empty(),
        "{text}"
    );
    // `GET /metrics` is not a function: `POST /metrics` still names one (there is none).
    let post = reqwest::Client::new()
        .post(format!("{base}/metrics"))
        .json(&serde_json::json!({"Data": {}, "Metadata": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status().as_u16(), 404);
}

/// Every queue and subscription of the app's topology, as `(entity, subscription)`.
fn topology_entities() -> BTreeSet<(String, Option<String>)> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/servicebus.config.json"
    ))
    .unwrap();
    let config: serde_json::Value = serde_json::from_str(&text).unwrap();
    let namespace = &config["UserConfig"]["Namespaces"][0];
    let mut out = BTreeSet::new();
    for queue in namespace["Queues"].as_array().unwrap() {
        out.insert((queue["Name"].as_str().unwrap().to_owned(), None));
    }
    for topic in namespace["Topics"].as_array().unwrap() {
        for sub in topic["Subscriptions"].as_array().unwrap() {
            out.insert((
                topic["Name"].as_str().unwrap().to_owned(),
                Some(sub["Name"].as_str().unwrap().to_owned()),
            ));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docflow_dev_serves_queue_gauges_and_the_handler_s_metrics() {
    let data = tempfile::tempdir().unwrap();
    let (http_port, dashboard_port) = (free_port(), free_port());
    let _dev = Running(
        Command::new(env!("CARGO_BIN_EXE_docflow"))
            .args(["dev", "--app-root", env!("CARGO_MANIFEST_DIR")])
            .args(["--http-port", &http_port.to_string(), "--broker-port", "0"])
            .args(["--dashboard-port", &dashboard_port.to_string()])
            .arg("--data-dir")
            .arg(data.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", http_port)).is_err()
        || std::net::TcpStream::connect(("127.0.0.1", dashboard_port)).is_err()
    {
        assert!(Instant::now() < deadline, "docflow dev did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let http = reqwest::Client::new();
    let api = format!("http://127.0.0.1:{http_port}/api/documents");
    let accepted = http
        .post(format!("{api}?analyses=summarize,sentiment"))
        .header("content-type", "text/plain")
        .body("Globex GmbH will pay $1,200.00 on March 3, 2025. Either party may terminate.")
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 202);
    let id = accepted.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    common::completed(&http, &format!("{api}/{id}"), Duration::from_secs(60)).await;

    // The completing invocation is counted once it has answered the host: look again briefly.
    let url = format!("http://127.0.0.1:{dashboard_port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(15);
    let (text, scrape) = loop {
        let (text, scrape) = scrape(&url).await;
        let done = |function| {
            value(
                &scrape,
                "docflow_invocations_total",
                &[("function", function), ("outcome", "done")],
            )
        };
        let complete = ["SubmitDocument", "AnalyzeDocument", "AggregateResults"]
            .iter()
            .all(|f| done(f) >= 1.0)
            && done("ProcessDocument") >= 2.0
            && count(&scrape, "docflow_document_duration_seconds", &[]) >= 1.0;
        if complete || Instant::now() > deadline {
            break (text, scrape);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    // The broker's gauges, for every queue and subscription of servicebus.config.json.
    for gauge in [
        "servicebus_active_messages",
        "servicebus_scheduled_messages",
        "servicebus_deadlettered_messages",
        "servicebus_oldest_message_age_seconds",
    ] {
        let seen: BTreeSet<(String, Option<String>)> = samples(&scrape, gauge, &[])
            .iter()
            .map(|s| {
                assert!(matches!(s.value, Value::Gauge(_)), "{gauge}: {s:?}");
                (
                    s.labels.get("entity").unwrap().to_owned(),
                    s.labels.get("subscription").map(str::to_owned),
                )
            })
            .collect();
        assert_eq!(seen, topology_entities(), "{gauge}");
    }
    assert_eq!(
        value(
            &scrape,
            "servicebus_deadlettered_messages",
            &[("entity", "ai-tasks")]
        ),
        0.0
    );

    // The handler's metrics follow: invocations per function, histograms with counts.
    for (function, at_least) in [
        ("SubmitDocument", 1.0),
        ("AnalyzeDocument", 1.0),
        ("ProcessDocument", 2.0),
        ("AggregateResults", 1.0),
    ] {
        let seen = value(
            &scrape,
            "docflow_invocations_total",
            &[("function", function), ("outcome", "done")],
        );
        assert!(seen >= at_least, "{function}: {seen}\n{text}");
    }
    let tasks = [("messaging_destination_name", "ai-tasks")];
    assert!(count(&scrape, "messaging_process_duration_seconds", &tasks) >= 2.0);
    assert!(count(&scrape, "docflow_queue_wait_seconds", &tasks) >= 2.0);
    let analyze = [
        ("messaging_destination_name", "documents"),
        ("messaging_destination_subscription_name", "analyze"),
    ];
    assert!(count(&scrape, "messaging_process_duration_seconds", &analyze) >= 1.0);
    assert_eq!(
        count(
            &scrape,
            "docflow_document_duration_seconds",
            &[("status", "completed")]
        ),
        1.0
    );
    assert_eq!(
        value(&scrape, "docflow_documents_in_flight", &[]),
        0.0,
        "accepted, then completed"
    );
    assert!(
        count(
            &scrape,
            "http_server_request_duration_seconds",
            &[("http_route", "documents")]
        ) >= 1.0
    );

    // The offline provider's calls: tokens in and out, requests by status.
    let offline = [("gen_ai_provider_name", "offline")];
    assert!(
        value(
            &scrape,
            "docflow_llm_requests_total",
            &[offline[0], ("status", "ok")]
        ) >= 2.0
    );
    for kind in ["input", "output"] {
        let sum = value(
            &scrape,
            "gen_ai_client_token_usage_sum",
            &[offline[0], ("gen_ai_token_type", kind)],
        );
        assert!(sum > 0.0, "{kind} tokens: {sum}\n{text}");
    }
    assert!(
        count(
            &scrape,
            "gen_ai_client_operation_duration_seconds",
            &offline
        ) >= 2.0
    );
}
