//! `docflow serve` as the Functions host runs it: a real process on a real port.

mod common;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{host_request, task_body};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn docflow() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_docflow"));
    for var in [
        "FUNCTIONS_CUSTOMHANDLER_PORT",
        "FUNCTIONS_HTTPWORKER_PORT",
        "DOCFLOW_AI_PROVIDER",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command.stdout(Stdio::null()).stderr(Stdio::piped());
    command
}

struct Handler {
    child: Child,
    port: u16,
}

impl Handler {
    fn start(blob_dir: &std::path::Path, extra_env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = docflow();
        command
            .arg("serve")
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
            .env("DOCFLOW_BLOB_DIR", blob_dir);
        for (k, v) in extra_env {
            command.env(k, v);
        }
        let child = command.spawn().unwrap();
        let handler = Self { child, port };
        handler.wait_ready();
        handler
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Polls `GET /` like the host: any HTTP answer means ready.
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("docflow serve did not start listening");
    }

    fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                self.child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                return (status.code().unwrap_or(-1), stderr);
            }
            assert!(Instant::now() < deadline, "docflow serve did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> (u16, String, Value) {
    let response = client
        .post(url)
        .header("Content-Type", "application/json; charset=utf-8")
        .header(
            "X-Azure-Functions-InvocationId",
            "0b5e7a8e-1111-4222-8333-944455556666",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    let body = response.json().await.unwrap();
    (status, content_type, body)
}

fn contract_task() -> String {
    task_body(
        "doc-42:summarize",
        "summarize",
        json!({"text": "Acme Inc. will deliver the software. Globex GmbH will pay $1,200.00 on March 3, 2025. Either party may terminate for breach."}),
        json!({"maxWords": 20}),
    )
}

#[tokio::test]
async fn serve_processes_a_fixture_and_logs_json_with_ids() {
    let blobs = tempfile::tempdir().unwrap();
    let mut handler = Handler::start(blobs.path(), &[]);
    let client = reqwest::Client::new();

    let ready = client.get(handler.url("/")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    let (status, content_type, body) = post(
        &client,
        &handler.url("/ProcessDocument"),
        host_request(&contract_task(), 1),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/json");
    let outcome: Value =
        serde_json::from_str(body["Outputs"]["outcome"][0].as_str().unwrap()).unwrap();
    assert_eq!(outcome["status"], "succeeded");
    assert_eq!(outcome["reused"], false);
    let result_file = blobs.path().join("results/tasks/doc-42%3Asummarize.json");
    assert!(result_file.is_file(), "result blob missing");
    let stored = std::fs::read(&result_file).unwrap();

    let (status, _, body) = post(
        &client,
        &handler.url("/ProcessDocument"),
        host_request(&contract_task(), 2),
    )
    .await;
    assert_eq!(status, 200);
    let outcome: Value =
        serde_json::from_str(body["Outputs"]["outcome"][0].as_str().unwrap()).unwrap();
    assert_eq!(
        outcome["reused"], true,
        "a redelivery must reuse the stored result"
    );
    assert_eq!(std::fs::read(&result_file).unwrap(), stored);

    let (status, content_type, body) = post(&client, &handler.url("/Nope"), b"{}".to_vec()).await;
    assert_eq!((status, content_type.as_str()), (404, "application/json"));
    assert_eq!(body["error"]["code"], "FunctionNotFound");

    handler.terminate();
    let (code, stderr) = handler.wait_exit();
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        !lines.is_empty() && lines.len() == stderr.lines().count(),
        "every log line is JSON:\n{stderr}"
    );
    let finished = lines
        .iter()
        .find(|l| l["message"] == "invocation finished")
        .unwrap_or_else(|| panic!("no invocation log:\n{stderr}"));
    let span = &finished["span"];
    assert_eq!(
        span["invocation_id"],
        "0b5e7a8e-1111-4222-8333-944455556666"
    );
    assert_eq!(span["function"], "ProcessDocument");
    assert_eq!(span["message_id"], "b7e0c1d2-8f3a-4c55-a1e2-9d0f6b7c8a91");
    assert_eq!(span["correlation_id"], "corr-doc-42");
    assert_eq!(span["task_id"], "doc-42:summarize");
}

#[tokio::test]
async fn sigterm_drains_in_flight_invocations() {
    let provider = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"model": "slow", "choices": [{"message": {"content": "A summary."}, "finish_reason": "stop"}],
                                      "usage": {"prompt_tokens": 10, "completion_tokens": 3}}))
                .set_delay(Duration::from_millis(1500)),
        )
        .mount(&provider)
        .await;
    let blobs = tempfile::tempdir().unwrap();
    let base_url = format!("{}/v1", provider.uri());
    let mut handler = Handler::start(
        blobs.path(),
        &[
            ("DOCFLOW_AI_PROVIDER", "openai"),
            ("DOCFLOW_OPENAI_BASE_URL", &base_url),
        ],
    );
    let client = reqwest::Client::new();
    let url = handler.url("/ProcessDocument");
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { post(&client, &url, host_request(&contract_task(), 1)).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    handler.terminate();
    let (status, _, body) = in_flight.await.unwrap();
    assert_eq!(status, 200, "the in-flight invocation finishes: {body}");
    let (code, stderr) = handler.wait_exit();
    assert_eq!(code, 0, "{stderr}");
    assert!(
        blobs
            .path()
            .join("results/tasks/doc-42%3Asummarize.json")
            .is_file()
    );
}

#[test]
fn no_port_is_a_clear_error() {
    let output = docflow().arg("serve").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("FUNCTIONS_CUSTOMHANDLER_PORT"), "{stderr}");
}

#[test]
fn an_invalid_port_setting_is_a_clear_error() {
    let output = docflow()
        .arg("serve")
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", "eighty")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("FUNCTIONS_CUSTOMHANDLER_PORT=\"eighty\" is invalid")
    );
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = docflow()
        .args(["serve", "--port", &port.to_string()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_legacy_port_variable_and_the_flag_are_honoured() {
    let blobs = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = docflow();
    command
        .args(["serve"])
        .env("FUNCTIONS_HTTPWORKER_PORT", port.to_string())
        .env("DOCFLOW_BLOB_DIR", blobs.path());
    let handler = Handler {
        child: command.spawn().unwrap(),
        port,
    };
    handler.wait_ready();
    let ready = reqwest::get(handler.url("/")).await.unwrap();
    assert_eq!(ready.status(), 200);
    drop(handler);

    let port = free_port();
    let mut command = docflow();
    command
        .args(["serve", "--port", &port.to_string()])
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", free_port().to_string())
        .env("DOCFLOW_BLOB_DIR", blobs.path());
    let handler = Handler {
        child: command.spawn().unwrap(),
        port,
    };
    handler.wait_ready();
    assert_eq!(reqwest::get(handler.url("/")).await.unwrap().status(), 200);
}
