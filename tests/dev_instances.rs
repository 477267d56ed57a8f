//! `docflow dev --instances 3`: three Functions host instances in one local host, as Azure
//! scales an app out. Each has its own handler process (its own port and
//! `WEBSITE_INSTANCE_ID`), they compete for the same queues and share one store, and a handler
//! killed under load is restarted on its own without a document being lost.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{children_of, environ_of, free_port, running, start_dev_with_args};
use serde_json::Value;

/// The app's Service Bus triggered functions (the rest are HTTP triggered).
const SERVICE_BUS_FUNCTIONS: &[&str] = &[
    "ProcessDocument",
    "AggregateResults",
    "AnalyzeDocument",
    "AuditLog",
    "NotifySubmitter",
    "SummarizeChunk",
];

/// One handler process: its pid, port and instance id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct HandlerProcess {
    pid: u32,
    port: u16,
    instance: String,
}

/// The handler processes `docflow dev` (process `dev`) runs, once there are `count`.
fn handlers(dev: u32, count: usize, within: Duration) -> Vec<HandlerProcess> {
    let deadline = Instant::now() + within;
    loop {
        let found: Vec<HandlerProcess> = children_of(dev)
            .into_iter()
            .filter(|&pid| running(pid))
            .filter_map(|pid| {
                let env = environ_of(pid);
                Some(HandlerProcess {
                    pid,
                    port: env.get("FUNCTIONS_CUSTOMHANDLER_PORT")?.parse().ok()?,
                    instance: env.get("WEBSITE_INSTANCE_ID")?.clone(),
                })
            })
            .collect();
        if found.len() == count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "expected {count} handler processes, found {found:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `GET /metrics` on `port`, parsed as Prometheus text.
async fn scrape(http: &reqwest::Client, port: u16) -> prometheus_parse::Scrape {
    let text = http
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

/// Invocations of Service Bus triggered functions a handler counted (its `GET /metrics`).
async fn service_bus_invocations(http: &reqwest::Client, port: u16) -> f64 {
    scrape(http, port)
        .await
        .samples
        .iter()
        .filter(|s| s.metric == "docflow_invocations_total")
        .filter(|s| {
            s.labels
                .get("function")
                .is_some_and(|f| SERVICE_BUS_FUNCTIONS.contains(&f))
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// Submits `count` documents; their status URLs.
async fn submit(http: &reqwest::Client, api: &str, count: usize, tag: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for i in 0..count {
        let text = format!(
            "Document {tag}-{i}: Globex GmbH will pay $1,200.00 on March 3, 2025. The shipment was late and the invoice total was wrong."
        );
        let accepted = http
            .post(format!("{api}?analyses=summarize,classify,sentiment"))
            .header("content-type", "text/plain")
            .body(text)
            .send()
            .await
            .unwrap();
        assert_eq!(accepted.status().as_u16(), 202);
        let body: Value = accepted.json().await.unwrap();
        urls.push(format!("{api}/{}", body["id"].as_str().unwrap()));
    }
    urls
}

/// Waits until every document is completed with every task succeeded.
async fn all_completed(http: &reqwest::Client, urls: &[String]) {
    for url in urls {
        let doc = common::completed(http, url, Duration::from_secs(30)).await;
        for kind in ["summarize", "classify", "sentiment"] {
            assert_eq!(doc["tasks"][kind]["status"], "succeeded", "{doc}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_the_work_and_survive_a_killed_handler() {
    let data = tempfile::tempdir().unwrap();
    let (http_port, dashboard_port) = (free_port(), free_port());
    let mut dev = start_dev_with_args(
        data.path(),
        (http_port, 0, dashboard_port),
        &[],
        &["--instances", "3"],
        Stdio::piped(),
    );
    let started = handlers(dev.0.id(), 3, Duration::from_secs(20));
    let ports: BTreeSet<u16> = started.iter().map(|h| h.port).collect();
    let ids: BTreeSet<&str> = started.iter().map(|h| h.instance.as_str()).collect();
    assert_eq!(ports.len(), 3, "a port per handler: {started:?}");
    assert_eq!(ids.len(), 3, "an instance id per handler: {started:?}");

    let api = format!("http://127.0.0.1:{http_port}/api/documents");
    let http = reqwest::Client::new();
    let first = submit(&http, &api, 12, "a").await;
    all_completed(&http, &first).await;
    let mut served = BTreeMap::new();
    for h in &started {
        served.insert(h.port, service_bus_invocations(&http, h.port).await);
    }
    assert!(
        served.values().all(|&n| n > 0.0),
        "every instance's handler served Service Bus invocations: {served:?}"
    );
    // The dashboard's `GET /metrics` carries every instance's, each sample labelled with it.
    let dashboard = scrape(&http, dashboard_port).await;
    let labelled: BTreeSet<&str> = dashboard
        .samples
        .iter()
        .filter(|s| s.metric == "docflow_invocations_total")
        .filter_map(|s| s.labels.get("service_instance_id"))
        .collect();
    assert_eq!(labelled, ids, "the dashboard's metrics, by instance");

    // A handler killed while the next documents are in flight: its invocations fail, their
    // messages are abandoned and redelivered, and its instance starts a new handler.
    let second = submit(&http, &api, 12, "b").await;
    let victim = started[1].clone();
    Command::new("kill")
        .args(["-KILL", &victim.pid.to_string()])
        .status()
        .unwrap();
    all_completed(&http, &second).await;
    let after = handlers(dev.0.id(), 3, Duration::from_secs(10));
    let restarted = after
        .iter()
        .find(|h| h.instance == victim.instance)
        .expect("the killed handler's instance runs a handler again");
    assert_ne!(restarted.pid, victim.pid);
    assert_eq!(restarted.port, victim.port, "an instance keeps its port");
    assert!(
        after
            .iter()
            .filter(|h| h.instance != victim.instance)
            .all(|h| started.contains(h)),
        "the other instances' handlers were left alone: {started:?} then {after:?}"
    );

    Command::new("kill")
        .args(["-TERM", &dev.0.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = dev.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "docflow dev did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    assert!(
        after.iter().all(|h| !running(h.pid)),
        "every handler stops with docflow dev"
    );
    let mut table = String::new();
    std::io::Read::read_to_string(dev.0.stdout.as_mut().unwrap(), &mut table).unwrap();
    assert!(table.contains("Instances: 3"), "{table}");
}
