//! The whole app on the local stack, as users run it: `docflow dev` and `docflow run`, real
//! processes on real ports with temporary folders.

mod common;

use std::process::{Command, Stdio};

use common::{children_of, free_port, running, start_dev};
use std::time::{Duration, Instant};

use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docflow_dev_serves_the_document_api() {
    let data = tempfile::tempdir().unwrap();
    let http_port = free_port();
    let mut dev = start_dev(data.path(), http_port, 0, Stdio::piped());
    let api = format!("http://127.0.0.1:{http_port}/api/documents");
    let http = reqwest::Client::new();
    let text = "Either party may terminate this Agreement for material breach. Globex GmbH will pay $1,200.00 on March 3, 2025.";
    let accepted = http
        .post(format!("{api}?analyses=summarize,sentiment"))
        .header("content-type", "text/plain")
        .header("x-correlation-id", "c-e2e")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status().as_u16(), 202);
    assert_eq!(accepted.headers()["x-correlation-id"], "c-e2e");
    let body: Value = accepted.json().await.unwrap();
    let url = format!("{api}/{}", body["id"].as_str().unwrap());
    let doc = common::completed(&http, &url, Duration::from_secs(60)).await;
    assert_eq!(doc["correlationId"], "c-e2e");
    for kind in ["summarize", "sentiment"] {
        assert_eq!(doc["tasks"][kind]["status"], "succeeded", "{doc}");
        let blob = doc["tasks"][kind]["result"]["blob"].as_str().unwrap();
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
    assert!(
        table.contains("SubmitDocument: [POST] http://127.0.0.1:"),
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
        assert!(line.contains(" completed "), "{line}");
        assert!(line.contains(label), "{doc} should be {label}: {line}");
    }
    let report: Value = serde_json::from_slice(&std::fs::read(&results).unwrap()).unwrap();
    assert_eq!(report.as_array().unwrap().len(), 4);
    for doc in report.as_array().unwrap() {
        assert_eq!(doc["status"], "completed", "{doc}");
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
fn docflow_run_lists_files_the_api_refuses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("scan.pdf"),
        [0x25, 0x50, 0x44, 0x46, 0xff, 0xfe],
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("nested")).unwrap();
    std::fs::write(
        dir.path().join("nested/note.txt"),
        "A short note of thanks.",
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
        Some(1),
        "a refused file is a failure: {stdout}"
    );
    let scan = stdout.lines().find(|l| l.starts_with("scan.pdf")).unwrap();
    assert!(scan.contains(" refused "), "{stdout}");
    assert!(
        stdout.contains("refused: 422 UnreadablePdf"),
        "the API's reason is shown: {stdout}"
    );
    let note = stdout.lines().find(|l| l.starts_with("note.txt")).unwrap();
    assert!(
        note.contains(" completed "),
        "folders are searched recursively: {stdout}"
    );

    let flat = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--no-recursive", "--kinds", "summarize"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&flat.stdout).contains("note.txt"));

    let missing = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .args(["run", "/nonexistent/input"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    let outside = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .args(["run", "samples"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(outside.status.code(), Some(2));
    let message = String::from_utf8_lossy(&outside.stderr);
    assert!(
        message.contains("--app-root") && message.contains("host.json"),
        "{message}"
    );
}

#[test]
fn a_handler_does_not_outlive_a_killed_docflow_dev() {
    let data = tempfile::tempdir().unwrap();
    let http_port = free_port();
    let mut dev = start_dev(data.path(), http_port, 0, Stdio::null());
    // The handler may still be starting when the HTTP port answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    let handlers = loop {
        let handlers = children_of(dev.0.id());
        if !handlers.is_empty() || Instant::now() > deadline {
            break handlers;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        !handlers.is_empty(),
        "docflow dev runs its handler as a child"
    );
    dev.0.kill().unwrap();
    dev.0.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while handlers.iter().any(|&pid| running(pid)) {
        assert!(
            Instant::now() < deadline,
            "the handler kept running after docflow dev was killed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
