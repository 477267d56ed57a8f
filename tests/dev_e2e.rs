//! The whole app on the local stack, as users run it: `docflow dev` and `docflow run`, real
//! processes on real ports with temporary folders.

mod common;

use std::process::{Command, Stdio};

use common::{Running, free_port};
use std::time::{Duration, Instant};

use docflow::servicebus::message::Message;
use docflow::servicebus::{Namespace, ServiceBusClient};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docflow_dev_processes_tasks_sent_through_the_broker_rest_api() {
    let data = tempfile::tempdir().unwrap();
    let broker_port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .args([
            "dev",
            "--app-root",
            env!("CARGO_MANIFEST_DIR"),
            "--http-port",
            "0",
            "--broker-port",
            &broker_port.to_string(),
            "--data-dir",
        ])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut dev = Running(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", broker_port)).is_err() {
        assert!(Instant::now() < deadline, "docflow dev did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = ServiceBusClient::from_connection_string(&Namespace::emulator_connection_string(
        broker_port,
    ))
    .unwrap();
    let text = "Either party may terminate this Agreement for material breach. Globex GmbH will pay $1,200.00 on March 3, 2025.";
    for kind in ["summarize", "sentiment"] {
        let task = json!({"schema": "ai.task.v1", "taskId": format!("e2e-1:{kind}"), "documentId": "e2e-1", "correlationId": "c-e2e",
                          "kind": kind, "input": {"text": text}, "parameters": {}});
        client
            .send_message(
                "ai-tasks",
                &Message::new(task.to_string())
                    .with_message_id(format!("e2e-1:{kind}"))
                    .with_content_type("application/json"),
            )
            .await
            .unwrap();
    }
    let mut outcomes = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while outcomes.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "no outcomes on task-results; got {outcomes:?}"
        );
        if let Some(m) = client
            .receive_and_delete("task-results", Duration::from_secs(2))
            .await
            .unwrap()
        {
            outcomes.push(serde_json::from_slice::<Value>(&m.message.body).unwrap());
        }
    }
    outcomes.sort_by_key(|o| o["taskId"].as_str().unwrap().to_string());
    assert_eq!(outcomes[0]["taskId"], "e2e-1:sentiment");
    assert_eq!(outcomes[1]["taskId"], "e2e-1:summarize");
    for outcome in &outcomes {
        assert_eq!(outcome["status"], "succeeded");
        assert_eq!(outcome["correlationId"], "c-e2e");
        let blob = outcome["result"]["blob"].as_str().unwrap();
        assert!(
            data.path().join("blobs/results").join(blob).is_file(),
            "result {blob} stored in the local blob folder"
        );
    }
    Command::new("kill")
        .args(["-TERM", &dev.0.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = dev.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "docflow dev did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    let mut table = String::new();
    std::io::Read::read_to_string(dev.0.stdout.as_mut().unwrap(), &mut table).unwrap();
    assert!(
        table.contains("ProcessDocument: serviceBusTrigger on ai-tasks"),
        "{table}"
    );
}

#[test]
fn docflow_run_processes_the_samples_and_prints_the_table() {
    let out = tempfile::tempdir().unwrap();
    let results = out.path().join("results.json");
    let output = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "samples/", "--out"])
        .arg(&results)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.lines().next().unwrap().starts_with("DOCUMENT"),
        "{stdout}"
    );
    for (doc, label) in [
        ("services-agreement", "contract"),
        ("invoice-2025-0117", "invoice"),
        ("support-email-late-delivery", "support request"),
        ("support-email-thank-you", "thank you note"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(doc))
            .unwrap_or_else(|| panic!("{doc} missing:\n{stdout}"));
        assert!(line.contains(" done "), "{line}");
        assert!(line.contains(label), "{doc} should be {label}: {line}");
    }
    let report: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    assert_eq!(report.as_array().unwrap().len(), 4);
    for doc in report.as_array().unwrap() {
        for kind in [
            "summarize",
            "classify",
            "extract_entities",
            "sentiment",
            "embed",
        ] {
            assert_eq!(doc["tasks"][kind]["status"], "succeeded", "{doc}");
        }
    }
}

#[test]
fn docflow_run_reports_dead_lettered_tasks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("scan.pdf"),
        [0x25, 0x50, 0x44, 0x46, 0xff, 0xfe],
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--kinds", "summarize", "--timeout-secs", "60"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "a dead-lettered task is a terminal state: {stdout}"
    );
    assert!(stdout.contains("dead-lettered scan-"), "{stdout}");
    assert!(
        stdout.contains("ContentNotText"),
        "the poison reason is shown: {stdout}"
    );
    let missing = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .args(["run", "/nonexistent/input"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}
