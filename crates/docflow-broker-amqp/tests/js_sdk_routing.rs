//! Microsoft's JavaScript SDK (`@azure/service-bus` 7.9.5) against what the broker does with
//! messages on their way in: duplicate detection (across the AMQP and the broker's own API),
//! topic subscriptions with a SQL and a correlation filter, and scheduled messages seen from
//! both sides. The scenarios are `tests/js/routing.cjs` (and `tests/js/sessions.cjs` for a
//! session receiver), run by `tests/js/harness.rs`.

mod common;
#[path = "js/harness.rs"]
mod harness;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{EMULATOR_KEY, Server, start};
use docflow_servicebus::message::{Message, MessageState, PropertyValue};
use harness::{Outcome, drain, text};
use serde_json::{Value, json};

/// Runs a scenario of `tests/js/routing.cjs`.
async fn js(server: &Server, name: &str, env: &[(&str, &str)]) -> Outcome {
    harness::js(server, EMULATOR_KEY, "routing.cjs", name, env).await
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

/// The message ids and bodies the broker holds in `path`, without taking them.
async fn stored(server: &Server, path: &str) -> Vec<(String, String)> {
    server
        .broker
        .browse(path, false, 1, 100)
        .await
        .unwrap()
        .iter()
        .map(|m| {
            (
                m.message.message_id.clone().unwrap_or_default(),
                text(&m.message.body).to_string(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn duplicates_the_js_sdk_sends_are_stored_once_within_the_window() {
    let server = start().await;
    js(&server, "send-duplicates", &[("SB_QUEUE", "dedup")])
        .await
        .ok();
    let want = pairs(&[("dup-1", "first"), ("dup-2", "other")]);
    assert_eq!(stored(&server, "dedup").await, want);
    // The broker's own API shares the history: still a duplicate.
    let again = Message::new(b"from rest".to_vec()).with_message_id("dup-1");
    server.broker.send("dedup", vec![again]).await.unwrap();
    assert_eq!(stored(&server, "dedup").await, want);
    // Past the one-minute window the id is new again.
    server.broker.advance_clock(Duration::from_secs(90));
    js(&server, "send-duplicates", &[("SB_QUEUE", "dedup")])
        .await
        .ok();
    let want = pairs(&[
        ("dup-1", "first"),
        ("dup-2", "other"),
        ("dup-1", "first"),
        ("dup-2", "other"),
    ]);
    assert_eq!(stored(&server, "dedup").await, want);
    // A queue without duplicate detection keeps every copy.
    js(&server, "send-duplicates", &[("SB_QUEUE", "q")])
        .await
        .ok();
    assert_eq!(stored(&server, "q").await.len(), 4);
}

#[tokio::test]
async fn js_sdk_subscriptions_get_what_their_sql_and_correlation_filters_match() {
    let server = start().await;
    js(&server, "send-orders", &[("SB_QUEUE", "orders")])
        .await
        .ok();
    let receive = |subscription: &'static str| {
        let server = &server;
        async move {
            js(
                server,
                "receive",
                &[
                    ("SB_QUEUE", "orders"),
                    ("SB_SUBSCRIPTION", subscription),
                    ("SB_COUNT", "10"),
                ],
            )
            .await
            .ok()
        }
    };
    let big = receive("big").await;
    assert_eq!(
        field(&big, "messageId"),
        ["o-1", "o-3", "o-5"],
        "amount > 100: {big}"
    );
    // The application properties arrive with their types.
    assert_eq!(
        field(&big, "applicationProperties"),
        [
            json!({"amount": {"number": 150}, "region": {"string": "eu"}}),
            json!({"amount": {"number": 500}, "region": {"string": "us"}}),
            json!({"amount": {"number": 100.5}, "region": {"string": "us"}}),
        ]
    );
    let eu = receive("eu").await;
    assert_eq!(
        field(&eu, "messageId"),
        ["o-1", "o-2"],
        "region = 'eu': {eu}"
    );
    for subscription in ["orders/subscriptions/big", "orders/subscriptions/eu"] {
        let counts = server.broker.counts(subscription).await.unwrap();
        assert_eq!(
            (counts.active, counts.dead_lettered),
            (0, 0),
            "{subscription}"
        );
    }
}

#[tokio::test]
async fn a_message_the_js_sdk_schedules_is_counted_as_scheduled_by_the_broker() {
    let server = start().await;
    let got = js(&server, "schedule", &[("SB_QUEUE", "q")]).await.ok();
    assert_eq!(got["scheduled"].as_array().unwrap().len(), 1, "{got}");
    let counts = server.broker.counts("q").await.unwrap();
    assert_eq!((counts.scheduled, counts.active), (1, 0));
    let listed = server.broker.browse("q", false, 1, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, MessageState::Scheduled);
    assert_eq!(
        Some(listed[0].sequence_number),
        got["scheduled"][0].as_i64()
    );
    let at: DateTime<Utc> = got["at"].as_str().unwrap().parse().unwrap();
    assert_eq!(listed[0].message.scheduled_enqueue_time, Some(at));
    server.broker.advance_clock(Duration::from_secs(2 * 3600));
    let counts = server.broker.counts("q").await.unwrap();
    assert_eq!((counts.scheduled, counts.active), (0, 1));
    let due = drain(&server, "q", false).await;
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].message_id.as_deref(), Some("sch-1"));
    assert_eq!(
        due[0].property("k"),
        Some(&PropertyValue::String("v".into()))
    );
}

#[tokio::test]
async fn a_session_message_the_js_sdk_schedules_reaches_a_session_receiver_when_due() {
    let server = start().await;
    let env = [("SB_QUEUE", "sessions"), ("SB_SESSION", "S")];
    // A minute ahead: the broker's clock then moves 90 s, within the SDK's token lifetime.
    let mut schedule = env.to_vec();
    schedule.push(("SB_DELAY_MS", "60000"));
    js(&server, "schedule", &schedule).await.ok();
    let counts = server.broker.counts("sessions").await.unwrap();
    assert_eq!((counts.scheduled, counts.active), (1, 0));
    server.broker.advance_clock(Duration::from_secs(90));
    let got = harness::js(
        &server,
        EMULATOR_KEY,
        "sessions.cjs",
        "receive-session",
        &env,
    )
    .await
    .ok();
    assert_eq!(field(&got, "messageId"), ["sch-1"], "{got}");
    assert_eq!(field(&got, "sessionId"), ["S"]);
    assert_eq!(field(&got, "body"), [json!({"json": "later"})]);
    let counts = server.broker.counts("sessions").await.unwrap();
    assert_eq!((counts.scheduled, counts.active), (0, 0));
}

#[tokio::test]
async fn a_message_scheduled_through_the_broker_api_is_peeked_as_scheduled_by_the_js_sdk() {
    let server = start().await;
    let at = Utc::now() + chrono::Duration::hours(1);
    let at = DateTime::<Utc>::from_timestamp_millis(at.timestamp_millis()).unwrap();
    let message = Message::new(b"rest later".to_vec())
        .with_message_id("rest-sch-1")
        .with_scheduled_enqueue_time(at);
    server.broker.send("q", vec![message]).await.unwrap();
    let got = js(&server, "peek", &[("SB_QUEUE", "q")]).await.ok();
    assert_eq!(field(&got, "messageId"), ["rest-sch-1"], "{got}");
    assert_eq!(field(&got, "state"), ["scheduled"]);
    let peeked_at: DateTime<Utc> = got[0]["scheduledEnqueueTimeUtc"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(peeked_at, at);
    assert_eq!(
        server.broker.counts("q").await.unwrap().scheduled,
        1,
        "peeking left it scheduled"
    );
}
