//! Microsoft's JavaScript SDK (`@azure/service-bus` 7.9.5) against the AMQP front end:
//! receive-and-delete and the `$management` operations (peek, renew-lock, schedule and cancel,
//! defer and receive-deferred, update-disposition with properties to modify) and dead letters. The scenarios are
//! `tests/js/management.cjs`, run by `tests/js/harness.rs`; the SDK is installed by
//! `scripts/install-servicebus-sdks.sh`.

mod common;
#[path = "js/harness.rs"]
mod harness;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{EMULATOR_KEY, Server, start};
use docflow_broker::ReceiveMode;
use docflow_servicebus::message::{Message, MessageState, PropertyValue};
use harness::{Outcome, drain, text};
use serde_json::{Value, json};

/// Runs a scenario of `tests/js/management.cjs` on queue `q`.
async fn js(server: &Server, name: &str, env: &[(&str, &str)]) -> Outcome {
    let mut all = vec![("SB_QUEUE", "q")];
    all.extend_from_slice(env);
    harness::js(server, EMULATOR_KEY, "management.cjs", name, &all).await
}

/// Sends `bodies` to `q` through the broker's own API.
async fn send(server: &Server, bodies: &[&str]) {
    let messages = bodies.iter().map(|b| Message::new(b.as_bytes())).collect();
    server.broker.send("q", messages).await.unwrap();
}

/// One field of each summarised message.
fn field(messages: &Value, name: &str) -> Vec<Value> {
    messages
        .as_array()
        .unwrap_or_else(|| panic!("a list of messages: {messages}"))
        .iter()
        .map(|m| m[name].clone())
        .collect()
}

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn the_js_sdk_receives_and_deletes() {
    let server = start().await;
    send(&server, &["r0", "r1", "r2"]).await;
    let got = js(&server, "receive-and-delete", &[("SB_COUNT", "3")])
        .await
        .ok();
    assert_eq!(
        field(&got, "body"),
        [
            json!({"bytes": "r0"}),
            json!({"bytes": "r1"}),
            json!({"bytes": "r2"})
        ]
    );
    assert_eq!(
        field(&got, "sequenceNumber"),
        [json!(1), json!(2), json!(3)]
    );
    assert_eq!(field(&got, "deliveryCount"), [json!(0), json!(0), json!(0)]);
    // Nothing to settle: no lock token, and the messages are gone rather than locked.
    assert_eq!(
        field(&got, "lockToken"),
        [Value::Null, Value::Null, Value::Null]
    );
    server.broker.advance_clock(Duration::from_secs(600));
    assert!(drain(&server, "q", false).await.is_empty());
}

#[tokio::test]
async fn the_js_sdk_peeks_without_locking() {
    let server = start().await;
    send(&server, &["p0", "p1", "p2"]).await;
    let got = js(&server, "peek", &[]).await.ok();
    assert_eq!(field(&got["first"], "sequenceNumber"), [json!(1), json!(2)]);
    assert_eq!(field(&got["rest"], "sequenceNumber"), [json!(3)]);
    assert_eq!(
        field(&got["all"], "body"),
        [
            json!({"bytes": "p0"}),
            json!({"bytes": "p1"}),
            json!({"bytes": "p2"})
        ]
    );
    assert_eq!(field(&got["all"], "state"), ["active", "active", "active"]);
    assert_eq!(
        field(&got["all"], "lockToken"),
        [Value::Null, Value::Null, Value::Null]
    );
    assert_eq!(got["none"], json!([]));
    // Still there and never delivered.
    let left = server
        .broker
        .receive_batch("q", 10, ReceiveMode::PeekLock, Duration::ZERO)
        .await
        .unwrap();
    let counts: Vec<u32> = left.iter().map(|m| m.delivery_count).collect();
    assert_eq!(counts, [1, 1, 1]);
}

#[tokio::test]
async fn the_js_sdk_renews_a_lock() {
    let server = start().await;
    send(&server, &["renew"]).await;
    let got = js(&server, "renew-lock", &[]).await.ok();
    let (before, renewed, after) = (
        time(&got["before"]),
        time(&got["renewed"]),
        time(&got["after"]),
    );
    assert!(renewed > before, "{got}");
    assert_eq!(
        renewed, after,
        "the SDK updates the message's lockedUntilUtc"
    );
    server.broker.advance_clock(Duration::from_secs(600));
    assert!(
        drain(&server, "q", false).await.is_empty(),
        "completed after the renewal"
    );
}

#[tokio::test]
async fn the_js_sdk_schedules_and_cancels() {
    let server = start().await;
    let got = js(&server, "schedule", &[]).await.ok();
    let numbers = got["scheduled"].as_array().unwrap();
    assert_eq!(numbers.len(), 2, "{got}");
    assert_ne!(numbers[0], numbers[1]);
    // Peeked: only the one not cancelled, scheduled for the requested time.
    let peeked = &got["peeked"];
    assert_eq!(field(peeked, "messageId"), ["s-1"]);
    assert_eq!(field(peeked, "state"), ["scheduled"]);
    assert_eq!(field(peeked, "sequenceNumber"), [numbers[1].clone()]);
    assert_eq!(
        time(&peeked[0]["scheduledEnqueueTimeUtc"]),
        time(&got["at"])
    );
    // The broker's view: one scheduled message, receivable once its time has come.
    let stored = server.broker.browse("q", false, 1, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].state, MessageState::Scheduled);
    assert!(drain(&server, "q", false).await.is_empty(), "not yet");
    server.broker.advance_clock(Duration::from_secs(2 * 3600));
    let due = drain(&server, "q", false).await;
    assert_eq!(due.len(), 1);
    assert_eq!(text(&due[0].body), r#""kept""#);
    assert_eq!(due[0].message_id.as_deref(), Some("s-1"));
    assert_eq!(
        due[0].property("k"),
        Some(&PropertyValue::String("v".into()))
    );
}

#[tokio::test]
async fn the_js_sdk_defers_receives_deferred_and_settles_them_by_management() {
    let server = start().await;
    let got = js(&server, "defer", &[]).await.ok();
    assert_eq!(got["sequenceNumbers"], json!([1, 2]));
    assert_eq!(got["nothing"], 0, "deferred messages are not received");
    let deferred = &got["deferred"];
    assert_eq!(field(deferred, "messageId"), ["d-0", "d-1"]);
    assert_eq!(
        field(deferred, "body"),
        [json!({"json": "d0"}), json!({"json": "d1"})]
    );
    assert_eq!(field(deferred, "state"), ["deferred", "deferred"]);
    for m in deferred.as_array().unwrap() {
        let token = m["lockToken"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(token).is_ok(), "{m}");
    }
    // The first completed, the second dead-lettered with its reason.
    assert!(
        server
            .broker
            .browse("q", false, 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let dead = drain(&server, "q", true).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id.as_deref(), Some("d-1"));
    assert_eq!(
        dead[0].property("DeadLetterReason"),
        Some(&PropertyValue::String("deferred-reason".into()))
    );
    assert_eq!(
        dead[0].property("DeadLetterErrorDescription"),
        Some(&PropertyValue::String("deferred-description".into()))
    );
    assert_eq!(
        dead[0].property("extra"),
        Some(&PropertyValue::String("by-management".into())),
        "update-disposition's properties-to-modify"
    );
}

#[tokio::test]
async fn the_js_sdk_dead_letters_and_reads_the_dead_letter_queue() {
    let server = start().await;
    let got = js(&server, "dead-letter", &[]).await.ok();
    assert_eq!(got["dead"]["messageId"], "dl-1");
    // Peeked, then received, from the dead-letter queue: the reason and description both as
    // the SDK's fields and as application properties.
    for listed in [&got["peeked"], &got["received"]] {
        assert_eq!(field(listed, "messageId"), ["dl-1"]);
        assert_eq!(field(listed, "body"), [json!({"json": "dl"})]);
        assert_eq!(field(listed, "deadLetterReason"), ["bad-input"]);
        assert_eq!(field(listed, "deadLetterErrorDescription"), ["it was bad"]);
        assert_eq!(
            field(listed, "applicationProperties"),
            [json!({
                "DeadLetterReason": {"string": "bad-input"},
                "DeadLetterErrorDescription": {"string": "it was bad"},
            })]
        );
    }
    assert!(drain(&server, "q", false).await.is_empty());
    server.broker.advance_clock(Duration::from_secs(600));
    assert!(
        drain(&server, "q", true).await.is_empty(),
        "completed from the dead-letter queue"
    );
}

#[tokio::test]
async fn a_management_request_for_an_unknown_queue_is_refused() {
    let server = start().await;
    let error = js(&server, "peek-unknown", &[]).await.err();
    assert_eq!(error["code"], "MessagingEntityNotFound", "{error}");
}
