//! The broker's AMQP front end as users meet it: `docflow broker` and `docflow dev` serve
//! Microsoft's Python SDK (`azure-servicebus`, installed by `scripts/install-test-tools.sh`)
//! on the port and connection string they print, and what the SDK was told was sent survives
//! `kill -9` of the broker.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{Running, free_port, start_dev};

/// Runs a Python script with `SB_CONNECTION` set; returns its stdout, asserting success.
fn run_python(script: &str, connection: &str) -> String {
    let output = Command::new(common::servicebus_sdk_python())
        .args(["-c", script])
        .env("SB_CONNECTION", connection)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Starts `docflow broker` with an extra AMQP port; returns it with the connection string it
/// printed.
fn start_broker(data: &std::path::Path, port: u16, amqp_port: u16) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_docflow"))
        .args(["broker", "--port", &port.to_string()])
        .args(["--amqp-port", &amqp_port.to_string()])
        .arg("--config")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/servicebus.config.json"
        ))
        .arg("--data-dir")
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().to_string())
}

const SEND: &str = r#"
import os
from azure.servicebus import ServiceBusClient, ServiceBusMessage
with ServiceBusClient.from_connection_string(os.environ["SB_CONNECTION"], retry_total=0) as client:
    with client.get_queue_sender("audit") as sender:
        batch = sender.create_message_batch()
        for i in range(50):
            batch.add_message(ServiceBusMessage(f"m{i}", message_id=f"id-{i}", application_properties={"i": i}))
        sender.send_messages(batch)
print("SENT")
"#;

const RECEIVE_ALL: &str = r#"
import os
from azure.servicebus import ServiceBusClient
got = []
with ServiceBusClient.from_connection_string(os.environ["SB_CONNECTION"], retry_total=0) as client:
    with client.get_queue_receiver("audit", max_wait_time=3) as receiver:
        while True:
            batch = receiver.receive_messages(max_message_count=20, max_wait_time=3)
            if not batch:
                break
            for m in batch:
                got.append((m.message_id, str(m), m.application_properties[b"i"]))
                receiver.complete_message(m)
print("GOT", len(got), sorted(got, key=lambda g: g[2]) == [(f"id-{i}", f"m{i}", i) for i in range(50)])
"#;

#[test]
fn docflow_broker_serves_the_python_sdk_and_keeps_what_it_accepted_through_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (port, amqp_port) = (free_port(), free_port());
    let (mut broker, connection) = start_broker(dir.path(), port, amqp_port);
    assert_eq!(
        connection,
        format!(
            "Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
        ),
        "the printed connection string"
    );
    assert!(run_python(SEND, &connection).contains("SENT"));
    broker.kill().unwrap();
    broker.wait().unwrap();

    let (broker, _) = start_broker(dir.path(), port, amqp_port);
    let _broker = Running(broker);
    let extra = connection.replace(&format!(":{port};"), &format!(":{amqp_port};"));
    let stdout = run_python(RECEIVE_ALL, &extra);
    assert!(stdout.contains("GOT 50 True"), "{stdout}");
}

const POISON_TO_DLQ: &str = r#"
import os
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue
with ServiceBusClient.from_connection_string(os.environ["SB_CONNECTION"], retry_total=0) as client:
    with client.get_queue_sender("ai-tasks") as sender:
        sender.send_messages(ServiceBusMessage("this is not a task", message_id="poison-1"))
    with client.get_queue_receiver("ai-tasks", sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=60) as dlq:
        for m in dlq.receive_messages(max_message_count=1, max_wait_time=60):
            print("DEAD", m.message_id, m.dead_letter_reason)
            dlq.complete_message(m)
"#;

#[test]
fn a_users_own_service_reaches_the_running_apps_queues_with_the_sdk() {
    let data = tempfile::tempdir().unwrap();
    let (http_port, broker_port) = (free_port(), free_port());
    let _dev = start_dev(data.path(), http_port, broker_port, Stdio::null());
    let connection = format!(
        "Endpoint=sb://127.0.0.1:{broker_port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
    );
    // The app's ProcessDocument function takes the message, finds it is not a task and
    // dead-letters it with a reason, which the user's service reads from the DLQ.
    let stdout = run_python(POISON_TO_DLQ, &connection);
    assert!(stdout.contains("DEAD poison-1 "), "{stdout}");
}
