//! The dashboard of `docflow dev` in headless Chromium (Debian's `chromium`, driven by
//! playwright-core; both installed by scripts/install-browser-tools.sh): documents submitted
//! and watched turning `completed` without a reload, the content filter kept in the URL, a
//! document's page with its trace's waterfall (a bar per span), two poisoned tasks reaching
//! the dead-letter queue of `ai-tasks` live on the Queues view, their group and a message's
//! recorded last error on Dead letters, and the group resubmitted in bulk. Afterwards the
//! originals are no longer in the dead-letter queue and the action is in the audit trail. The
//! LLM budget view shows the offline provider's deployments with the tokens they used.
//! Screenshots of each view go to target/dashboard-screenshots/.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use common::{free_port, start_dev_with_dashboard};
use docflow::dead_letters::AuditTrail;
use docflow::servicebus::ServiceBusClient;
use docflow::servicebus::message::Message;
use serde_json::Value;

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

#[test]
fn the_dashboard_shows_documents_live_and_resubmits_a_dead_letter_group() {
    let playwright = playwright();
    let data = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
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
    let screenshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/dashboard-screenshots");
    let output = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/browser/dashboard.cjs"
        ))
        .env("PLAYWRIGHT_CORE", playwright)
        .env("CHROMIUM", CHROMIUM)
        .env("DASHBOARD", format!("http://127.0.0.1:{dashboard_port}"))
        .env("API", format!("http://127.0.0.1:{http_port}/api"))
        .env("SCREENSHOTS", &screenshots)
        .env("USER_DATA_DIR", profile.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser scenario failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
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
