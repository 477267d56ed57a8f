//! The reader on Azure's own answers (`tests/fixtures/atom/`, from the recorded tests of
//! Microsoft's Python SDK), and on answers that lack what they must hold.

use std::time::Duration;

use chrono::TimeZone;

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/atom/",
            $name
        ))
    };
}

fn runtimes(xml: &str, prefix: &str) -> Vec<EntityRuntime> {
    Document::parse(xml, "test")
        .unwrap()
        .into_entries()
        .into_iter()
        .map(|e| {
            let path = format!("{prefix}{}", e.name());
            e.into_runtime(path, "test").unwrap()
        })
        .collect()
}

fn at(text: &str) -> Option<DateTime<Utc>> {
    Some(
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc),
    )
}

#[test]
fn a_queue_entry_reads_with_its_counts_settings_and_dates() {
    let [queue] = runtimes(fixture!("queue-entry.xml"), "")
        .try_into()
        .unwrap();
    assert_eq!(
        queue,
        EntityRuntime {
            path: "test_queue".into(),
            subscription: false,
            forward_to: None,
            status: Some("Active".into()),
            active: 0,
            dead_lettered: 0,
            scheduled: 0,
            transfer: 0,
            transfer_dead_lettered: 0,
            message_count: 0,
            size_in_bytes: 0,
            max_delivery_count: Some(10),
            lock_duration: Some(Duration::from_secs(60)),
            // 0001-01-01T00:00:00Z: Azure's "never".
            accessed_at: None,
            updated_at: at("2021-10-21T05:19:08.75Z"),
        }
    );
}

#[test]
fn each_count_comes_from_its_own_element() {
    let xml = fixture!("queue-entry.xml")
        .replace(
            ">0</d2p1:ActiveMessageCount>",
            ">1</d2p1:ActiveMessageCount>",
        )
        .replace(
            ">0</d2p1:DeadLetterMessageCount>",
            ">2</d2p1:DeadLetterMessageCount>",
        )
        .replace(
            ">0</d2p1:ScheduledMessageCount>",
            ">3</d2p1:ScheduledMessageCount>",
        )
        .replace(
            ">0</d2p1:TransferMessageCount>",
            ">4</d2p1:TransferMessageCount>",
        )
        .replace(
            ">0</d2p1:TransferDeadLetterMessageCount>",
            ">5</d2p1:TransferDeadLetterMessageCount>",
        )
        .replace("<MessageCount>0<", "<MessageCount>15<")
        .replace("<SizeInBytes>0<", "<SizeInBytes>4096<");
    let [queue] = runtimes(&xml, "").try_into().unwrap();
    assert_eq!(
        (
            queue.active,
            queue.dead_lettered,
            queue.scheduled,
            queue.transfer,
            queue.transfer_dead_lettered,
            queue.message_count,
            queue.size_in_bytes
        ),
        (1, 2, 3, 4, 5, 15, 4096)
    );
}

#[test]
fn a_queue_feed_reads_its_entries_and_an_empty_one_none() {
    let queues = runtimes(fixture!("queue-feed.xml"), "");
    assert_eq!(queues.len(), 1);
    assert_eq!(queues[0].path, "test_queue");
    assert_eq!(queues[0].updated_at, at("2021-10-21T05:19:18.53Z"));
    assert!(runtimes(fixture!("queue-feed-empty.xml"), "").is_empty());
}

#[test]
fn a_subscription_entry_reads_its_forwarding_target_and_seven_digit_dates() {
    // Its counts are prefixed d3p1: rather than d2p1:.
    let [sub] = runtimes(
        fixture!("subscription-entry.xml"),
        "iweidkforward/subscriptions/",
    )
    .try_into()
    .unwrap();
    assert!(sub.subscription);
    assert_eq!(sub.path, "iweidkforward/subscriptions/kdosakoforward");
    assert_eq!(sub.forward_to.as_deref(), Some("dkfthj"));
    assert_eq!(sub.max_delivery_count, Some(10));
    assert_eq!(
        sub.accessed_at,
        Some(
            Utc.with_ymd_and_hms(2021, 10, 21, 5, 21, 46).unwrap()
                + chrono::Duration::nanoseconds(631_013_500)
        )
    );
    assert_eq!(
        sub.size_in_bytes, 0,
        "Azure reports no size for a subscription"
    );
}

#[test]
fn a_subscription_feed_reads_as_subscriptions() {
    let subs = runtimes(fixture!("subscription-feed.xml"), "dkoamv/subscriptions/");
    assert_eq!(subs.len(), 1);
    assert!(subs[0].subscription);
    assert_eq!(subs[0].path, "dkoamv/subscriptions/cxqplc");
    assert_eq!(subs[0].accessed_at, at("2021-10-21T05:21:59.403Z"));
}

#[test]
fn a_topic_feed_gives_names_and_refuses_to_be_read_as_runtimes() {
    let entries = Document::parse(fixture!("topic-feed.xml"), "test")
        .unwrap()
        .into_entries();
    let names: Vec<&str> = entries.iter().map(Entry::name).collect();
    assert_eq!(names, ["test_topic"]);
    let topic = entries.into_iter().next().unwrap();
    let error = topic.into_runtime("test_topic".into(), "test").unwrap_err();
    assert!(error.problem.contains("is a topic"), "{error}");
}

#[test]
fn the_feed_azure_answers_for_a_missing_entity_has_no_entry() {
    let document = Document::parse(fixture!("not-found.xml"), "non_existing_queue").unwrap();
    assert!(document.into_entries().is_empty());
}

#[test]
fn a_description_without_count_details_names_what_is_missing() {
    let xml = fixture!("queue-entry.xml");
    let start = xml.find("<CountDetails").unwrap();
    let end = xml.find("</CountDetails>").unwrap() + "</CountDetails>".len();
    let without = format!("{}{}", &xml[..start], &xml[end..]);
    let error = Document::parse(&without, "test_queue").unwrap_err();
    assert_eq!(error.resource, "test_queue");
    assert!(error.problem.contains("CountDetails"), "{error}");
}

#[test]
fn a_count_that_is_not_a_number_names_its_element() {
    let xml = fixture!("queue-entry.xml").replace(
        ">0</d2p1:ScheduledMessageCount>",
        ">many</d2p1:ScheduledMessageCount>",
    );
    let error = Document::parse(&xml, "test_queue").unwrap_err();
    assert!(error.problem.contains("ScheduledMessageCount"), "{error}");
}

#[test]
fn documents_in_other_namespaces_are_refused() {
    let not_atom = fixture!("queue-entry.xml")
        .replace("<entry xmlns=\"http://www.w3.org/2005/Atom\">", "<entry>");
    let error = Document::parse(&not_atom, "q").unwrap_err();
    assert!(error.problem.contains("Atom namespace"), "{error}");
    let wrong_description = fixture!("queue-entry.xml").replace(CONNECT_NAMESPACE, "urn:other");
    let error = Document::parse(&wrong_description, "q").unwrap_err();
    assert!(error.problem.contains("QueueDescription"), "{error}");
    let error = Document::parse("<Error><Code>401</Code></Error>", "q").unwrap_err();
    assert!(error.problem.contains("Atom namespace"), "{error}");
}

#[test]
fn malformed_settings_name_the_element() {
    let xml = fixture!("queue-entry.xml").replace("<LockDuration>PT1M<", "<LockDuration>soon<");
    let [entry] = Document::parse(&xml, "q")
        .unwrap()
        .into_entries()
        .try_into()
        .ok()
        .unwrap();
    let error = entry.into_runtime("q".into(), "q").unwrap_err();
    assert!(error.problem.contains("LockDuration"), "{error}");
    let xml = fixture!("queue-entry.xml").replace(
        "<UpdatedAt>2021-10-21T05:19:08.75Z<",
        "<UpdatedAt>yesterday<",
    );
    let [entry] = Document::parse(&xml, "q")
        .unwrap()
        .into_entries()
        .try_into()
        .ok()
        .unwrap();
    let error = entry.into_runtime("q".into(), "q").unwrap_err();
    assert!(error.problem.contains("UpdatedAt"), "{error}");
}

#[test]
fn dates_with_and_without_a_zone_read_as_utc_and_the_year_one_as_never() {
    assert_eq!(parse_date("0001-01-01T00:00:00"), Some(None));
    assert_eq!(parse_date("0001-01-01T00:00:00Z"), Some(None));
    assert_eq!(
        parse_date("2021-10-21T05:21:54.2104308"),
        Some(at("2021-10-21T05:21:54.2104308Z"))
    );
    assert_eq!(parse_date("not a date"), None);
}

#[test]
fn forwarding_targets_read_as_entity_names() {
    assert_eq!(
        entity_of("sb://ns.servicebus.windows.net/dkfthj").as_deref(),
        Some("dkfthj")
    );
    assert_eq!(entity_of("sb://127.0.0.1:7072/a/b").as_deref(), Some("a/b"));
    assert_eq!(entity_of("plain").as_deref(), Some("plain"));
    assert_eq!(entity_of(""), None);
}
