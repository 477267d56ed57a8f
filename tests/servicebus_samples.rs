//! Microsoft's own Service Bus samples, run unchanged against `docflow broker`: the
//! `samples/sync_samples` and `samples/async_samples` of the `azure-servicebus` 7.14.2 sdist,
//! which `scripts/install-servicebus-sdks.sh` unpacks (pinned by SHA-256) into
//! `.tools/servicebus-sdk-samples`. Each test starts its own broker (`--port 0`, the topology of
//! `tests/fixtures/servicebus-samples/config.json`: the queue `samples-queue`, the session queue
//! `samples-session-queue`, the topic `samples-topic` with `samples-subscription`, in a
//! temporary data directory), runs samples with the SDK's venv Python and the environment they
//! read (`SERVICEBUS_CONNECTION_STR`, `SERVICEBUS_FULLY_QUALIFIED_NAMESPACE`,
//! `SERVICEBUS_QUEUE_NAME`, `SERVICEBUS_SESSION_QUEUE_NAME`, `SERVICEBUS_SESSION_ID`,
//! `SERVICEBUS_TOPIC_NAME`, `SERVICEBUS_SUBSCRIPTION_NAME`, `SERVICEBUS_SAS_POLICY`,
//! `SERVICEBUS_SAS_KEY`), and asserts each exits 0 within its timeout and printed what it
//! should; where a sample's batches may split differently, what arrived is checked by draining
//! the entity with the receive samples themselves. A sample gets 60 s (150 s for
//! `session_pool_receive`, which sends 200 messages one by one, and `sample_code_servicebus`,
//! whose last receive waits for a message it left locked: the queue's lock is 10 s for that);
//! one that hangs is killed and its output, and the broker's stderr, shown.
//!
//! Most 7.14.2 samples build `ServiceBusClient(SERVICEBUS_FULLY_QUALIFIED_NAMESPACE,
//! DefaultAzureCredential())` instead of reading a connection string. The broker, like
//! Microsoft's emulator, has no Entra ID and serves plain TCP, so the samples run with
//! `tests/fixtures/servicebus-samples/python` first on `PYTHONPATH`, which holds two stand-ins
//! and leaves the samples' files and the SDK's untouched: `azure.identity` (and
//! `azure.identity.aio`) whose `DefaultAzureCredential` is the SDK's `AzureNamedKeyCredential`
//! with the emulator's SAS key (so the SDK signs SAS tokens and puts them on `$cbs`, exactly as
//! for a connection string), and a `sitecustomize` that makes `use_tls` default to false, which
//! is what `UseDevelopmentEmulator=true` does for a connection string. The namespace is
//! `127.0.0.1:PORT`.
//!
//! Run and passing (sync and async unless noted): `authenticate_client_connstr`,
//! `authenticate_using_azure_named_key_credential`, `authenticate_using_azure_sas_credential`,
//! `generate_sas_token_and_authenticate_client` (sync only), `send_queue`, `receive_peek`,
//! `receive_queue`, `send_topic`, `receive_subscription`, `receive_deadlettered_messages`,
//! `receive_deferred_message_queue`, `deadletter_messages_and_correct` (abandoned up to
//! MaxDeliveryCount 10, dead-lettered with a reason, fixed and resent),
//! `schedule_messages_and_cancellation`, `schedule_topic_messages_and_cancellation` (a topic
//! numbers each message once; cancelling through the topic cancels it in every subscription),
//! `send_and_receive_amqp_annotated_message` (data, sequence and value bodies come back as
//! sent), `session_send_receive` (session state, session lock renewal), `session_pool_receive`
//! (next available session, `AutoLockRenewer` on sessions),
//! `sample_code_servicebus` (every receiver and settlement operation, deferral, dead-lettering,
//! message lock renewal, scheduling, session operations).
//!
//! Skipped:
//! - `auto_lock_renew`: sleeps 100 s, 100 s and 80 s (almost five minutes) to outlast locks.
//! - `receive_iterator_queue` and `failure_and_recovery`: iterate a receiver without
//!   `max_wait_time`, so they never return once the queue is empty (they are meant to be
//!   stopped by hand). Receiver iteration is covered by `sample_code_servicebus` and
//!   `session_pool_receive`.
//! - `mgmt_queue`, `mgmt_topic`, `mgmt_subscription`, `mgmt_rule` and
//!   `topic_subscription_with_rule_operations`: `ServiceBusAdministrationClient`, which builds
//!   `https://` URLs even with `UseDevelopmentEmulator=true`, while the broker serves the ATOM
//!   management API's reads over plain HTTP only (the SDK's models are run on those answers in
//!   `tests/servicebus_sdk_admin.rs`); and these samples create and delete entities, which
//!   the broker takes from Config.json alone.
//! - `client_identity_authentication`: `EnvironmentCredential`, a Microsoft Entra service
//!   principal.
//! - `proxy`: needs an HTTP proxy on 127.0.0.1:8899 and AMQP over WebSockets.
//! - `connection_to_custom_endpoint_address`: placeholders for a custom endpoint and a CA bundle
//!   (TLS) in its source.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const QUEUE: &str = "samples-queue";
const SESSION_QUEUE: &str = "samples-session-queue";
const SESSION_ID: &str = "sample-session";
const TOPIC: &str = "samples-topic";
const SUBSCRIPTION: &str = "samples-subscription";
/// What an ordinary sample gets to finish.
const TIMEOUT: Duration = Duration::from_secs(60);
/// For the samples that send hundreds of messages or wait out locks.
const LONG_TIMEOUT: Duration = Duration::from_secs(150);

fn samples_dir() -> PathBuf {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/.tools/servicebus-sdk-samples"
    ));
    assert!(
        dir.join("sync_samples/send_queue.py").exists(),
        "{} is missing: run bash scripts/install-test-tools.sh (it unpacks the SDK's samples)",
        dir.display()
    );
    dir
}

/// `docflow broker` on a free port with the samples' topology; killed when dropped.
struct Broker {
    child: Child,
    port: u16,
    connection: String,
    data: tempfile::TempDir,
}

impl Broker {
    fn start() -> Broker {
        let data = tempfile::tempdir().unwrap();
        let stderr = std::fs::File::create(data.path().join("broker.stderr")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_docflow"))
            .args(["broker", "--port", "0", "--config"])
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/servicebus-samples/config.json"
            ))
            .arg("--data-dir")
            .arg(data.path().join("store"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // Whatever else the broker prints is drained so it never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let connection = line.trim().to_string();
        let port = connection
            .strip_prefix("Endpoint=sb://127.0.0.1:")
            .and_then(|rest| rest.split(';').next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("the broker printed {line:?}, not its connection string"));
        assert!(
            connection.ends_with(
                ";SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
            ),
            "{connection}"
        );
        Broker {
            child,
            port,
            connection,
            data,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.data.path().join("broker.stderr")).unwrap_or_default()
    }

    /// Runs `sync_samples/<name>.py` or `async_samples/<name>.py` as it is; returns its stdout
    /// after asserting it exited 0 within `timeout`.
    fn run_for(&self, sample: &str, timeout: Duration) -> String {
        let folder = if sample.ends_with("_async") {
            "async_samples"
        } else {
            "sync_samples"
        };
        let script = samples_dir().join(folder).join(format!("{sample}.py"));
        assert!(script.exists(), "{} is missing", script.display());
        let out_dir = tempfile::tempdir().unwrap();
        let (out_path, err_path) = (out_dir.path().join("out"), out_dir.path().join("err"));
        let mut child = Command::new(common::servicebus_sdk_python())
            .arg(&script)
            .current_dir(script.parent().unwrap())
            .env(
                "PYTHONPATH",
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/servicebus-samples/python"
                ),
            )
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("SERVICEBUS_CONNECTION_STR", &self.connection)
            .env(
                "SERVICEBUS_FULLY_QUALIFIED_NAMESPACE",
                format!("127.0.0.1:{}", self.port),
            )
            .env("SERVICEBUS_QUEUE_NAME", QUEUE)
            .env("SERVICEBUS_SESSION_QUEUE_NAME", SESSION_QUEUE)
            .env("SERVICEBUS_SESSION_ID", SESSION_ID)
            .env("SERVICEBUS_TOPIC_NAME", TOPIC)
            .env("SERVICEBUS_SUBSCRIPTION_NAME", SUBSCRIPTION)
            .env("SERVICEBUS_SAS_POLICY", "RootManageSharedAccessKey")
            .env("SERVICEBUS_SAS_KEY", "SAS_KEY_VALUE")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                child.wait().unwrap();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = std::fs::read_to_string(&out_path).unwrap();
        let stderr = std::fs::read_to_string(&err_path).unwrap();
        let context = || {
            format!(
                "--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- broker stderr\n{}",
                self.stderr()
            )
        };
        match status {
            None => panic!("{sample} did not finish in {timeout:?}\n{}", context()),
            Some(status) => assert!(
                status.success(),
                "{sample} exited with {status}\n{}",
                context()
            ),
        }
        stdout
    }

    fn run(&self, sample: &str) -> String {
        self.run_for(sample, TIMEOUT)
    }

    /// Runs a receive sample (which prints each message's body, then `Receive is done.` when
    /// sync) until a run receives nothing; returns every body in the order received.
    fn drain(&self, sample: &str) -> Vec<String> {
        let mut bodies = Vec::new();
        for _ in 0..10 {
            let stdout = self.run(sample);
            let got: Vec<String> = lines(&stdout)
                .into_iter()
                .filter(|l| l != "Receive is done.")
                .collect();
            if got.is_empty() {
                return bodies;
            }
            bodies.extend(got);
        }
        panic!("{sample} kept receiving: {bodies:?}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn count(stdout: &str, line: &str) -> usize {
    lines(stdout).iter().filter(|l| *l == line).count()
}

/// `n` copies of `body`.
fn times(body: &str, n: usize) -> Vec<String> {
    vec![body.to_string(); n]
}

/// What `send_queue` and `send_topic` (and their async versions) send, in order.
fn sent_by_send_sample(batch_body: &str) -> Vec<String> {
    [
        times("Single Message", 1),
        times("Message in list", 10),
        times(batch_body, 10),
    ]
    .concat()
}

#[test]
fn the_authentication_samples_connect_with_the_connection_string_and_sas_credentials() {
    let broker = Broker::start();
    // These build a client without connecting: from the connection string, or with a SAS
    // token the sample signs itself.
    broker.run("authenticate_client_connstr");
    broker.run("authenticate_client_connstr_async");
    broker.run("generate_sas_token_and_authenticate_client");
    // These each send "hello" with an AzureNamedKeyCredential or an AzureSasCredential.
    for sample in [
        "authenticate_using_azure_named_key_credential",
        "authenticate_using_azure_named_key_credential_async",
        "authenticate_using_azure_sas_credential",
        "authenticate_using_azure_sas_credential_async",
    ] {
        assert_eq!(broker.run(sample), "", "{sample} prints nothing");
    }
    assert_eq!(broker.drain("receive_queue"), times("hello", 4));
}

fn send_peek_receive(suffix: &str) {
    let broker = Broker::start();
    let sample = |name: &str| format!("{name}{suffix}");
    let stdout = broker.run(&sample("send_queue"));
    assert_eq!(lines(&stdout), ["Send message is done."]);
    let peeked = broker.run(&sample("receive_peek"));
    assert_eq!(
        lines(&peeked)
            .into_iter()
            .filter(|l| l != "Receive is done.")
            .collect::<Vec<_>>(),
        ["Single Message", "Message in list"],
        "peek_messages(max_message_count=2) from the start"
    );
    // Peeking took nothing: every message arrives, in the order sent.
    assert_eq!(
        broker.drain(&sample("receive_queue")),
        sent_by_send_sample("Message inside a ServiceBusMessageBatch")
    );
    let after = broker.run(&sample("receive_peek"));
    assert!(
        !after.contains("Message"),
        "completed messages are gone: {after}"
    );
}

#[test]
fn send_queue_then_receive_peek_and_receive_queue() {
    send_peek_receive("");
}

#[test]
fn send_queue_then_receive_peek_and_receive_queue_async() {
    send_peek_receive("_async");
}

#[test]
fn send_topic_then_receive_subscription() {
    let broker = Broker::start();
    assert_eq!(lines(&broker.run("send_topic")), ["Send message is done."]);
    assert_eq!(
        broker.drain("receive_subscription"),
        sent_by_send_sample("Message inside ServiceBusMessageBatch")
    );
    // The async sample defines send_a_list_of_messages but does not call it.
    assert_eq!(
        lines(&broker.run("send_topic_async")),
        ["Send message is done."]
    );
    let batch = times("Message inside a ServiceBusMessageBatch", 10);
    assert_eq!(
        broker.drain("receive_subscription_async"),
        [times("Single Message", 1), batch].concat()
    );
}

fn dead_letter_and_defer(suffix: &str) {
    let broker = Broker::start();
    let stdout = broker.run(&format!("receive_deadlettered_messages{suffix}"));
    let lines = lines(&stdout);
    let split = lines
        .iter()
        .position(|l| l == "receiving deadlettered messages")
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(lines[0], "dead lettering messages", "{stdout}");
    let body = "Message to be deadlettered";
    let dead_lettered = lines[..split].iter().filter(|l| *l == body).count();
    let from_dlq = lines[split..].iter().filter(|l| *l == body).count();
    assert!(dead_lettered > 0, "{stdout}");
    assert_eq!(
        dead_lettered, from_dlq,
        "every message dead-lettered is read back from the dead-letter queue: {stdout}"
    );

    let stdout = broker.run(&format!("receive_deferred_message_queue{suffix}"));
    let deferred = count(&stdout, "Deferring msg: Message to be deferred");
    assert!(deferred > 0, "{stdout}");
    assert_eq!(
        count(&stdout, "Completing deferred msg: Message to be deferred"),
        deferred,
        "every deferred message is received by its sequence number: {stdout}"
    );
    assert!(stdout.contains("Receive is done."), "{stdout}");
    // What the two samples left (what their batches did not take) is all there is.
    let left = broker.drain(&format!("receive_queue{suffix}"));
    assert!(
        left.iter()
            .all(|b| b == "Message to be deadlettered" || b == "Message to be deferred"),
        "{left:?}"
    );
}

#[test]
fn receive_deadlettered_messages_and_receive_deferred_message_queue() {
    dead_letter_and_defer("");
}

#[test]
fn receive_deadlettered_messages_and_receive_deferred_message_queue_async() {
    dead_letter_and_defer("_async");
}

fn deadletter_and_correct(sample: &str) {
    let broker = Broker::start();
    let stdout = broker.run(sample);
    let lines = lines(&stdout);
    // One message abandoned until MaxDeliveryCount (10) moves it to the dead-letter queue.
    let mut expected: Vec<String> = vec!["Messages sent".into()];
    expected.extend((0..10).map(|n| format!("Message delivery_count: {n}")));
    expected.extend([
        "Deadletter message:".into(),
        "Message to be deadlettered number: 0".into(),
        "Messages sent".into(),
    ]);
    assert_eq!(lines[..expected.len()], expected[..], "{stdout}");
    // Then the "Bad" (even) ones are dead-lettered with a reason, fixed and resent.
    let fixing: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix("Fixing message: Body=b'Message to be deadlettered number: ")
        })
        .map(|rest| rest.replace("', Subject=Bad", ""))
        .collect();
    let fixed: Vec<String> = lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix("Received fixed message: Body=b'Message to be deadlettered number: ")
        })
        .map(|rest| rest.replace("', Subject=Good", ""))
        .collect();
    assert!(!fixing.is_empty(), "{stdout}");
    assert!(
        fixing
            .iter()
            .all(|n| n.parse::<u32>().is_ok_and(|n| n % 2 == 0)),
        "only the Bad (even) messages were dead-lettered: {stdout}"
    );
    assert_eq!(fixing, fixed, "{stdout}");
    assert!(lines.contains(&"Resending fixed messages".to_string()));
}

#[test]
fn deadletter_messages_and_correct() {
    deadletter_and_correct("deadletter_messages_and_correct");
}

#[test]
fn deadletter_messages_and_correct_async() {
    deadletter_and_correct("deadletter_messages_and_correct_async");
}

#[test]
fn schedule_messages_and_cancellation() {
    let broker = Broker::start();
    for sample in [
        "schedule_messages_and_cancellation",
        "schedule_messages_and_cancellation_async",
    ] {
        let stdout = broker.run(sample);
        let lines = lines(&stdout);
        assert_eq!(lines.len(), 3, "{stdout}");
        assert!(
            lines[0].starts_with("Single message is scheduled and sequence number is ["),
            "{stdout}"
        );
        assert!(
            lines[1].starts_with("Multiple messages are scheduled and sequence numbers are ["),
            "{stdout}"
        );
        assert_eq!(lines[2], "All scheduled messages are cancelled.");
    }
    // Peeking shows scheduled messages: none is left.
    let peeked = broker.run("receive_peek");
    assert_eq!(lines(&peeked), ["Receive is done."], "{peeked}");
}

#[test]
fn send_and_receive_amqp_annotated_message() {
    let broker = Broker::start();
    for sample in [
        "send_and_receive_amqp_annotated_message",
        "send_and_receive_amqp_annotated_message_async",
    ] {
        let stdout = broker.run(sample);
        assert_eq!(
            lines(&stdout),
            [
                "Message of data body sent.",
                "Message of sequence body sent.",
                "Message of value body sent.",
                "Message of data body received. Body is:",
                "b'aa'",
                "b'bb'",
                "b'cc'",
                "Message of sequence body received. Body is:",
                "[b'message', 123.456, True]",
                "Message of value body received. Body is:",
                "{b'key': [-123, b'data', False]}",
            ],
            "{stdout}"
        );
    }
}

#[test]
fn schedule_topic_messages_and_cancellation() {
    let broker = Broker::start();
    // The topic numbers its messages from 1, each once: the numbers the samples print are the
    // ones every subscription holds, and cancelling one through the topic sender cancels it
    // there (an unknown number would fail the sample with MessageNotFoundError).
    let mut next = 1;
    for sample in [
        "schedule_topic_messages_and_cancellation",
        "schedule_topic_messages_and_cancellation_async",
    ] {
        let stdout = broker.run(sample);
        let numbers = |from: i64, n: i64| {
            let list: Vec<String> = (from..from + n).map(|seq| seq.to_string()).collect();
            format!("[{}]", list.join(", "))
        };
        assert_eq!(
            lines(&stdout),
            [
                format!(
                    "Single message is scheduled and sequence number is {}",
                    numbers(next, 1)
                ),
                format!(
                    "Multiple messages are scheduled and sequence numbers are {}",
                    numbers(next + 1, 10)
                ),
                "All scheduled messages are cancelled.".to_string(),
            ],
            "{stdout}"
        );
        next += 11;
    }
}

fn session_send_receive(sample: &str) {
    let broker = Broker::start();
    let stdout = broker.run(sample);
    let lines = lines(&stdout);
    assert_eq!(
        lines[..3],
        [
            "Send message is done.",
            "Session state: b'START'",
            "Single session message"
        ],
        "{stdout}"
    );
    let received = &lines[2..lines.len() - 2];
    assert!(
        received.len() <= 10 && received[1..].iter().all(|l| l == "Session Message in list"),
        "{stdout}"
    );
    assert_eq!(
        lines[lines.len() - 2..],
        ["Session state: b'END'", "Receive is done."],
        "{stdout}"
    );
}

#[test]
fn session_send_receive_sync() {
    session_send_receive("session_send_receive");
}

#[test]
fn session_send_receive_async() {
    session_send_receive("session_send_receive_async");
}

#[test]
fn session_pool_receive() {
    let broker = Broker::start();
    // Ten sessions of 20 messages, read by five threads taking the next available session.
    let stdout = broker.run_for("session_pool_receive", LONG_TIMEOUT);
    // (Its threads' prints interleave, so only the total it counted is checked.)
    assert!(
        stdout.contains("Received total 200 messages across 10 sessions."),
        "{stdout}"
    );
}

#[test]
fn session_pool_receive_async() {
    let broker = Broker::start();
    // Five sessions of 20 messages and a "shutdown", read by five tasks.
    let stdout = broker.run_for("session_pool_receive_async", LONG_TIMEOUT);
    let messages = lines(&stdout)
        .into_iter()
        .filter(|l| l.starts_with("Message: Sample message no. "))
        .count();
    assert_eq!(messages, 100, "{stdout}");
    assert_eq!(count(&stdout, "Message: shutdown"), 5, "{stdout}");
}

fn sample_code(sample: &str) {
    let broker = Broker::start();
    let stdout = broker.run_for(sample, LONG_TIMEOUT);
    let lines = lines(&stdout);
    assert!(count(&stdout, "Hello World") >= 2, "{stdout}");
    if !sample.ends_with("_async") {
        // Only the sync sample prints a received message's properties.
        assert!(
            lines.contains(&"Receiving: Hello World".to_string())
                && lines.contains(&"Delivery count: 0".to_string())
                && lines.contains(&"Application Properties: None".to_string()),
            "{stdout}"
        );
    }
    // The last thing it does: a session receiver with an AutoLockRenewer gets the message
    // sent to the session.
    assert_eq!(lines.last().map(String::as_str), Some("msg"), "{stdout}");
}

#[test]
fn sample_code_servicebus() {
    sample_code("sample_code_servicebus");
}

#[test]
fn sample_code_servicebus_async() {
    sample_code("sample_code_servicebus_async");
}
