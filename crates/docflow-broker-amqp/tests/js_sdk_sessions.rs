//! Microsoft's JavaScript SDK (`@azure/service-bus` 7.9.5) against session receivers:
//! `acceptNextSession` (the session with the oldest message), FIFO within a session,
//! `acceptSession` of a named session, a session held by another client, session state and
//! lock renewal, peeking and abandoning in a session, no session available, and session
//! messages sent through the broker's own API. The scenarios are `tests/js/sessions.cjs`, run
//! by `tests/js/harness.rs`.

mod common;
#[path = "js/harness.rs"]
mod harness;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{EMULATOR_KEY, Server, start};
use docflow_servicebus::message::{Message, PropertyValue};
use harness::Outcome;
use serde_json::{Value, json};

/// Runs a scenario of `tests/js/sessions.cjs` on queue `sessions`.
async fn js(server: &Server, name: &str, env: &[(&str, &str)]) -> Outcome {
    let mut all = vec![("SB_QUEUE", "sessions")];
    all.extend_from_slice(env);
    harness::js(server, EMULATOR_KEY, "sessions.cjs", name, &all).await
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

/// Sends `bodies` to session `session` of queue `sessions` through the broker's own API.
async fn send(server: &Server, session: &str, bodies: &[&str]) {
    let messages = bodies
        .iter()
        .map(|b| Message::new(b.as_bytes()).with_session_id(session))
        .collect();
    server.broker.send("sessions", messages).await.unwrap();
}

#[tokio::test]
async fn the_js_sdk_accepts_the_next_session_and_a_named_one_in_fifo_order() {
    let server = start().await;
    let got = js(&server, "next-and-named", &[]).await.ok();
    let first = &got["first"];
    assert_eq!(
        first["sessionId"], "B",
        "the session with the oldest message first: {got}"
    );
    assert_eq!(
        field(&first["got"], "body"),
        [json!({"json": "b0"}), json!({"json": "b1"})]
    );
    assert_eq!(field(&first["got"], "sessionId"), ["B", "B"]);
    let a = &got["a"];
    assert_eq!(a["sessionId"], "A");
    assert_eq!(
        field(&a["got"], "body"),
        [
            json!({"json": "a0"}),
            json!({"json": "a1"}),
            json!({"json": "a2"})
        ]
    );
    assert_eq!(field(&a["got"], "sessionId"), ["A", "A", "A"]);
    assert_eq!(field(&a["got"], "deliveryCount"), [0, 0, 0]);
    let counts = server.broker.counts("sessions").await.unwrap();
    assert_eq!(counts.active, 0, "every message was completed");
}

#[tokio::test]
async fn a_session_held_by_another_js_receiver_cannot_be_locked() {
    let server = start().await;
    send(&server, "A", &["a0"]).await;
    let got = js(&server, "held-elsewhere", &[]).await.ok();
    assert_eq!(got["refused"]["code"], "SessionCannotBeLocked", "{got}");
    assert_eq!(got["refused"]["name"], "ServiceBusError", "{got}");
    assert_eq!(
        got["after"], "A",
        "free again once the first receiver closed"
    );
    let counts = server.broker.counts("sessions").await.unwrap();
    assert_eq!(counts.active, 1, "nothing was received");
}

#[tokio::test]
async fn the_js_sdk_keeps_session_state_and_renews_the_session_lock() {
    let server = start().await;
    let got = js(&server, "state-and-lock", &[("SB_SESSION", "S")])
        .await
        .ok();
    // No state yet: the broker answers a null session-state, which the SDK hands back as is.
    assert_eq!(got["empty"], Value::Null, "no state yet: {got}");
    assert_eq!(got["state"], json!({"step": 1}));
    assert_eq!(
        got["kept"],
        json!({"step": 1}),
        "the state outlives the receiver"
    );
    let (before, renewed, after) = (
        time(&got["before"]),
        time(&got["renewed"]),
        time(&got["after"]),
    );
    assert!(before > Utc::now() - chrono::Duration::minutes(5), "{got}");
    assert!(renewed > before, "a later expiry: {got}");
    assert_eq!(
        renewed, after,
        "the SDK updates the receiver's sessionLockedUntilUtc"
    );
}

#[tokio::test]
async fn the_js_sdk_peeks_and_abandons_within_a_session() {
    let server = start().await;
    send(&server, "A", &["a0"]).await;
    send(&server, "B", &["b0", "b1"]).await;
    let got = js(
        &server,
        "peek-and-abandon",
        &[("SB_SESSION", "B"), ("SB_COUNT", "2")],
    )
    .await
    .ok();
    assert_eq!(
        field(&got["peeked"], "body"),
        [json!({"bytes": "b0"}), json!({"bytes": "b1"})],
        "only the session's messages: {got}"
    );
    assert_eq!(field(&got["peeked"], "sessionId"), ["B", "B"]);
    assert_eq!(
        field(&got["peeked"], "lockToken"),
        [Value::Null, Value::Null]
    );
    assert_eq!(
        field(&got["got"], "body"),
        [json!({"bytes": "b0"}), json!({"bytes": "b1"})]
    );
    assert_eq!(field(&got["got"], "deliveryCount"), [0, 0]);
    assert_eq!(field(&got["again"], "body"), [json!({"bytes": "b0"})]);
    assert_eq!(field(&got["again"], "deliveryCount"), [1]);
    assert_eq!(field(&got["again"], "sessionId"), ["B"]);
    let counts = server.broker.counts("sessions").await.unwrap();
    assert_eq!(counts.active, 1, "only session A's message is left");
}

#[tokio::test]
async fn accept_next_session_with_no_session_available_times_out() {
    let server = start().await;
    let got = js(&server, "none-available", &[]).await.ok();
    // The SDK maps the broker's com.microsoft:timeout refusal (and its own timer's
    // OperationTimeoutError) to ServiceTimeout.
    assert_eq!(got["code"], "ServiceTimeout", "{got}");
    assert_eq!(got["name"], "ServiceBusError", "{got}");
    // The SDK asks for a little less than its 3 s operation timeout in com.microsoft:timeout,
    // so the broker's refusal comes first: its description, not the SDK's own timeout text.
    assert!(
        got["message"]
            .as_str()
            .unwrap()
            .contains("no session became available"),
        "{got}"
    );
    let elapsed = got["elapsedMs"].as_u64().unwrap();
    assert!(
        (2500..10_000).contains(&elapsed),
        "about the 3 s operation timeout: {got}"
    );
}

#[tokio::test]
async fn a_session_message_sent_through_the_broker_api_reaches_a_js_session_receiver() {
    let server = start().await;
    let at: DateTime<Utc> = "2024-05-06T07:08:09.123Z".parse().unwrap();
    let sent = Message::new(b"from rest".to_vec())
        .with_message_id("rest-session-1")
        .with_session_id("R")
        .with_correlation_id("rest-correlation")
        .with_subject("rest subject")
        .with_content_type("text/plain")
        .with_time_to_live(Duration::from_secs(90))
        .with_property("text", "value")
        .with_property("count", 42i64)
        .with_property("ratio", 1.5f64)
        .with_property("yes", true)
        .with_property("at", PropertyValue::DateTime(at));
    server.broker.send("sessions", vec![sent]).await.unwrap();
    send(&server, "other", &["not this one"]).await;
    let got = js(&server, "receive-session", &[("SB_SESSION", "R")])
        .await
        .ok();
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    let m = &got[0];
    assert_eq!(m["body"], json!({"bytes": "from rest"}));
    assert_eq!(m["messageId"], "rest-session-1");
    assert_eq!(m["sessionId"], "R");
    assert_eq!(m["correlationId"], "rest-correlation");
    assert_eq!(m["subject"], "rest subject");
    assert_eq!(m["contentType"], "text/plain");
    assert_eq!(m["timeToLive"], 90_000);
    assert_eq!(m["deliveryCount"], 0);
    assert_eq!(
        m["applicationProperties"],
        json!({
            "text": {"string": "value"},
            "count": {"number": 42},
            "ratio": {"number": 1.5},
            "yes": {"boolean": true},
            "at": {"date": "2024-05-06T07:08:09.123Z"},
        })
    );
    let counts = server.broker.counts("sessions").await.unwrap();
    assert_eq!(counts.active, 1, "the other session's message is left");
}
