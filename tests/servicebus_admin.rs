//! docflow's reads of the ATOM management API (`ServiceBusClient::queue_runtimes`,
//! `topic_names`, `subscription_runtimes`, `entity_runtime`) against the embedded broker, which
//! answers them as Azure does: counts after sending, scheduling, locking and dead-lettering,
//! settings from the topology, paging past 100 entities, entities that do not exist, and the
//! Manage right they need.

mod common;

use std::time::Duration;

use common::broker::Harness;
use docflow::servicebus::message::Message;
use docflow::servicebus::{ClientError, ServiceBusClient};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_queue_s_counts_follow_its_sends_schedules_locks_and_dead_letters() {
    let h = Harness::start().await;
    let client = h.client();
    common::broker::a_queue_with_every_count(&client).await;
    let _locked = client.peek_lock("q", WAIT).await.unwrap().unwrap();

    let q = client.entity_runtime("q").await.unwrap();
    assert_eq!(q.path, "q");
    assert!(!q.subscription);
    assert_eq!(
        (
            q.active,
            q.scheduled,
            q.dead_lettered,
            q.transfer,
            q.transfer_dead_lettered
        ),
        (2, 1, 1, 0, 0),
        "a locked message is still active"
    );
    assert_eq!(q.message_count, 4);
    assert!(q.size_in_bytes >= 4, "{q:?}");
    assert_eq!(q.status.as_deref(), Some("Active"));
    assert_eq!(q.max_delivery_count, Some(3));
    assert_eq!(q.lock_duration, Some(Duration::from_secs(5)));
    assert!(q.updated_at.is_some());
    let accessed = q.accessed_at.expect("it holds messages");
    assert!(
        (chrono::Utc::now() - accessed).num_seconds().abs() < 60,
        "{accessed}"
    );

    let idle = client.entity_runtime("Q2").await.unwrap();
    assert_eq!(
        (idle.active, idle.message_count, idle.accessed_at),
        (0, 0, None)
    );
}

#[tokio::test]
async fn every_queue_is_listed_with_its_settings() {
    let h = Harness::start().await;
    let client = h.client();
    client
        .send_message("dedup", &Message::new("x"))
        .await
        .unwrap();
    let queues = client.queue_runtimes().await.unwrap();
    let names: Vec<&str> = queues.iter().map(|q| q.path.as_str()).collect();
    for name in ["q", "q2", "dedup", "sessions", "fwd-src", "chain6"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let dedup = queues.iter().find(|q| q.path == "dedup").unwrap();
    assert_eq!(dedup.active, 1);
    let forwarding = queues.iter().find(|q| q.path == "fwd-src").unwrap();
    assert_eq!(forwarding.forward_to.as_deref(), Some("fwd-dst"));
    assert!(queues.iter().all(|q| !q.subscription));
}

#[tokio::test]
async fn subscriptions_are_read_by_topic_and_by_path_in_any_case() {
    let h = Harness::start().await;
    let client = h.client();
    client
        .send_message("fan", &Message::new("1"))
        .await
        .unwrap();
    client
        .send_message("fan", &Message::new("2"))
        .await
        .unwrap();
    let got = client
        .peek_lock("fan/subscriptions/s2", WAIT)
        .await
        .unwrap()
        .unwrap();
    client
        .dead_letter_message(&got, "Poison", "bad")
        .await
        .unwrap();

    let subs = client.subscription_runtimes("fan").await.unwrap();
    let figures: Vec<(&str, bool, u64, u64, Option<u32>)> = subs
        .iter()
        .map(|s| {
            (
                s.path.as_str(),
                s.subscription,
                s.active,
                s.dead_lettered,
                s.max_delivery_count,
            )
        })
        .collect();
    assert_eq!(
        figures,
        [
            ("fan/subscriptions/s1", true, 2, 0, Some(10)),
            ("fan/subscriptions/s2", true, 1, 1, Some(1)),
        ]
    );
    let s2 = client.entity_runtime("FAN/Subscriptions/S2").await.unwrap();
    assert_eq!(s2.path, "FAN/subscriptions/s2");
    assert_eq!((s2.active, s2.dead_lettered, s2.message_count), (1, 1, 2));

    let topics = client.topic_names().await.unwrap();
    assert_eq!(topics, ["fan", "filters", "sess-topic"]);
}

#[tokio::test]
async fn an_entity_that_does_not_exist_is_entity_not_found() {
    let h = Harness::start().await;
    let client = h.client();
    for path in ["nope", "fan/subscriptions/nope", "nope/subscriptions/s1"] {
        assert!(
            matches!(
                client.entity_runtime(path).await,
                Err(ClientError::EntityNotFound { entity, .. }) if entity == path
            ),
            "{path}"
        );
    }
    assert!(
        client
            .subscription_runtimes("nope")
            .await
            .unwrap()
            .is_empty()
    );
    // A topic has no runtime figures of its own: they are its subscriptions'.
    let topic = client.entity_runtime("fan").await.unwrap_err();
    assert!(
        matches!(&topic, ClientError::Unreadable(e) if e.problem.contains("is a topic")),
        "{topic}"
    );
    // Azure's answer, which Microsoft's SDKs read as "does not exist": 200 and no entry.
    let raw = h
        .authed(Method::GET, "nope?api-version=2021-05")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::OK);
    assert_eq!(
        raw.headers()["content-type"],
        "application/atom+xml;type=feed;charset=utf-8"
    );
    let body = raw.text().await.unwrap();
    assert!(
        body.starts_with("<feed xmlns=\"http://www.w3.org/2005/Atom\">"),
        "{body}"
    );
    assert!(!body.contains("<entry"), "{body}");
}

#[tokio::test]
async fn listings_past_a_hundred_entities_are_read_page_by_page() {
    let queues: Vec<Value> = (0..150)
        .map(|i| json!({"Name": format!("queue-{i:03}"), "Properties": {}}))
        .collect();
    let subscriptions: Vec<Value> = (0..120)
        .map(|i| json!({"Name": format!("sub-{i:03}"), "Properties": {}, "Rules": []}))
        .collect();
    let topology = json!({"UserConfig": {"Namespaces": [{"Name": "paged", "Queues": queues,
        "Topics": [{"Name": "wide", "Properties": {}, "Subscriptions": subscriptions}]}]}});
    let h = Harness::start_with(topology, tempfile::tempdir().unwrap()).await;
    let client = h.client();
    client
        .send_message("queue-149", &Message::new("last"))
        .await
        .unwrap();

    let listed = client.queue_runtimes().await.unwrap();
    let names: Vec<String> = listed.iter().map(|q| q.path.clone()).collect();
    let expected: Vec<String> = (0..150).map(|i| format!("queue-{i:03}")).collect();
    assert_eq!(names, expected);
    assert_eq!(listed[149].active, 1);
    let subs = client.subscription_runtimes("wide").await.unwrap();
    assert_eq!(subs.len(), 120);
    assert_eq!(subs[119].path, "wide/subscriptions/sub-119");

    // The pages themselves: a `next` link while more remain, as Azure writes it.
    let page = |query: &str| {
        h.authed(
            Method::GET,
            &format!("$Resources/Queues?{query}&api-version=2021-05"),
        )
        .send()
    };
    let first = page("$skip=0&$top=100")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(first.matches("<entry>").count(), 100);
    assert!(first.contains("rel=\"next\""), "{first}");
    assert!(first.contains("$skip=100&amp;$top=100"), "{first}");
    let last = page("$skip=100&$top=100")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(last.matches("<entry>").count(), 50);
    assert!(!last.contains("rel=\"next\""), "{last}");
    let bad = page("$skip=many").await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn management_reads_need_the_manage_right_and_writes_are_refused() {
    let h = Harness::start().await;
    let listener = ServiceBusClient::from_connection_string(&format!(
        "Endpoint=sb://127.0.0.1:{};SharedAccessKeyName=listener;SharedAccessKey=listen-key;UseDevelopmentEmulator=true;",
        h.port
    ))
    .unwrap();
    assert!(matches!(
        listener.queue_runtimes().await,
        Err(ClientError::Unauthorized(_))
    ));
    assert!(matches!(
        listener.entity_runtime("q").await,
        Err(ClientError::Unauthorized(_))
    ));
    for method in [Method::PUT, Method::DELETE] {
        let response = h
            .authed(method.clone(), "q?api-version=2021-05")
            .body("<entry/>")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        let body = response.text().await.unwrap();
        assert!(body.starts_with("<Error><Code>405</Code>"), "{body}");
        assert!(body.contains("topology file"), "{body}");
    }
}
