//! Microsoft's Python SDK (`azure-servicebus` 7.14) against the AMQP front end. The SDK is
//! installed by `scripts/install-servicebus-sdks.sh` (part of `scripts/install-test-tools.sh`)
//! into `.tools/servicebus-sdk-venv`; `DOCFLOW_SB_PYTHON` names another interpreter.

mod common;

use std::time::Duration;

use common::{EMULATOR_KEY, sdk, start};
use docflow_broker::ReceiveMode;
use docflow_servicebus::message::PropertyValue;

const SEND: &str = r#"
import os
from azure.servicebus import ServiceBusClient, ServiceBusMessage
with ServiceBusClient.from_connection_string(os.environ["SB_CONNECTION"], retry_total=0) as client:
    with client.get_queue_sender(os.environ["SB_QUEUE"]) as sender:
        sender.send_messages(ServiceBusMessage("hi", subject="lbl", application_properties={"k": "v"}))
        batch = sender.create_message_batch()
        for i in range(3):
            batch.add_message(ServiceBusMessage(f"b{i}"))
        sender.send_messages(batch)
print("SENT")
"#;

const RECEIVE: &str = r#"
import os
from azure.servicebus import ServiceBusClient, ServiceBusMessage
with ServiceBusClient.from_connection_string(os.environ["SB_CONNECTION"], retry_total=0) as client:
    with client.get_queue_sender(os.environ["SB_QUEUE"]) as sender:
        sender.send_messages([ServiceBusMessage(f"m{i}", application_properties={"i": i}) for i in range(3)])
    with client.get_queue_receiver(os.environ["SB_QUEUE"], max_wait_time=5) as receiver:
        first = receiver.receive_messages(max_message_count=2, max_wait_time=5)
        print("FIRST", [(str(m), m.delivery_count, m.sequence_number, m.application_properties[b"i"]) for m in first])
        receiver.complete_message(first[0])
        receiver.abandon_message(first[1])
        again = receiver.receive_messages(max_message_count=5, max_wait_time=3)
        print("AGAIN", sorted((str(m), m.delivery_count) for m in again))
        for m in again:
            receiver.complete_message(m)
print("DONE")
"#;

async fn run_python(port: u16, key: &str, queue: &str) -> std::process::Output {
    run_script(SEND, port, key, queue).await
}

async fn run_script(script: &str, port: u16, key: &str, queue: &str) -> std::process::Output {
    sdk::run_python(script, port, key, &[("SB_QUEUE", queue)]).await
}

#[tokio::test]
async fn the_python_sdk_sends_a_message_and_a_batch() {
    let server = start().await;
    let output = run_python(server.port, EMULATOR_KEY, "q").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let mut bodies = Vec::new();
    while let Some(got) = server
        .broker
        .receive("q", false, ReceiveMode::ReceiveAndDelete, Duration::ZERO)
        .await
        .unwrap()
    {
        if bodies.is_empty() {
            assert_eq!(got.message.subject.as_deref(), Some("lbl"));
            assert_eq!(
                got.message.property("k"),
                Some(&PropertyValue::String("v".into()))
            );
        }
        bodies.push(String::from_utf8(got.message.body).unwrap());
    }
    assert_eq!(bodies, ["hi", "b0", "b1", "b2"]);
}

#[tokio::test]
async fn the_python_sdk_is_refused_a_wrong_key_and_an_unknown_queue() {
    let server = start().await;
    let output = run_python(server.port, "wrong-key", "q").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ServiceBusAuthenticationError"), "{stderr}");
    let output = run_python(server.port, EMULATOR_KEY, "nope").await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MessagingEntityNotFoundError"), "{stderr}");
}

#[tokio::test]
async fn the_python_sdk_receives_completes_and_abandons_with_peek_lock() {
    let server = start().await;
    let output = run_script(RECEIVE, server.port, EMULATOR_KEY, "q").await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("FIRST [('m0', 0, 1, 0), ('m1', 0, 2, 1)]"),
        "{stdout}"
    );
    assert!(stdout.contains("AGAIN [('m1', 1), ('m2', 0)]"), "{stdout}");
    assert!(stdout.contains("DONE"), "{stdout}");
    let left = server
        .broker
        .receive("q", false, ReceiveMode::ReceiveAndDelete, Duration::ZERO)
        .await
        .unwrap();
    assert!(left.is_none(), "every message was completed");
}

const ROUTING: &str = r#"
import json, os
from azure.servicebus import ServiceBusClient, ServiceBusMessage
out = {}
with ServiceBusClient.from_connection_string(os.environ["SB_CONNECTION"], retry_total=0) as client:
    with client.get_queue_sender("dedup") as sender:
        sender.send_messages(ServiceBusMessage("first", message_id="dup-1"))
        sender.send_messages(ServiceBusMessage("second", message_id="dup-1"))
        sender.send_messages([ServiceBusMessage("other", message_id="dup-2"), ServiceBusMessage("third", message_id="dup-1")])
    with client.get_topic_sender("orders") as sender:
        sender.send_messages([
            ServiceBusMessage(f"o-{i}", message_id=f"o-{i}", application_properties={"amount": amount, "region": region})
            for i, (amount, region) in enumerate([(150, "eu"), (50, "eu"), (500, "us"), (10, "us")], start=1)
        ])
    for sub in ["big", "eu"]:
        with client.get_subscription_receiver("orders", sub, max_wait_time=2) as r:
            got = r.receive_messages(max_message_count=10, max_wait_time=2)
            got += r.receive_messages(max_message_count=10, max_wait_time=1)
            out[sub] = [m.message_id for m in got]
            for m in got:
                r.complete_message(m)
print("RESULT", json.dumps(out))
"#;

#[tokio::test]
async fn the_python_sdk_meets_duplicate_detection_and_subscription_filters() {
    let server = start().await;
    let output = common::sdk::run_python(ROUTING, server.port, EMULATOR_KEY, &[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT line: {stdout}\n{stderr}"));
    let got: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        got["big"],
        serde_json::json!(["o-1", "o-3"]),
        "amount > 100"
    );
    assert_eq!(
        got["eu"],
        serde_json::json!(["o-1", "o-2"]),
        "region = 'eu'"
    );
    let stored: Vec<(Option<String>, Vec<u8>)> = server
        .broker
        .browse("dedup", false, 1, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.message.message_id, m.message.body))
        .collect();
    assert_eq!(
        stored,
        [
            (Some("dup-1".to_string()), b"first".to_vec()),
            (Some("dup-2".to_string()), b"other".to_vec()),
        ],
        "each message id stored once"
    );
}

const ANNOTATED: &str = r#"
import json, os
from azure.servicebus import ServiceBusClient
from azure.servicebus.amqp import AmqpAnnotatedMessage
def text(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, dict):
        return {text(k): text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [text(v) for v in value]
    return value
with ServiceBusClient.from_connection_string(os.environ["SB_CONNECTION"], retry_total=0) as client:
    with client.get_queue_sender(os.environ["SB_QUEUE"]) as sender:
        sender.send_messages(AmqpAnnotatedMessage(
            data_body=[b"aa", b"bb", b"cc"], application_properties={"kind": "data"},
            delivery_annotations={"delivery_key": "dv"}))
        sender.send_messages(AmqpAnnotatedMessage(
            sequence_body=[b"message", 123.456, True], footer={"footer_key": "footer_value"},
            properties={"subject": "sequence"}, application_properties={"kind": "sequence"}))
        sender.send_messages(AmqpAnnotatedMessage(
            value_body={b"key": [-123, b"data", False]}, header={"priority": 10},
            annotations={"annotation_key": "av"}, application_properties={"kind": "value"}))
    out = []
    with client.get_queue_receiver(os.environ["SB_QUEUE"], max_wait_time=5) as receiver:
        for m in receiver.receive_messages(max_message_count=3, max_wait_time=5):
            raw = m.raw_amqp_message
            body = raw.body if str(raw.body_type).endswith("VALUE") else list(raw.body)
            annotations = {text(k): text(v) for k, v in (raw.annotations or {}).items()
                           if not text(k).startswith("x-opt-")}
            out.append({
                "kind": text(raw.application_properties[b"kind"]),
                "body_type": str(raw.body_type).split(".")[-1],
                "body": text(body),
                "priority": raw.header.priority if raw.header else None,
                "annotations": annotations,
                "delivery_annotations": text(raw.delivery_annotations or {}),
                "footer": text(raw.footer or {}),
                "subject": m.subject,
            })
            receiver.complete_message(m)
print("RESULT", json.dumps(out))
"#;

#[tokio::test]
async fn the_python_sdk_gets_amqp_annotated_messages_back_as_it_sent_them() {
    let server = start().await;
    let output = run_script(ANNOTATED, server.port, EMULATOR_KEY, "q").await;
    let got = sdk::result_of(&output);
    assert_eq!(
        got,
        serde_json::json!([
            {"kind": "data", "body_type": "DATA", "body": ["aa", "bb", "cc"], "priority": null,
             "annotations": {}, "delivery_annotations": {"delivery_key": "dv"}, "footer": {},
             "subject": null},
            {"kind": "sequence", "body_type": "SEQUENCE", "body": [["message", 123.456, true]],
             "priority": null, "annotations": {}, "delivery_annotations": {},
             "footer": {"footer_key": "footer_value"}, "subject": "sequence"},
            {"kind": "value", "body_type": "VALUE", "body": {"key": [-123, "data", false]},
             "priority": 10, "annotations": {"annotation_key": "av"},
             "delivery_annotations": {}, "footer": {}, "subject": null},
        ])
    );
}

#[tokio::test]
async fn an_amqp_message_of_several_data_sections_reads_as_their_bytes_over_rest() {
    let server = start().await;
    let send = r#"
import os
from azure.servicebus import ServiceBusClient
from azure.servicebus.amqp import AmqpAnnotatedMessage
with ServiceBusClient.from_connection_string(os.environ["SB_CONNECTION"], retry_total=0) as client:
    with client.get_queue_sender(os.environ["SB_QUEUE"]) as sender:
        sender.send_messages(AmqpAnnotatedMessage(data_body=[b"aa", b"bb", b"cc"]))
print("RESULT", "{}")
"#;
    sdk::result_of(&run_script(send, server.port, EMULATOR_KEY, "q").await);
    let received = server
        .broker
        .receive(
            "q",
            false,
            ReceiveMode::ReceiveAndDelete,
            Duration::from_secs(5),
        )
        .await
        .unwrap()
        .expect("a message");
    assert_eq!(received.message.body, b"aabbcc");
}
