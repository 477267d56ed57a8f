//! Microsoft's Python SDK (`azure-servicebus` 7.14.2, installed by
//! `scripts/install-test-tools.sh`) reading the embedded broker's management answers: the
//! models and conversions behind `get_queue_runtime_properties`,
//! `list_queues_runtime_properties` (its paging on the feeds' `next` links) and
//! `get_subscription_runtime_properties`, run by
//! `tests/fixtures/servicebus-admin/read_runtimes.py`.
//!
//! Not the administration client itself: with `UseDevelopmentEmulator=true` it still builds
//! `https://{endpoint}` and speaks TLS to the broker's plain-HTTP port (see
//! `docs/servicebus-sdks.md`), so the script fetches over HTTP with the SDK's own SAS
//! credential and hands each document to the SDK's deserialisers.

mod common;

use std::process::Command;

use common::broker::Harness;
use docflow::servicebus::message::Message;
use serde_json::Value;

/// Runs the script against the broker on `port`; its JSON output.
async fn read_with_the_sdk(port: u16, queue: &str, topic: &str, subscription: &str) -> Value {
    let mut command = Command::new(common::servicebus_sdk_python());
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/servicebus-admin/read_runtimes.py"
        ))
        .args([&port.to_string(), queue, topic, subscription])
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[tokio::test]
async fn microsoft_s_sdk_reads_the_broker_s_queue_and_subscription_runtime_properties() {
    let h = Harness::start().await;
    let client = h.client();
    common::broker::a_queue_with_every_count(&client).await;
    client
        .send_message("fan", &Message::new("1"))
        .await
        .unwrap();
    client
        .send_message("fan", &Message::new("2"))
        .await
        .unwrap();

    let sdk = read_with_the_sdk(h.port, "q", "fan", "s1").await;

    let queue = &sdk["queue"];
    assert_eq!(queue["name"], "q");
    assert_eq!(
        [
            &queue["active"],
            &queue["dead_lettered"],
            &queue["scheduled"],
            &queue["transfer"],
            &queue["transfer_dead_lettered"],
            &queue["total"]
        ],
        [2, 1, 1, 0, 0, 4]
    );
    assert!(queue["size_in_bytes"].as_u64().unwrap() > 0, "{queue}");
    assert_ne!(queue["accessed_at"], "0001-01-01T00:00:00+00:00", "{queue}");

    // The SDK pages the whole listing, five queues at a time, by the broker's next links.
    let ours = client.queue_runtimes().await.unwrap();
    let expected: Vec<Value> = ours
        .iter()
        .map(|q| serde_json::json!([q.path, q.active]))
        .collect();
    assert_eq!(sdk["queues"].as_array().unwrap(), &expected);
    assert_eq!(sdk["pages"], ours.len().div_ceil(5));

    let subscription = &sdk["subscription"];
    assert_eq!(subscription["name"], "s1");
    assert_eq!(
        [
            &subscription["active"],
            &subscription["dead_lettered"],
            &subscription["total"]
        ],
        [2, 0, 2]
    );
    assert_eq!(sdk["missing_has_content"], false, "the SDK's not-found");
}
