//! `docflow dlq` end to end: the real binary against the embedded broker over REST.

mod common;

use std::time::Duration;

use common::broker::Harness;
use docflow::broker::ReceiveMode;
use docflow::servicebus::message::{Message, PropertyValue};
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn dlq(connection: Option<&str>, args: &[&str]) -> Run {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_docflow"));
    let cwd = tempfile::tempdir().unwrap();
    command
        .current_dir(cwd.path())
        .env_remove("DOCFLOW_SERVICEBUS_CONNECTION")
        .env_remove("ServiceBusConnection");
    command.arg("dlq");
    if let Some(c) = connection {
        command.args(["--connection", c]);
    }
    command.args(args).stdin(std::process::Stdio::null());
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    drop(cwd);
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Dead-letters messages with the given reasons into `entity`'s DLQ.
async fn dead_letter(h: &Harness, entity: &str, reasons: &[&str]) {
    for (i, reason) in reasons.iter().enumerate() {
        let message = Message::new(format!("{{\"n\":{i}}}"))
            .with_correlation_id(format!("corr-{i}"))
            .with_property("tenant", "contoso");
        h.broker.send("q", vec![message]).await.unwrap();
        let got = h
            .broker
            .receive(entity, false, ReceiveMode::PeekLock, Duration::ZERO)
            .await
            .unwrap()
            .unwrap();
        h.broker
            .dead_letter_message(entity, &got, reason, &format!("{reason} happened"))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_show_and_filter_the_dead_letter_queue() {
    let h = Harness::start().await;
    dead_letter(&h, "q", &["TaskPoison", "TaskPoison", "ContentNotFound"]).await;
    let cs = h.connection_string();

    let table = dlq(Some(&cs), &["list", "q"]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.lines().next().unwrap().contains("REASON"));
    assert_eq!(
        table
            .stdout
            .lines()
            .filter(|l| l.contains("TaskPoison"))
            .count(),
        2,
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("corr-2") && table.stdout.contains("{\"n\":2}"));
    assert!(
        table
            .stdout
            .contains("3 dead-lettered message(s) in q/$DeadLetterQueue")
    );

    let filtered = dlq(
        Some(&cs),
        &["list", "q", "--reason", "TaskPoison", "--json"],
    )
    .await;
    let items: Vec<Value> = serde_json::from_str(&filtered.stdout).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[0]["deadLetterErrorDescription"],
        "TaskPoison happened"
    );

    let seq = items[1]["sequenceNumber"].as_i64().unwrap().to_string();
    let shown = dlq(Some(&cs), &["show", "q", &seq]).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let detail: Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(detail["body"], "{\"n\":1}");
    assert_eq!(detail["properties"]["tenant"], "contoso");

    let missing = dlq(Some(&cs), &["show", "q", "999"]).await;
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .contains("no message with sequence number 999")
    );
    assert_eq!(
        h.broker.counts("q").await.unwrap().dead_lettered,
        3,
        "listing changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubmit_sends_copies_then_removes_the_originals() {
    let h = Harness::start().await;
    dead_letter(&h, "q", &["TaskPoison", "Other", "TaskPoison"]).await;
    let cs = h.connection_string();
    let dry = dlq(
        Some(&cs),
        &["resubmit", "q", "--reason", "TaskPoison", "--dry-run"],
    )
    .await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("2 message(s) would be resubmitted"));
    assert_eq!(h.broker.counts("q").await.unwrap().dead_lettered, 3);

    let run = dlq(Some(&cs), &["resubmit", "q", "--reason", "TaskPoison"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("2 message(s) resubmitted to q"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let remaining = h.broker.browse("q", true, 0, 10).await.unwrap();
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0].dead_letter_reason(), Some("Other"));
    let mut copies = Vec::new();
    while let Some(m) = h
        .broker
        .receive("q", false, ReceiveMode::ReceiveAndDelete, Duration::ZERO)
        .await
        .unwrap()
    {
        copies.push(m);
    }
    assert_eq!(copies.len(), 2);
    let corr: Vec<_> = copies
        .iter()
        .map(|m| m.message.correlation_id.clone().unwrap())
        .collect();
    assert_eq!(corr, vec!["corr-0", "corr-2"]);
    for copy in &copies {
        assert!(copy.dead_letter_reason().is_none());
        assert_eq!(
            copy.message.properties["tenant"],
            PropertyValue::String("contoso".into())
        );
        let from = copy.message.properties["x-docflow-resubmitted-from"]
            .as_str()
            .unwrap();
        assert!(from.starts_with("q/$DeadLetterQueue/"), "{from}");
    }
    assert_ne!(
        copies[0].message.message_id,
        remaining[0].message.message_id
    );

    let by_seq = dlq(
        Some(&cs),
        &["resubmit", "q", &remaining[0].sequence_number.to_string()],
    )
    .await;
    assert_eq!(by_seq.code, 0, "{}", by_seq.stderr);
    assert_eq!(h.broker.counts("q").await.unwrap().dead_lettered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubmitting_a_subscription_puts_it_back_in_that_subscription_only() {
    let h = Harness::start().await;
    h.broker.send("fan", vec![Message::new("x")]).await.unwrap();
    let got = h
        .broker
        .receive(
            "fan/subscriptions/s1",
            false,
            ReceiveMode::PeekLock,
            Duration::ZERO,
        )
        .await
        .unwrap()
        .unwrap();
    h.broker
        .dead_letter_message("fan/subscriptions/s1", &got, "R", "d")
        .await
        .unwrap();
    let run = dlq(
        Some(&h.connection_string()),
        &["resubmit", "fan/subscriptions/s1", "--all"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("resubmitted to fan/subscriptions/s1"));
    let active = |sub: &'static str| {
        let broker = h.broker.clone();
        async move {
            broker
                .counts(&format!("fan/subscriptions/{sub}"))
                .await
                .unwrap()
                .active
        }
    };
    assert_eq!(active("s1").await, 1);
    assert_eq!(
        active("s2").await,
        1,
        "s2 keeps its own copy and gets no second one (the topic was not sent to)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discard_asks_for_confirmation_unless_yes() {
    let h = Harness::start().await;
    dead_letter(&h, "q", &["A", "B"]).await;
    let cs = h.connection_string();
    let refused = dlq(Some(&cs), &["discard", "q", "--all"]).await;
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("not confirmed"),
        "{}",
        refused.stderr
    );
    assert_eq!(h.broker.counts("q").await.unwrap().dead_lettered, 2);
    let done = dlq(Some(&cs), &["discard", "q", "--reason", "A", "--yes"]).await;
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(
        done.stdout
            .contains("1 message(s) discarded from q/$DeadLetterQueue")
    );
    let left = h.broker.browse("q", true, 0, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].dead_letter_reason(), Some("B"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_usage_is_a_clear_error() {
    let h = Harness::start().await;
    let no_connection = dlq(None, &["list", "q"]).await;
    assert_eq!(no_connection.code, 2);
    assert!(
        no_connection.stderr.contains("ServiceBusConnection"),
        "{}",
        no_connection.stderr
    );
    let no_entity = dlq(Some(&h.connection_string()), &["list", "nope"]).await;
    assert_eq!(no_entity.code, 1);
    assert!(
        no_entity.stderr.contains("does not exist"),
        "{}",
        no_entity.stderr
    );
    let no_selection = dlq(Some(&h.connection_string()), &["resubmit", "q"]).await;
    assert_eq!(
        no_selection.code, 2,
        "clap refuses a resubmit without a selection"
    );
}
