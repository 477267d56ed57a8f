//! `docflow dashboard` pointed at an app as an operator points it at a deployed one: a
//! Service Bus connection string (the namespace `docflow dev` serves, read over the REST and
//! management APIs, not in process) and a storage connection string (Azurite, where the app
//! keeps its documents). Read-only by default: the pages have no token and a POST is refused;
//! with `--allow-actions` a dead letter is resubmitted and audited in the app's storage. A
//! connection that does not answer is one clear line and exit code 2.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::azurite::Azurite;
use common::{Running, free_port, start_dev_with_env};
use docflow::blob::BlobStore;
use docflow::blob::connection::{DEV_ACCOUNT, DEV_KEY};
use docflow::dead_letters::AuditTrail;
use docflow::servicebus::message::Message;
use docflow::servicebus::{Namespace, ServiceBusClient};
use serde_json::{Value, json};

/// Starts `docflow dashboard` with `args`, from a folder without the app's settings; waits
/// until it serves.
fn dashboard(args: &[&str], port: u16) -> Running {
    let cwd = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .current_dir(cwd.path())
        .arg("dashboard")
        .args(args)
        .args(["--port", &port.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let running = Running(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "docflow dashboard did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    running
}

async fn get(http: &reqwest::Client, url: &str) -> String {
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.text().await.unwrap()
}

/// Waits until `url`'s page contains `needle`.
async fn page_with(http: &reqwest::Client, url: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = get(http, url).await;
        if page.contains(needle) {
            return page;
        }
        assert!(
            Instant::now() < deadline,
            "{url} never showed {needle}:\n{page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn token_of(page: &str) -> Option<String> {
    let at = page.find(r#"name="docflow-token" content=""#)?;
    let rest = &page[at + r#"name="docflow-token" content=""#.len()..];
    Some(rest[..rest.find('"')?].to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_reads_a_namespace_and_a_storage_account_and_acts_only_when_allowed() {
    let azurite = Azurite::start();
    let storage = azurite.connection_string();
    let data = tempfile::tempdir().unwrap();
    let ports = (free_port(), free_port(), free_port());
    let env = [
        ("DOCFLOW_BLOB_CONNECTION", "DocflowStorage".to_string()),
        ("DocflowStorage", storage.clone()),
    ];
    let _dev = start_dev_with_env(data.path(), ports, &env, Stdio::null());
    let http = reqwest::Client::new();
    let api = format!("http://127.0.0.1:{}/api", ports.0);

    // A document completes; a task nobody can read is dead-lettered.
    let r = http
        .post(format!("{api}/documents?analyses=sentiment"))
        .header("content-type", "text/plain")
        .body("The delivery was late again and nobody called back.")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    common::completed(
        &http,
        &format!("{api}/documents/{id}"),
        Duration::from_secs(60),
    )
    .await;
    let connection = Namespace::emulator_connection_string(ports.1);
    let client = ServiceBusClient::from_connection_string(&connection).unwrap();
    let mut poison = Message::new("this is not a task");
    poison.message_id = Some("poison-remote".into());
    client.send_message("ai-tasks", &poison).await.unwrap();

    // Read-only.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let args = ["--connection", &connection, "--storage", &storage];
    let read_only = dashboard(&args, port);
    let documents = page_with(&http, &format!("{url}/"), &format!("doc-{id}")).await;
    assert!(documents.contains("Read-only"), "{documents}");
    assert_eq!(token_of(&documents), None, "no token on a read-only page");
    // Counts from the management API, with no age or rates (the API gives none).
    let queues = page_with(&http, &format!("{url}/queues"), "analysis-completed").await;
    assert!(queues.contains(r#"data-entity="ai-tasks""#), "{queues}");
    let metrics = page_with(
        &http,
        &format!("{url}/metrics"),
        r#"servicebus_deadlettered_messages{entity="ai-tasks"} 1"#,
    )
    .await;
    let parsed =
        prometheus_parse::Scrape::parse(metrics.lines().map(|l| Ok(l.to_string()))).unwrap();
    assert!(
        parsed
            .samples
            .iter()
            .all(|s| s.metric != "servicebus_oldest_message_age_seconds"),
        "no oldest age where the namespace is not browsed in process"
    );
    let dead = page_with(&http, &format!("{url}/dead-letters"), "tr class=\"group\"").await;
    assert!(dead.contains(r#"data-entity="ai-tasks""#), "{dead}");
    assert!(dead.contains(r#"<body class="read-only""#), "{dead}");
    let refused = http
        .post(format!("{url}/api/dead-letters/resubmit"))
        .header("x-docflow-token", "anything")
        .json(&json!({"entity": "ai-tasks", "sequenceNumbers": [1], "count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ReadOnly", "{body}");
    drop(read_only);

    // Actions allowed: the dead letter is resubmitted and the action audited in storage.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _acting = dashboard(
        &[
            "--connection",
            &connection,
            "--storage",
            &storage,
            "--allow-actions",
        ],
        port,
    );
    let page = page_with(&http, &format!("{url}/dead-letters"), "tr class=\"group\"").await;
    let token = token_of(&page).expect("a token when actions are allowed");
    let seq = client
        .browse("ai-tasks/$DeadLetterQueue", 0, 10)
        .await
        .unwrap()
        .iter()
        .find(|m| m.message.message_id.as_deref() == Some("poison-remote"))
        .expect("the poison message is dead-lettered")
        .sequence_number;
    let done = http
        .post(format!("{url}/api/dead-letters/resubmit"))
        .header("x-docflow-token", &token)
        .json(&json!({"entity": "ai-tasks", "sequenceNumbers": [seq], "count": 1}))
        .send()
        .await
        .unwrap();
    let status = done.status();
    let body: Value = done.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 1, "{body}");
    let blobs: Arc<dyn BlobStore> = Arc::new(
        docflow::blob::AzureBlobStore::new(
            &docflow::blob::connection::BlobConnection::from_connection_string(&storage).unwrap(),
            None,
        )
        .unwrap(),
    );
    let records = AuditTrail::new(blobs, "audit")
        .dead_letter_records()
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].event, "DeadLettersResubmitted");
    assert_eq!(records[0].actor, "dashboard");
}

#[test]
fn a_namespace_that_does_not_answer_is_one_clear_line() {
    let cwd = tempfile::tempdir().unwrap();
    let dead = free_port();
    let out = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .current_dir(cwd.path())
        .arg("dashboard")
        .args(["--connection", &Namespace::emulator_connection_string(dead)])
        .args(["--storage", &format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};BlobEndpoint=http://127.0.0.1:{dead}/{DEV_ACCOUNT};"
        )])
        .args(["--port", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cannot read the Service Bus namespace"),
        "{stderr}"
    );
    // No storage at all: said before anything is reached.
    let out = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .current_dir(cwd.path())
        .arg("dashboard")
        .args(["--connection", &Namespace::emulator_connection_string(dead)])
        .args(["--port", "0"])
        .env_remove("DOCFLOW_BLOB_CONNECTION")
        .env_remove("DOCFLOW_DASHBOARD_STORAGE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--storage"), "{stderr}");
}
