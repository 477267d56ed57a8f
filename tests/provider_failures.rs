//! What a user meets when the model endpoint misbehaves: settings from the environment only,
//! a preflight that stops a run with a wrong URL, an outage the pipeline rides out, and a wrong
//! model fixed afterwards with `docflow dlq resubmit --all`.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::free_port;
use common::pipeline::{Call, FakeLlm, PipelineApp, normal_answer, provider_env};
use serde_json::{Value, json};

fn run_samples(env: &[(&str, &str)]) -> std::process::Output {
    let out = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_docflow"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "samples/", "--timeout-secs", "120", "--out"])
        .arg(out.path().join("out.json"));
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_in_the_environment_win_over_local_settings() {
    let llm = FakeLlm::start(Arc::new(|_: &Call| None), Duration::ZERO).await;
    let url = llm.url.clone();
    let output = tokio::task::spawn_blocking(move || {
        run_samples(&[
            ("DOCFLOW_AI_PROVIDER", "openai"),
            ("DOCFLOW_OPENAI_BASE_URL", &url),
            ("DOCFLOW_CHAT_MODEL", "fake-chat"),
        ])
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("openai-compatible endpoint {}", llm.url)),
        "{stderr}"
    );
    let calls = llm.calls();
    // The preflight, then 4 documents × 5 kinds.
    assert!(
        calls.len() > 20,
        "the configured server did the work: {} calls",
        calls.len()
    );
    assert!(stdout.contains("4 documents: 4 completed"), "{stdout}");
    assert!(stdout.contains("tasks 20 succeeded, 0 failed"), "{stdout}");
}

#[test]
fn a_wrong_base_url_stops_the_run_before_any_document() {
    let closed = free_port();
    let url = format!("http://127.0.0.1:{closed}/v1");
    let output = run_samples(&[
        ("DOCFLOW_AI_PROVIDER", "openai"),
        ("DOCFLOW_OPENAI_BASE_URL", &url),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("the AI provider is not usable"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{closed}")), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("DOCUMENT"));
}

fn settings(llm: &FakeLlm) -> Vec<(&'static str, String)> {
    provider_env(llm, &[("DOCFLOW_RETRY_BASE_MS", "500")])
}

async fn start(env: &[(&'static str, String)], data: Option<tempfile::TempDir>) -> PipelineApp {
    PipelineApp::start_with(env, data).await
}

async fn submit_samples(app: &PipelineApp) -> Vec<String> {
    let mut ids = Vec::new();
    for name in [
        "invoice-2025-0117",
        "services-agreement",
        "support-email-late-delivery",
        "support-email-thank-you",
    ] {
        let text =
            std::fs::read(format!("{}/samples/{name}.txt", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let (status, _, body) = app
            .submit("", &[("content-type", "text/plain")], text)
            .await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_second_outage_dead_letters_nothing() {
    let script: common::pipeline::Script = Arc::new(|_: &Call| None);
    let llm = FakeLlm::start(script.clone(), Duration::from_millis(50)).await;
    let port = llm.port();
    let app = start(&settings(&llm), None).await;
    let ids = submit_samples(&app).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    llm.stop().await;
    let down_calls = llm.calls().len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let back = FakeLlm::start_on(port, script, Duration::ZERO).await;
    for id in &ids {
        let doc = app.wait_final(id, Duration::from_secs(90)).await;
        assert_eq!(doc["status"], "completed", "{doc:#}");
    }
    assert!(
        down_calls < 20,
        "the outage began mid-run ({down_calls} calls before it)"
    );
    assert!(!back.calls().is_empty(), "work resumed after the outage");
    let counts = app.host.context().broker.counts("ai-tasks").await.unwrap();
    assert_eq!(counts.dead_lettered, 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_model_is_fixed_then_recovered_with_dlq_resubmit() {
    // The embedding model name is wrong: the server answers 404 for it.
    let script: common::pipeline::Script = Arc::new(|call: &Call| {
        (call.kind == "embed" && call.text.contains("WRONG-MODEL")).then(|| {
            (404, vec![], json!({"error": {"message": "model 'text-embed-typo' not found", "code": "model_not_found"}}))
        })
    });
    let llm = FakeLlm::start(
        Arc::new(move |call: &Call| script(call).or_else(|| Some(normal_answer(call)))),
        Duration::ZERO,
    )
    .await;
    let mut env = settings(&llm);
    env.push(("DOCFLOW_MAX_TRANSIENT_RETRIES", "1".into()));
    env.push(("DOCFLOW_EMBEDDING_MODEL", "text-embed-typo".into()));
    // The fake sees the model only in the body; mark the texts so it can tell.
    let app = start(&env, None).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, _, body) = app
            .submit(
                "?analyses=summarize,embed",
                &[("content-type", "text/plain")],
                format!("WRONG-MODEL document {n}. It has two sentences."),
            )
            .await;
        assert_eq!(status, 202);
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        let doc = app.wait_final(id, Duration::from_secs(60)).await;
        assert_eq!(doc["status"], "partial", "{doc:#}");
        let error = &doc["tasks"]["embed"]["error"];
        assert_eq!(error["reason"], "ProviderNotFound", "{doc:#}");
        assert!(
            error["description"]
                .as_str()
                .unwrap()
                .contains("text-embed-typo")
        );
        assert_eq!(error["deadLettered"], true);
    }
    let connection =
        docflow::servicebus::Namespace::emulator_connection_string(app.host.broker_port());
    let blobs = app.data.path().join("blobs");
    let listed = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .args([
            "dlq",
            "--connection",
            &connection,
            "list",
            "ai-tasks",
            "--reason",
            "ProviderNotFound",
            "--json",
        ])
        .env("DOCFLOW_BLOB_DIR", &blobs)
        .output()
        .unwrap();
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3, "{listed:#}");

    // Fix the setting (the fake now accepts every embedding call) and restart on the same data.
    let data = app.stop().await;
    let fixed = FakeLlm::start(Arc::new(|_: &Call| None), Duration::ZERO).await;
    let app = start(&settings(&fixed), Some(data)).await;
    let connection =
        docflow::servicebus::Namespace::emulator_connection_string(app.host.broker_port());
    let resubmit = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .args([
            "dlq",
            "--connection",
            &connection,
            "resubmit",
            "ai-tasks",
            "--all",
        ])
        .env("DOCFLOW_BLOB_DIR", &blobs)
        .output()
        .unwrap();
    assert!(
        resubmit.status.success(),
        "{}",
        String::from_utf8_lossy(&resubmit.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in &ids {
        loop {
            let (_, doc) = app.get(id, "").await;
            if doc["status"] == "completed" {
                assert_eq!(doc["tasks"]["embed"]["status"], "succeeded");
                break;
            }
            assert!(Instant::now() < deadline, "{id} not recovered: {doc:#}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(
        fixed.calls().iter().filter(|c| c.kind == "embed").count(),
        3
    );
    assert_eq!(
        fixed
            .calls()
            .iter()
            .filter(|c| c.kind == "summarize")
            .count(),
        0,
        "only the failed tasks ran again"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_a_run_says_it_was_interrupted() {
    // A slow endpoint: the documents are still in progress when the run is interrupted.
    let llm = FakeLlm::start(Arc::new(|_: &Call| None), Duration::from_secs(8)).await;
    let url = llm.url.clone();
    let child = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "samples/invoice-2025-0117.txt",
            "--kinds",
            "sentiment",
        ])
        .env("DOCFLOW_AI_PROVIDER", "openai")
        .env("DOCFLOW_OPENAI_BASE_URL", &url)
        .env("DOCFLOW_AI_TIMEOUT_SECS", "60")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Past the preflight (answered after the endpoint's delay) and into the polling.
    let deadline = Instant::now() + Duration::from_secs(60);
    while llm.calls().len() < 2 {
        assert!(Instant::now() < deadline, "the run never reached the model");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!stderr.contains("did not finish"), "{stderr}");
}
