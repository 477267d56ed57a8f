//! Microsoft's Python SDK (`azure-servicebus` 7.14) against session receivers: the next
//! available session, FIFO within a session, session state, session lock renewal, a named
//! session already held by another receiver, peeking one session, and no session left.
//! The script prints one `RESULT` line of JSON that the test checks.

mod common;

use common::sdk::{result_of, run_python};
use common::{EMULATOR_KEY, start};
use serde_json::Value;

const SESSIONS: &str = r#"
import json, os, time
from azure.servicebus import ServiceBusClient, ServiceBusMessage, NEXT_AVAILABLE_SESSION
from azure.servicebus.exceptions import SessionCannotBeLockedError, OperationTimeoutError
out = {}
def receive(receiver, n, wait=5):
    got = []
    deadline = time.time() + wait
    while len(got) < n and time.time() < deadline:
        got += receiver.receive_messages(max_message_count=n - len(got), max_wait_time=1)
    return got
with ServiceBusClient.from_connection_string(os.environ["SB_CONNECTION"], retry_total=0) as client:
    with client.get_queue_sender("sessions") as sender:
        sender.send_messages([ServiceBusMessage(f"a{i}", session_id="A") for i in range(3)])
        sender.send_messages([ServiceBusMessage(f"b{i}", session_id="B") for i in range(2)])
    with client.get_queue_receiver("sessions", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=5) as r:
        got = receive(r, 3)
        out["next"] = r.session.session_id
        out["fifo"] = [str(m) for m in got]
        out["message_session"] = [m.session_id for m in got]
        for m in got:
            r.complete_message(m)
        r.session.set_state(b"step-1")
        out["state"] = r.session.get_state().decode()
        before = r.session.locked_until_utc
        time.sleep(0.1)
        r.session.renew_lock()
        out["renewed"] = r.session.locked_until_utc > before
        out["lock_in_future"] = r.session.locked_until_utc.timestamp() > time.time()
        def second():
            with client.get_queue_receiver("sessions", session_id="A", max_wait_time=2) as other:
                other.receive_messages(max_wait_time=1)
        try:
            second()
            out["held_elsewhere"] = None
        except SessionCannotBeLockedError as e:
            out["held_elsewhere"] = type(e).__name__
    with client.get_queue_receiver("sessions", session_id="A", max_wait_time=3) as r:
        receive(r, 1, wait=1)
        out["state_kept"] = r.session.get_state().decode()
        r.session.set_state(None)
        out["state_cleared"] = r.session.get_state()
    with client.get_queue_receiver("sessions", session_id="B", max_wait_time=5) as r:
        out["peek"] = [str(m) for m in r.peek_messages(max_message_count=5)]
        got = receive(r, 2)
        out["b"] = [str(m) for m in got]
        r.abandon_message(got[0])
        again = receive(r, 1)
        out["b_again"] = [(str(m), m.delivery_count) for m in again]
        for m in again + got[1:]:
            r.complete_message(m)
    try:
        with client.get_queue_receiver("sessions", session_id=NEXT_AVAILABLE_SESSION, max_wait_time=2) as r:
            r.receive_messages(max_wait_time=1)
        out["none_left"] = None
    except OperationTimeoutError as e:
        out["none_left"] = type(e).__name__
print("RESULT", json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_receives_sessions_in_order_with_state_and_locks() {
    let server = start().await;
    let got = result_of(&run_python(SESSIONS, server.port, EMULATOR_KEY, &[]).await);
    assert_eq!(
        got["next"], "A",
        "the session with the oldest message first"
    );
    assert_eq!(got["fifo"], serde_json::json!(["a0", "a1", "a2"]));
    assert_eq!(got["message_session"], serde_json::json!(["A", "A", "A"]));
    assert_eq!(got["state"], "step-1");
    assert_eq!(got["renewed"], true);
    assert_eq!(got["lock_in_future"], true);
    assert_eq!(got["held_elsewhere"], "SessionCannotBeLockedError");
    assert_eq!(got["state_kept"], "step-1", "state outlives the receiver");
    assert_eq!(got["state_cleared"], Value::Null);
    assert_eq!(got["peek"], serde_json::json!(["b0", "b1"]));
    assert_eq!(got["b"], serde_json::json!(["b0", "b1"]));
    assert_eq!(got["b_again"], serde_json::json!([["b0", 1]]));
    assert_eq!(got["none_left"], "OperationTimeoutError");
    let counts = server.broker.counts("sessions").await.unwrap();
    assert_eq!(counts.active, 0, "every message was completed");
}
