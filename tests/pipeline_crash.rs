//! A `202` is a promise: documents accepted before every process of the app is killed with
//! SIGKILL (host, broker and handler alike) are finished after a restart on the same data.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::pipeline::{app_root, set_local_settings};
use common::{Running, free_port};
use serde_json::Value;

fn start_dev(root: &Path, data: &Path, port: u16) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .args([
            "dev",
            "--broker-port",
            "0",
            "--dashboard-port",
            "0",
            "--http-port",
            &port.to_string(),
        ])
        .arg("--app-root")
        .arg(root)
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "docflow dev did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Running(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_documents_survive_sigkill_of_every_process() {
    let root = app_root();
    // A message being processed at the kill stays locked until its lock expires (as on Azure):
    // short locks keep that wait inside the test's time.
    let topology = root.path().join("servicebus.config.json");
    let text = std::fs::read_to_string(&topology).unwrap();
    assert!(text.contains("\"LockDuration\": \"PT5M\""));
    std::fs::write(
        &topology,
        text.replace("\"PT5M\"", "\"PT10S\"")
            .replace("\"PT1M\"", "\"PT10S\""),
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let closed = free_port();
    let unreachable = format!("http://127.0.0.1:{closed}/v1");
    // First life: the model endpoint is down, so tasks wait as scheduled retries.
    set_local_settings(
        root.path(),
        &[
            ("DOCFLOW_AI_PROVIDER", "openai"),
            ("DOCFLOW_OPENAI_BASE_URL", &unreachable),
            ("DOCFLOW_RETRY_BASE_MS", "1000"),
            ("DOCFLOW_MAX_TRANSIENT_RETRIES", "30"),
        ],
    );
    let port = free_port();
    let dev = start_dev(root.path(), data.path(), port);
    let http = reqwest::Client::new();
    let api = format!("http://127.0.0.1:{port}/api/documents");
    let mut ids = Vec::new();
    for n in 0..5 {
        let answer = http
            .post(format!("{api}?analyses=summarize,sentiment"))
            .header("content-type", "text/plain")
            .body(format!(
                "Document {n}: the delivery arrived late and the box was damaged."
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 202);
        let body: Value = answer.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let doc: Value = http
        .get(format!("{api}/{}", ids[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["status"], "processing",
        "not finished before the crash: {doc}"
    );
    let pgid = dev.0.id();
    Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pgid}")])
        .status()
        .unwrap();
    drop(dev);

    // Second life: the endpoint is back (the offline provider), same data folder.
    set_local_settings(root.path(), &[("DOCFLOW_AI_PROVIDER", "offline")]);
    let dev = start_dev(root.path(), data.path(), port);
    let deadline = Instant::now() + Duration::from_secs(90);
    for id in &ids {
        loop {
            let doc: Value = http
                .get(format!("{api}/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if doc["status"] == "completed" {
                assert!(doc["tasks"]["summarize"]["attempts"].as_u64().unwrap() >= 2);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{id} not finished after the restart: {doc}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let pgid = dev.0.id();
    Command::new("kill")
        .args(["-s", "KILL", "--", &format!("-{pgid}")])
        .status()
        .unwrap();
}
