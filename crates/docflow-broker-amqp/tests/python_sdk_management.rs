//! Microsoft's Python SDK (`azure-servicebus` 7.14) against receive-and-delete links and the
//! `$management` node: peek, lock renewal, scheduling and cancelling, deferral (settled through
//! the SDK's management path), dead-lettering and the dead-letter queue, MaxDeliveryCount,
//! expiry, and every message property both ways. Each script prints one `RESULT` line of JSON
//! that the test checks, next to what the broker itself holds.

mod common;

use std::time::Duration;

use common::sdk::{result_of, run_python};
use common::{EMULATOR_KEY, start};
use docflow_broker::ReceiveMode;
use docflow_servicebus::message::PropertyValue;
use serde_json::{Value, json};

const PRELUDE: &str = r#"
import datetime, json, os, time
from azure.servicebus import (ServiceBusClient, ServiceBusMessage, ServiceBusReceiveMode,
                              ServiceBusSubQueue)
client = ServiceBusClient.from_connection_string(os.environ["SB_CONNECTION"], retry_total=0)
out = {}
def receive(receiver, n, wait=5):
    got = []
    deadline = time.time() + wait
    while len(got) < n and time.time() < deadline:
        got += receiver.receive_messages(max_message_count=n - len(got), max_wait_time=1)
    return got
def error_of(f):
    try:
        f()
        return None
    except Exception as e:
        return type(e).__name__
"#;

/// Runs `script` (after [`PRELUDE`]) against the broker on `port`; returns its `RESULT`.
async fn run(script: &str, port: u16) -> Value {
    let script = format!("{PRELUDE}\n{script}\nclient.close()\nprint('RESULT', json.dumps(out))");
    result_of(&run_python(&script, port, EMULATOR_KEY, &[]).await)
}

#[tokio::test]
async fn receive_and_delete_takes_messages_out_without_locks() {
    let server = start().await;
    let result = run(
        r#"
with client.get_queue_sender("q") as sender:
    sender.send_messages([ServiceBusMessage(f"m{i}") for i in range(3)])
with client.get_queue_receiver("q", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE) as r:
    got = receive(r, 3)
    out["bodies"] = [str(m) for m in got]
    out["tokens"] = [m.lock_token for m in got]
    out["counts"] = [m.delivery_count for m in got]
    out["more"] = len(r.receive_messages(max_message_count=1, max_wait_time=1))
"#,
        server.port,
    )
    .await;
    assert_eq!(
        result,
        json!({"bodies": ["m0", "m1", "m2"], "tokens": [null, null, null],
               "counts": [0, 0, 0], "more": 0})
    );
    let counts = server.broker.counts("q").await.unwrap();
    assert_eq!(
        (counts.active, counts.locked),
        (0, 0),
        "deleted, not locked"
    );
}

#[tokio::test]
async fn peek_browses_without_locking_and_renew_lock_extends_the_lock() {
    let server = start().await;
    let result = run(
        r#"
with client.get_queue_sender("q") as sender:
    sender.send_messages([ServiceBusMessage(f"p{i}") for i in range(3)])
with client.get_queue_receiver("q") as r:
    out["peeked"] = [[str(m), m.sequence_number, m.lock_token]
                     for m in r.peek_messages(max_message_count=10, sequence_number=1)]
    out["past_the_end"] = len(r.peek_messages(max_message_count=10, sequence_number=100))
    [m] = receive(r, 1)
    before = m.locked_until_utc
    time.sleep(1.2)
    after = r.renew_message_lock(m)
    out["renewed_by_ms"] = (after - before).total_seconds() * 1000
    out["same_as_message"] = after == m.locked_until_utc
    r.complete_message(m)
    out["left"] = [str(x) for x in r.peek_messages(max_message_count=10, sequence_number=1)]
"#,
        server.port,
    )
    .await;
    assert_eq!(
        result["peeked"],
        json!([["p0", 1, null], ["p1", 2, null], ["p2", 3, null]])
    );
    assert_eq!(result["past_the_end"], 0, "204 is an empty peek");
    assert!(
        result["renewed_by_ms"].as_f64().unwrap() >= 1000.0,
        "{result}"
    );
    assert_eq!(result["same_as_message"], true);
    assert_eq!(result["left"], json!(["p1", "p2"]));
}

#[tokio::test]
async fn scheduled_messages_arrive_on_time_and_cancelled_ones_never() {
    let server = start().await;
    let result = run(
        r#"
now = datetime.datetime.now(datetime.timezone.utc)
soon_at = now + datetime.timedelta(seconds=3)
with client.get_queue_sender("q") as sender:
    soon = sender.schedule_messages(ServiceBusMessage("soon"), soon_at)
    later = sender.schedule_messages([ServiceBusMessage("later1"), ServiceBusMessage("later2")],
                                     now + datetime.timedelta(hours=1))
    out["numbers"] = [len(soon), len(later)]
    sender.cancel_scheduled_messages(later)
    out["cancel_again"] = error_of(lambda: sender.cancel_scheduled_messages(later[0]))
with client.get_queue_receiver("q") as r:
    peeked = r.peek_messages(max_message_count=10, sequence_number=1)
    out["peeked"] = [[str(m), int(m.state)] for m in peeked]
    out["scheduled_for"] = [m.scheduled_enqueue_time_utc == soon_at.replace(microsecond=soon_at.microsecond // 1000 * 1000) for m in peeked]
    out["early"] = len(r.receive_messages(max_message_count=1, max_wait_time=1))
    got = receive(r, 1, wait=15)
    arrived = datetime.datetime.now(datetime.timezone.utc)
    out["got"] = [str(m) for m in got]
    out["late_by_ms"] = (arrived - soon_at).total_seconds() * 1000
    for m in got:
        r.complete_message(m)
    out["more"] = len(r.receive_messages(max_message_count=5, max_wait_time=1))
"#,
        server.port,
    )
    .await;
    assert_eq!(result["numbers"], json!([1, 2]));
    assert_eq!(result["cancel_again"], "MessageNotFoundError");
    assert_eq!(result["peeked"], json!([["soon", 2]]), "state 2: scheduled");
    assert_eq!(result["scheduled_for"], json!([true]));
    assert_eq!(result["early"], 0, "not before its time");
    assert_eq!(result["got"], json!(["soon"]));
    assert!(result["late_by_ms"].as_f64().unwrap() >= 0.0, "{result}");
    assert_eq!(result["more"], 0, "the cancelled messages never arrive");
    assert_eq!(server.broker.counts("q").await.unwrap().scheduled, 0);
}

#[tokio::test]
async fn deferred_messages_are_received_by_sequence_number_and_settled_through_management() {
    let server = start().await;
    let result = run(
        r#"
with client.get_queue_sender("q") as sender:
    sender.send_messages([ServiceBusMessage("d1"), ServiceBusMessage("d2")])
with client.get_queue_receiver("q") as r:
    got = receive(r, 2)
    seqs = [m.sequence_number for m in got]
    for m in got:
        r.defer_message(m)
    out["while_deferred"] = len(r.receive_messages(max_message_count=5, max_wait_time=1))
    deferred = r.receive_deferred_messages(seqs)
    out["deferred"] = [[str(m), int(m.state), m.lock_token is not None] for m in deferred]
    r.complete_message(deferred[0])
    r.dead_letter_message(deferred[1], reason="Unreadable", error_description="bad bytes")
    out["again"] = error_of(lambda: r.receive_deferred_messages([seqs[0]]))
with client.get_queue_receiver("q", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
    [dead] = receive(dlq, 1)
    out["dead"] = [str(dead), dead.dead_letter_reason, dead.dead_letter_error_description]
    dlq.complete_message(dead)
"#,
        server.port,
    )
    .await;
    assert_eq!(result["while_deferred"], 0);
    assert_eq!(
        result["deferred"],
        json!([["d1", 1, true], ["d2", 1, true]]),
        "state 1: deferred, each with its lock token"
    );
    assert_eq!(result["again"], "MessageNotFoundError");
    assert_eq!(result["dead"], json!(["d2", "Unreadable", "bad bytes"]));
    let counts = server.broker.counts("q").await.unwrap();
    assert_eq!(
        (counts.active, counts.deferred, counts.dead_lettered),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn dead_lettered_messages_are_read_and_peeked_from_the_dead_letter_queue() {
    let server = start().await;
    let result = run(
        r#"
with client.get_queue_sender("q") as sender:
    sender.send_messages(ServiceBusMessage("bad", application_properties={"k": "v"}))
with client.get_queue_receiver("q") as r:
    [m] = receive(r, 1)
    r.dead_letter_message(m, reason="Invalid", error_description="no schema")
    out["main_left"] = len(r.receive_messages(max_message_count=1, max_wait_time=1))
with client.get_queue_receiver("q", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
    out["peeked"] = [[str(p), p.dead_letter_reason] for p in dlq.peek_messages(max_message_count=5, sequence_number=1)]
    [d] = receive(dlq, 1)
    out["dead"] = [str(d), d.dead_letter_reason, d.dead_letter_error_description,
                   d.application_properties[b"k"].decode()]
    before = d.locked_until_utc
    time.sleep(1.1)
    out["renewed"] = dlq.renew_message_lock(d) > before
    dlq.complete_message(d)
"#,
        server.port,
    )
    .await;
    assert_eq!(result["main_left"], 0);
    assert_eq!(result["peeked"], json!([["bad", "Invalid"]]));
    assert_eq!(result["dead"], json!(["bad", "Invalid", "no schema", "v"]));
    assert_eq!(result["renewed"], true);
    assert_eq!(server.broker.counts("q").await.unwrap().dead_lettered, 0);
}

#[tokio::test]
async fn abandoning_up_to_max_delivery_count_dead_letters_the_message() {
    let server = start().await;
    let result = run(
        r#"
with client.get_queue_sender("retries") as sender:
    sender.send_messages(ServiceBusMessage("poison"))
with client.get_queue_receiver("retries") as r:
    counts = []
    for _ in range(3):
        [m] = receive(r, 1)
        counts.append(m.delivery_count)
        r.abandon_message(m)
    out["counts"] = counts
    out["left"] = len(r.receive_messages(max_message_count=1, max_wait_time=1))
with client.get_queue_receiver("retries", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
    [d] = receive(dlq, 1)
    out["dead"] = [str(d), d.dead_letter_reason, d.delivery_count]
    dlq.complete_message(d)
"#,
        server.port,
    )
    .await;
    assert_eq!(result["counts"], json!([0, 1, 2]));
    assert_eq!(result["left"], 0);
    assert_eq!(result["dead"][0], "poison");
    assert_eq!(result["dead"][1], "MaxDeliveryCountExceeded");
}

#[tokio::test]
async fn an_expired_message_is_dead_lettered_where_the_queue_says_so() {
    let server = start().await;
    let result = run(
        r#"
with client.get_queue_sender("retries") as sender:
    sender.send_messages(ServiceBusMessage("stale", time_to_live=datetime.timedelta(seconds=1)))
time.sleep(1.5)
with client.get_queue_receiver("retries") as r:
    out["received"] = len(r.receive_messages(max_message_count=1, max_wait_time=1))
with client.get_queue_receiver("retries", sub_queue=ServiceBusSubQueue.DEAD_LETTER) as dlq:
    [d] = receive(dlq, 1)
    out["dead"] = [str(d), d.dead_letter_reason]
    dlq.complete_message(d)
"#,
        server.port,
    )
    .await;
    assert_eq!(result["received"], 0, "an expired message is not delivered");
    assert_eq!(result["dead"], json!(["stale", "TTLExpiredException"]));
}

#[tokio::test]
async fn message_properties_round_trip_with_their_types() {
    let server = start().await;
    let result = run(
        r#"
utc = datetime.timezone.utc
sent = ServiceBusMessage("body", message_id="mid-1", correlation_id="cid-1",
    content_type="application/json", subject="subj", to="dest", reply_to="replies",
    time_to_live=datetime.timedelta(minutes=5),
    application_properties={"s": "text", "i": 42, "neg": -7, "f": 1.5, "b": True,
                            "dt": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=utc)})
with client.get_queue_sender("q") as sender:
    sender.send_messages(sent)
with client.get_queue_receiver("q", receive_mode=ServiceBusReceiveMode.RECEIVE_AND_DELETE) as r:
    [m] = receive(r, 1)
    out["fields"] = [str(m), m.message_id, m.correlation_id, m.content_type, m.subject, m.to,
                     m.reply_to, m.time_to_live.total_seconds()]
    props = {}
    for k, v in m.application_properties.items():
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, datetime.datetime):
            v = v.isoformat()
        props[k.decode()] = [type(v).__name__, v]
    out["props"] = props
    out["expires_after_enqueue_s"] = (m.expires_at_utc - m.enqueued_time_utc).total_seconds()
"#,
        server.port,
    )
    .await;
    assert_eq!(
        result["fields"],
        json!([
            "body",
            "mid-1",
            "cid-1",
            "application/json",
            "subj",
            "dest",
            "replies",
            300.0
        ])
    );
    let props = &result["props"];
    assert_eq!(props["s"], json!(["str", "text"]));
    assert_eq!(props["i"], json!(["int", 42]));
    assert_eq!(props["neg"], json!(["int", -7]));
    assert_eq!(props["f"], json!(["float", 1.5]));
    assert_eq!(props["b"], json!(["bool", true]));
    // An AMQP timestamp both ways; Python's AMQP stack reads it as milliseconds.
    assert_eq!(props["dt"], json!(["int", 1_704_164_645_000_i64]));
    assert_eq!(result["expires_after_enqueue_s"], 300.0);
    // What the broker stored in between, read back through its own API.
    let result = run(
        r#"
with client.get_queue_sender("q") as sender:
    sender.send_messages(ServiceBusMessage("again", application_properties={"i": 42, "f": 1.5, "b": False}))
"#,
        server.port,
    )
    .await;
    assert_eq!(result, json!({}));
    let stored = server
        .broker
        .receive("q", false, ReceiveMode::ReceiveAndDelete, Duration::ZERO)
        .await
        .unwrap()
        .expect("the message");
    assert_eq!(stored.message.property("i"), Some(&PropertyValue::Int(42)));
    assert_eq!(
        stored.message.property("f"),
        Some(&PropertyValue::Double(1.5))
    );
    assert_eq!(
        stored.message.property("b"),
        Some(&PropertyValue::Bool(false))
    );
}
