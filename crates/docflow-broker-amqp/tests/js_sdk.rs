//! Microsoft's JavaScript SDK (`@azure/service-bus` 7.9.5, on `@azure/core-amqp` and `rhea`)
//! against the AMQP front end. The SDK is installed by `scripts/install-servicebus-sdks.sh`
//! (part of `scripts/install-test-tools.sh`) into `.tools/servicebus-sdk-js`, pinned by
//! `scripts/servicebus-sdk-js/package-lock.json`; the scenarios are `tests/js/sdk.cjs`, run
//! by `tests/js/harness.rs`.

mod common;
#[path = "js/harness.rs"]
mod harness;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{EMULATOR_KEY, Server, start};
use docflow_servicebus::message::{Message, PropertyValue};
use harness::{Outcome, text};
use serde_json::{Value, json};

/// Runs a scenario of `tests/js/sdk.cjs`.
async fn js(server: &Server, key: &str, name: &str, env: &[(&str, &str)]) -> Outcome {
    harness::js(server, key, "sdk.cjs", name, env).await
}

/// Every message left in `path`.
async fn drain(server: &Server, path: &str) -> Vec<Message> {
    harness::drain(server, path, false).await
}

fn at() -> DateTime<Utc> {
    "2024-05-06T07:08:09.123Z".parse().unwrap()
}

/// The application properties of the scenarios' EVERY_PROPERTY message, as JavaScript
/// receives them (dates kept as dates): every type arrives as the same JavaScript type.
fn every_property_as_received() -> Value {
    json!({
        "text": {"string": "value"},
        "count": {"number": 42},
        "negative": {"number": -7},
        "ratio": {"number": 1.5},
        "yes": {"boolean": true},
        "no": {"boolean": false},
        "at": {"date": "2024-05-06T07:08:09.123Z"},
    })
}

#[tokio::test]
async fn the_js_sdk_sends_a_message_and_a_batch_of_100() {
    let server = start().await;
    let result = js(&server, EMULATOR_KEY, "send-batch", &[("SB_QUEUE", "q")])
        .await
        .ok();
    assert_eq!(result["count"], 100);
    // The SDK sizes its batches from the max-message-size of the broker's attach reply.
    assert_eq!(
        result["maxSizeInBytes"],
        server.broker.options().max_message_bytes
    );
    let bodies: Vec<String> = drain(&server, "q")
        .await
        .iter()
        .map(|m| text(&m.body).to_string())
        .collect();
    let mut want = vec!["single".to_string()];
    want.extend((0..100).map(|i| format!("b{i}")));
    assert_eq!(bodies, want);
}

#[tokio::test]
async fn every_property_the_js_sdk_sends_reaches_the_broker_and_comes_back() {
    let server = start().await;
    js(
        &server,
        EMULATOR_KEY,
        "send-properties",
        &[("SB_QUEUE", "q")],
    )
    .await
    .ok();
    // The broker's view, without taking the messages.
    let stored = server.broker.browse("q", false, 1, 10).await.unwrap();
    assert_eq!(stored.len(), 2);
    let m = &stored[0].message;
    assert_eq!(text(&m.body), "every property");
    assert_eq!(m.message_id.as_deref(), Some("message-1"));
    assert_eq!(m.correlation_id.as_deref(), Some("correlation-1"));
    assert_eq!(m.content_type.as_deref(), Some("text/plain"));
    assert_eq!(m.subject.as_deref(), Some("the subject"));
    assert_eq!(m.to.as_deref(), Some("the-to"));
    assert_eq!(m.reply_to.as_deref(), Some("the-reply-to"));
    assert_eq!(m.time_to_live, Some(Duration::from_secs(3600)));
    let property = |k: &str| m.property(k).cloned();
    assert_eq!(
        property("text"),
        Some(PropertyValue::String("value".into()))
    );
    assert_eq!(property("count"), Some(PropertyValue::Int(42)));
    assert_eq!(property("negative"), Some(PropertyValue::Int(-7)));
    assert_eq!(property("ratio"), Some(PropertyValue::Double(1.5)));
    assert_eq!(property("yes"), Some(PropertyValue::Bool(true)));
    assert_eq!(property("no"), Some(PropertyValue::Bool(false)));
    assert_eq!(property("at"), Some(PropertyValue::DateTime(at())));
    // The SDK serialises a non-binary body as JSON text in a data section.
    let json_body = &stored[1].message;
    assert_eq!(json_body.message_id.as_deref(), Some("json-body"));
    assert_eq!(text(&json_body.body), r#"{"json":[1,"two"]}"#);

    let got = js(
        &server,
        EMULATOR_KEY,
        "receive",
        &[("SB_QUEUE", "q"), ("SB_COUNT", "2")],
    )
    .await
    .ok();
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    let m = &got[0];
    assert_eq!(m["body"], json!({"bytes": "every property"}));
    assert_eq!(m["messageId"], "message-1");
    assert_eq!(m["correlationId"], "correlation-1");
    assert_eq!(m["contentType"], "text/plain");
    assert_eq!(m["subject"], "the subject");
    assert_eq!(m["to"], "the-to");
    assert_eq!(m["replyTo"], "the-reply-to");
    assert_eq!(m["timeToLive"], 3_600_000);
    assert_eq!(m["deliveryCount"], 0);
    assert_eq!(m["sequenceNumber"], 1);
    assert_eq!(m["state"], "active");
    assert_eq!(m["applicationProperties"], every_property_as_received());
    assert_eq!(got[1]["body"], json!({"json": {"json": [1, "two"]}}));
    assert_eq!(got[1]["sequenceNumber"], 2);
    assert!(drain(&server, "q").await.is_empty(), "both were completed");
}

#[tokio::test]
async fn the_js_sdk_receives_completes_and_abandons_with_peek_lock() {
    let server = start().await;
    let result = js(&server, EMULATOR_KEY, "peek-lock", &[("SB_QUEUE", "q")])
        .await
        .ok();
    let first: Vec<(Value, Value, Value)> = result["first"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["body"]["json"].clone(),
                m["deliveryCount"].clone(),
                m["sequenceNumber"].clone(),
            )
        })
        .collect();
    assert_eq!(
        first,
        [
            (json!("m0"), json!(0), json!(1)),
            (json!("m1"), json!(0), json!(2))
        ]
    );
    for m in result["first"].as_array().unwrap() {
        let token = m["lockToken"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(token).is_ok(), "{token}");
        assert!(m["lockedUntilUtc"].is_string(), "{m}");
    }
    let mut again: Vec<(Value, Value)> = result["again"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["body"]["json"].clone(), m["deliveryCount"].clone()))
        .collect();
    again.sort_by_key(|(body, _)| body.to_string());
    assert_eq!(again, [(json!("m1"), json!(1)), (json!("m2"), json!(0))]);
    assert!(
        drain(&server, "q").await.is_empty(),
        "every message completed"
    );
}

#[tokio::test]
async fn the_js_sdk_streams_messages_with_subscribe() {
    let server = start().await;
    let messages = (0..5)
        .map(|i| Message::new(format!("s{i}")).with_property("i", i64::from(i)))
        .collect();
    server.broker.send("q", messages).await.unwrap();
    let result = js(
        &server,
        EMULATOR_KEY,
        "subscribe",
        &[("SB_QUEUE", "q"), ("SB_COUNT", "5")],
    )
    .await
    .ok();
    assert_eq!(result["errors"], json!([]));
    let got: Vec<(Value, Value)> = result["got"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["body"].clone(), m["applicationProperties"]["i"].clone()))
        .collect();
    let want: Vec<(Value, Value)> = (0..5)
        .map(|i| (json!({"bytes": format!("s{i}")}), json!({"number": i})))
        .collect();
    assert_eq!(got, want);
    // Completed automatically: nothing left, nothing locked.
    server.broker.advance_clock(Duration::from_secs(600));
    assert!(drain(&server, "q").await.is_empty());
}

#[tokio::test]
async fn the_js_sdk_is_refused_a_wrong_key_and_an_unknown_queue() {
    let server = start().await;
    let codes = js(&server, "d3Jvbmcta2V5", "refused", &[("SB_QUEUE", "q")])
        .await
        .ok();
    assert_eq!(codes["send"], "UnauthorizedAccess", "{codes}");
    assert_eq!(codes["receive"], "UnauthorizedAccess", "{codes}");
    assert_eq!(codes["sendName"], "ServiceBusError", "{codes}");
    let codes = js(&server, EMULATOR_KEY, "refused", &[("SB_QUEUE", "nope")])
        .await
        .ok();
    assert_eq!(codes["send"], "MessagingEntityNotFound", "{codes}");
    assert_eq!(codes["receive"], "MessagingEntityNotFound", "{codes}");
    assert!(drain(&server, "q").await.is_empty(), "nothing was sent");
}

#[tokio::test]
async fn the_js_sdk_sends_to_a_topic_and_receives_from_its_subscription() {
    let server = start().await;
    js(
        &server,
        EMULATOR_KEY,
        "send-properties",
        &[("SB_QUEUE", "t")],
    )
    .await
    .ok();
    let got = js(
        &server,
        EMULATOR_KEY,
        "receive",
        &[
            ("SB_QUEUE", "t"),
            ("SB_SUBSCRIPTION", "s"),
            ("SB_COUNT", "2"),
        ],
    )
    .await
    .ok();
    let got = got.as_array().unwrap();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0]["body"], json!({"bytes": "every property"}));
    assert_eq!(got[0]["subject"], "the subject");
    assert_eq!(
        got[0]["applicationProperties"],
        every_property_as_received()
    );
    assert_eq!(got[1]["messageId"], "json-body");
    assert!(drain(&server, "t/subscriptions/s").await.is_empty());
    assert!(
        drain(&server, "q").await.is_empty(),
        "the queue got nothing"
    );
}

#[tokio::test]
async fn a_message_sent_through_the_broker_api_reaches_the_js_sdk_unchanged() {
    let server = start().await;
    let sent = Message::new(b"from rest".to_vec())
        .with_message_id("rest-1")
        .with_correlation_id("rest-correlation")
        .with_subject("rest subject")
        .with_content_type("application/octet-stream")
        .with_time_to_live(Duration::from_secs(90))
        .with_property("text", "value")
        .with_property("count", 42i64)
        .with_property("negative", -7i64)
        .with_property("ratio", 1.5f64)
        .with_property("yes", true)
        .with_property("no", false)
        .with_property("at", PropertyValue::DateTime(at()));
    let sent = Message {
        to: Some("rest-to".into()),
        reply_to: Some("rest-reply-to".into()),
        ..sent
    };
    server.broker.send("q", vec![sent]).await.unwrap();
    let got = js(&server, EMULATOR_KEY, "receive", &[("SB_QUEUE", "q")])
        .await
        .ok();
    let m = &got[0];
    assert_eq!(m["body"], json!({"bytes": "from rest"}));
    assert_eq!(m["messageId"], "rest-1");
    assert_eq!(m["correlationId"], "rest-correlation");
    assert_eq!(m["contentType"], "application/octet-stream");
    assert_eq!(m["subject"], "rest subject");
    assert_eq!(m["to"], "rest-to");
    assert_eq!(m["replyTo"], "rest-reply-to");
    assert_eq!(m["timeToLive"], 90_000);
    assert_eq!(m["deliveryCount"], 0);
    assert_eq!(m["applicationProperties"], every_property_as_received());
    assert!(drain(&server, "q").await.is_empty(), "completed by the SDK");
}

#[tokio::test]
async fn the_js_sdk_abandons_defers_and_dead_letters_with_properties_to_modify() {
    let server = start().await;
    let got = js(
        &server,
        EMULATOR_KEY,
        "settle-with-properties",
        &[("SB_QUEUE", "q")],
    )
    .await
    .ok();
    // Abandoned with properties: delivered again carrying them, each with its type.
    let again = got["again"].as_array().unwrap();
    assert_eq!(again.len(), 1, "{got}");
    assert_eq!(again[0]["messageId"], "a0");
    assert_eq!(again[0]["deliveryCount"], 1);
    assert_eq!(
        again[0]["applicationProperties"],
        json!({
            "kept": {"string": "a0"},
            "added": {"string": "x"},
            "count": {"number": 3},
            "ratio": {"number": 0.5},
            "yes": {"boolean": true},
            "when": {"date": "2024-05-06T07:08:09.123Z"},
        })
    );
    // Deferred with properties.
    let deferred = got["deferred"].as_array().unwrap();
    assert_eq!(deferred.len(), 1, "{got}");
    assert_eq!(deferred[0]["messageId"], "a1");
    assert_eq!(deferred[0]["state"], "deferred");
    assert_eq!(
        deferred[0]["applicationProperties"],
        json!({
            "kept": {"string": "a1"},
            "deferredBy": {"string": "js"},
            "count": {"number": 7},
        })
    );
    // Dead-lettered with a reason, a description and more properties.
    let dead = got["dead"].as_array().unwrap();
    assert_eq!(dead.len(), 1, "{got}");
    assert_eq!(dead[0]["messageId"], "a2");
    assert_eq!(dead[0]["deadLetterReason"], "with-properties");
    assert_eq!(dead[0]["deadLetterErrorDescription"], "and more");
    assert_eq!(
        dead[0]["applicationProperties"],
        json!({
            "kept": {"string": "a2"},
            "extra": {"string": "e"},
            "n": {"number": 9},
            "DeadLetterReason": {"string": "with-properties"},
            "DeadLetterErrorDescription": {"string": "and more"},
        })
    );
    server.broker.advance_clock(Duration::from_secs(600));
    assert!(drain(&server, "q").await.is_empty(), "all were completed");
    assert!(harness::drain(&server, "q", true).await.is_empty());
}
