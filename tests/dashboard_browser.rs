//! The dashboard of `docflow dev` in headless Chromium (Debian's `chromium`, driven by
//! playwright-core; both installed by scripts/install-browser-tools.sh): documents submitted
//! and watched turning `completed` without a reload, the content filter kept in the URL, a
//! document's page with its trace's waterfall (a bar per span), two poisoned tasks reaching
//! the dead-letter queue of `ai-tasks` live on the Queues view, their group and a message's
//! recorded last error on Dead letters, and the group resubmitted in bulk. Afterwards the
//! originals are no longer in the dead-letter queue and the action is in the audit trail. The
//! LLM budget view shows the offline provider's deployments with the tokens they used.
//! Screenshots of each view go to target/dashboard-screenshots/.
//!
//! A second scenario fixes a configuration problem: `docflow dev` runs against a model
//! endpoint whose deployment does not exist yet (404 `DeploymentNotFound`, as Azure OpenAI
//! answers), the document's tasks are dead-lettered as `ProviderNotFound`, the deployment is
//! created, the group is resubmitted from the page and the document's open page turns
//! `completed`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::pipeline::{Call, FakeLlm, provider_env};
use common::{free_port, start_dev_with_dashboard, start_dev_with_env};
use docflow::dead_letters::AuditTrail;
use docflow::servicebus::ServiceBusClient;
use docflow::servicebus::message::Message;
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";

fn playwright() -> String {
    let module = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.tools/dashboard-browser/node_modules/playwright-core"
    );
    assert!(
        Path::new(module).is_dir() && Path::new(CHROMIUM).exists(),
        "playwright-core or chromium is missing: run bash scripts/install-test-tools.sh (it runs install-browser-tools.sh)"
    );
    module.to_string()
}

/// Runs a browser scenario with `env`; its last line of output, as JSON.
fn browser(script: &str, env: &[(&str, String)]) -> Value {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new("node")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/browser")
                .join(script),
        )
        .env("PLAYWRIGHT_CORE", playwright())
        .env("CHROMIUM", CHROMIUM)
        .env("SCREENSHOTS", screenshots())
        .env("USER_DATA_DIR", profile.path())
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser scenario {script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

fn screenshots() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots")
}

#[test]
fn a_group_dead_lettered_for_a_missing_deployment_completes_once_fixed_and_resubmitted() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let deployed = Arc::new(AtomicBool::new(false));
    let exists = deployed.clone();
    // Azure OpenAI's answer while a deployment does not exist.
    let llm = runtime.block_on(FakeLlm::start(
        Arc::new(move |_: &Call| {
            (!exists.load(Ordering::SeqCst)).then(|| {
                (
                    404,
                    vec![],
                    json!({"error": {"code": "DeploymentNotFound", "message": "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}}),
                )
            })
        }),
        Duration::ZERO,
    ));
    // Where the scenario creates the deployment.
    let create = deployed.clone();
    use warp::Filter as _;
    let control = warp::post().and(warp::path("deploy")).map(move || {
        create.store(true, Ordering::SeqCst);
        "deployed"
    });
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let control_addr = listener.local_addr().unwrap();
    runtime.spawn(warp::serve(control).incoming(listener).run());
    let data = tempfile::tempdir().unwrap();
    let ports = (free_port(), free_port(), free_port());
    let env: Vec<(&str, String)> = provider_env(&llm, &[("DOCFLOW_RETRY_BASE_MS", "200")]);
    let _dev = start_dev_with_env(data.path(), ports, &env, Stdio::null());
    let result = browser(
        "resubmit_fixed.cjs",
        &[
            ("DASHBOARD", format!("http://127.0.0.1:{}", ports.2)),
            ("API", format!("http://127.0.0.1:{}/api", ports.0)),
            ("DEPLOY", format!("http://{control_addr}/deploy")),
        ],
    );
    assert_eq!(result["count"], 2, "{result}");
    assert!(deployed.load(Ordering::SeqCst));
    for view in ["fix-dead-letters", "fix-completed"] {
        assert!(
            screenshots().join(format!("{view}.png")).is_file(),
            "{view}"
        );
    }
}

#[test]
fn the_dashboard_shows_documents_live_and_resubmits_a_dead_letter_group() {
    let data = tempfile::tempdir().unwrap();
    let (http_port, broker_port, dashboard_port) = (free_port(), free_port(), free_port());
    let _dev = start_dev_with_dashboard(
        data.path(),
        http_port,
        broker_port,
        dashboard_port,
        Stdio::null(),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = ServiceBusClient::from_connection_string(&format!(
        "Endpoint=sb://127.0.0.1:{broker_port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
    ))
    .unwrap();
    // Two tasks ProcessDocument cannot read: poison, dead-lettered after their deliveries.
    runtime.block_on(async {
        for id in ["poison-1", "poison-2"] {
            let mut m = Message::new("this is not a task");
            m.message_id = Some(id.into());
            client.send_message("ai-tasks", &m).await.unwrap();
        }
    });
    let result = browser(
        "dashboard.cjs",
        &[
            ("DASHBOARD", format!("http://127.0.0.1:{dashboard_port}")),
            ("API", format!("http://127.0.0.1:{http_port}/api")),
        ],
    );
    let screenshots = screenshots();
    let resubmitted: Vec<i64> = result["sequenceNumbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(resubmitted.len(), 2, "{result}");
    for view in [
        "documents",
        "document",
        "waterfall",
        "queues",
        "dead-letters",
        "dead-letter",
        "budget",
    ] {
        assert!(
            screenshots.join(format!("{view}.png")).is_file(),
            "{view}.png"
        );
    }

    runtime.block_on(async {
        // The originals left the dead-letter queue (their copies, still poison, may come back
        // under new numbers after their own deliveries).
        let left = client
            .browse("ai-tasks/$DeadLetterQueue", 0, 100)
            .await
            .unwrap();
        let still: Vec<i64> = left
            .iter()
            .map(|m| m.sequence_number)
            .filter(|s| resubmitted.contains(s))
            .collect();
        assert!(still.is_empty(), "still dead-lettered: {still:?}");
        let blobs: Arc<dyn docflow::blob::BlobStore> = Arc::new(
            docflow::blob::LocalFolderStore::new(data.path().join("blobs")),
        );
        let records = AuditTrail::new(blobs, "audit")
            .dead_letter_records()
            .await
            .unwrap();
        assert_eq!(records.len(), 1, "{records:?}");
        assert_eq!(records[0].event, "DeadLettersResubmitted");
        assert_eq!(records[0].entity, "ai-tasks");
        assert_eq!(records[0].actor, "dashboard");
        assert_eq!(records[0].count, 2);
    });
}
