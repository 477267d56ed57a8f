//! `docflow broker` as a user starts it from the app root: the README's curl round trip.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Running, free_port};
use std::time::{Duration, Instant};

fn docflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_docflow"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_round_trip_with_a_sas_token() {
    let data = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = docflow()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["broker", "--port", &port.to_string(), "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first_line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first_line)
        .unwrap();
    let _broker = Running(child);
    assert_eq!(
        first_line.trim(),
        format!(
            "Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
        )
    );
    let token = docflow()
        .args([
            "sas-token",
            "--resource",
            &format!("http://127.0.0.1:{port}/ai-tasks"),
        ])
        .output()
        .unwrap();
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let sent = http
        .post(format!("{base}/ai-tasks/messages"))
        .header("Authorization", &token)
        .header("Content-Type", "application/json")
        .header("BrokerProperties", r#"{"MessageId":"readme-1"}"#)
        .body(r#"{"hello":"world"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);
    let locked = http
        .post(format!("{base}/ai-tasks/messages/head?timeout=5"))
        .header("Authorization", &token)
        .header("Content-Length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(locked.status(), 201);
    let location = locked.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(locked.text().await.unwrap(), r#"{"hello":"world"}"#);
    let completed = http
        .delete(&location)
        .header("Authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(completed.status(), 200);
    let empty = http
        .post(format!("{base}/ai-tasks/messages/head?timeout=1"))
        .header("Authorization", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 204);
}

#[test]
fn an_invalid_topology_is_refused_with_its_json_path() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.json");
    std::fs::write(&config, r#"{"UserConfig": {"Namespaces": [{"Name": "ns", "Queues": [{"Name": "q", "Properties": {"MaxDeliveryCount": -1}}]}]}}"#).unwrap();
    let output = docflow()
        .args(["broker", "--port", "0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("$.UserConfig.Namespaces[0].Queues[0].Properties.MaxDeliveryCount"),
        "{stderr}"
    );
    let missing = docflow()
        .args(["broker", "--config", "/nonexistent/topology.json"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = docflow()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["broker", "--port", &port.to_string(), "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains(&format!("cannot listen on 127.0.0.1:{port}"))
    );
}
