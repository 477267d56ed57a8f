//! The embedded broker over its REST API: the behaviours of `servicebus.md` §5 that Azure
//! exposes over REST, one test each, named after the behaviour. Time moves by advancing the
//! broker's clock, never by sleeping.

mod common;

use common::broker::Harness;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

// ----- Auth & transport -----

#[tokio::test]
async fn a_valid_sas_token_sends_201() {
    let h = Harness::start().await;
    let token = h.token_for(
        &h.url("q"),
        "RootManageSharedAccessKey",
        "SAS_KEY_VALUE",
        60,
    );
    let response = h.send_as("q", b"x", Value::Null, &[], &token).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn an_expired_token_is_401_with_an_xml_error() {
    let h = Harness::start().await;
    let token = h.token_for(
        &h.url("q"),
        "RootManageSharedAccessKey",
        "SAS_KEY_VALUE",
        -10,
    );
    let response = h.send_as("q", b"x", Value::Null, &[], &token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["content-type"],
        "application/xml; charset=utf-8"
    );
    let body = response.text().await.unwrap();
    assert!(
        body.starts_with("<Error><Code>401</Code><Detail>ExpiredToken"),
        "{body}"
    );
    assert!(h.lock("q").await.is_none(), "a refused send stores nothing");
}

#[tokio::test]
async fn a_token_signed_with_the_wrong_key_is_401() {
    let h = Harness::start().await;
    let token = h.token_for(&h.url("q"), "RootManageSharedAccessKey", "not-the-key", 60);
    assert_eq!(
        h.send_as("q", b"x", Value::Null, &[], &token)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let no_token = h
        .http
        .post(h.url("q/messages"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_token_for_another_entity_is_401() {
    let h = Harness::start().await;
    let token = h.token_for(
        &h.url("q2"),
        "RootManageSharedAccessKey",
        "SAS_KEY_VALUE",
        60,
    );
    assert_eq!(
        h.send_as("q", b"x", Value::Null, &[], &token)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_listen_only_rule_cannot_send() {
    let h = Harness::start().await;
    let token = h.token_for(&h.url(""), "listener", "listen-key", 60);
    let response = h.send_as("q", b"x", Value::Null, &[], &token).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("'Send' claim(s) are required")
    );
}

#[tokio::test]
async fn a_missing_entity_is_410() {
    let h = Harness::start().await;
    assert_eq!(
        h.send("nope", b"x", Value::Null, &[]).await,
        StatusCode::GONE
    );
    let response = h
        .authed(Method::POST, "nope/messages/head?timeout=0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::GONE);
}

// ----- Send / properties -----

#[tokio::test]
async fn broker_and_custom_properties_round_trip() {
    let h = Harness::start().await;
    let props =
        json!({"MessageId": "m1", "Label": "L", "CorrelationId": "c", "To": "t", "ReplyTo": "r"});
    assert_eq!(
        h.send("q", b"x", props, &[("Prio", "\"High\"")]).await,
        StatusCode::CREATED
    );
    let got = h.lock("q").await.unwrap();
    for (k, v) in [
        ("MessageId", "m1"),
        ("Label", "L"),
        ("CorrelationId", "c"),
        ("To", "t"),
        ("ReplyTo", "r"),
    ] {
        assert_eq!(got.props[k], v, "{k}");
    }
    assert_eq!(got.header("prio").as_deref(), Some("\"High\""));
}

#[tokio::test]
async fn custom_property_types_survive_the_round_trip() {
    let h = Harness::start().await;
    let headers = [
        ("n", "5"),
        ("f", "1.5"),
        ("b", "true"),
        ("d", "\"Fri, 04 Mar 2011 08:49:37 GMT\""),
    ];
    assert_eq!(
        h.send("q", b"x", Value::Null, &headers).await,
        StatusCode::CREATED
    );
    let got = h.lock("q").await.unwrap();
    for (name, value) in headers {
        assert_eq!(got.header(name).as_deref(), Some(value), "{name}");
    }
}

#[tokio::test]
async fn an_unquoted_non_numeric_property_is_rejected() {
    let h = Harness::start().await;
    assert_eq!(
        h.send("q", b"x", Value::Null, &[("x", "abc")]).await,
        StatusCode::BAD_REQUEST
    );
    assert!(h.lock("q").await.is_none());
}

#[tokio::test]
async fn content_type_and_body_bytes_round_trip() {
    let h = Harness::start().await;
    let body = b"{\"a\": [1, 2, \"\xc3\xa9\"]}\x00\xff";
    assert_eq!(
        h.send(
            "q",
            body,
            Value::Null,
            &[("content-type", "application/json")]
        )
        .await,
        StatusCode::CREATED
    );
    let got = h.lock("q").await.unwrap();
    assert_eq!(
        got.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(got.body, body);
}

#[tokio::test]
async fn a_body_over_256_kb_is_403() {
    let h = Harness::start().await;
    assert_eq!(
        h.send("q", &vec![b'a'; 256 * 1024 + 1], Value::Null, &[])
            .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        h.send("q", &vec![b'a'; 256 * 1024], Value::Null, &[]).await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn read_only_broker_properties_are_ignored_on_send() {
    let h = Harness::start().await;
    let props = json!({"SequenceNumber": 999, "DeliveryCount": 7, "LockToken": "00000000-0000-0000-0000-000000000000"});
    assert_eq!(h.send("q", b"x", props, &[]).await, StatusCode::CREATED);
    let got = h.lock("q").await.unwrap();
    assert_eq!(got.props["SequenceNumber"], 1);
    assert_eq!(got.props["DeliveryCount"], 1);
    assert_ne!(
        got.props["LockToken"],
        "00000000-0000-0000-0000-000000000000"
    );
}

async fn send_batch(h: &Harness, entity: &str, batch: Value, extra: &[(&str, &str)]) -> StatusCode {
    let mut request = h
        .authed(Method::POST, &format!("{entity}/messages"))
        .header("content-type", "application/vnd.microsoft.servicebus.json")
        .body(batch.to_string());
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn a_batch_becomes_separate_messages_in_order() {
    let h = Harness::start().await;
    let batch = json!([
        {"Body": "one", "BrokerProperties": {"Label": "M1", "TimeToLiveTimeSpan": "0.00:00:40"}},
        {"Body": "two", "BrokerProperties": {"Label": "M2"}, "UserProperties": {"Priority": "Low"}},
        {"Body": "three", "BrokerProperties": {"Label": "M3"}, "UserProperties": {"Priority": "Medium", "Count": 3}}
    ]);
    assert_eq!(send_batch(&h, "q", batch, &[]).await, StatusCode::CREATED);
    for (label, priority) in [
        ("M1", None),
        ("M2", Some("\"Low\"")),
        ("M3", Some("\"Medium\"")),
    ] {
        let got = h.receive("q", Method::DELETE, 0).await.unwrap();
        assert_eq!(got.props["Label"], label);
        assert_eq!(got.header("priority").as_deref(), priority);
    }
}

#[tokio::test]
async fn a_base64_batch_body_is_decoded() {
    let h = Harness::start().await;
    assert_eq!(
        send_batch(
            &h,
            "q",
            json!([{"Body": "AAEC", "IsBodyBase64": true}]),
            &[]
        )
        .await,
        StatusCode::CREATED
    );
    assert_eq!(h.lock("q").await.unwrap().body, vec![0, 1, 2]);
}

#[tokio::test]
async fn custom_headers_on_a_batch_are_not_applied() {
    let h = Harness::start().await;
    assert_eq!(
        send_batch(&h, "q", json!([{"Body": "x"}]), &[("Prio", "\"High\"")]).await,
        StatusCode::CREATED
    );
    assert_eq!(h.lock("q").await.unwrap().header("prio"), None);
}

// ----- Receive / peek-lock lifecycle -----

#[tokio::test]
async fn an_empty_queue_long_polls_then_answers_204() {
    let h = Harness::start().await;
    let started = std::time::Instant::now();
    assert!(h.receive("q", Method::POST, 1).await.is_none());
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
}

#[tokio::test]
async fn a_long_poll_returns_as_soon_as_a_message_arrives() {
    let h = Harness::start().await;
    let client = h.client();
    let waiting = tokio::spawn(async move {
        client
            .peek_lock("q", std::time::Duration::from_secs(30))
            .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    h.send("q", b"late", Value::Null, &[]).await;
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got.unwrap().message.body, b"late");
}

#[tokio::test]
async fn peek_lock_returns_location_lock_token_and_delivery_count() {
    let h = Harness::start().await;
    h.send("q", b"x", Value::Null, &[]).await;
    let got = h.lock("q").await.unwrap();
    assert_eq!(got.status, StatusCode::CREATED);
    let token = got.props["LockToken"].as_str().unwrap();
    assert_eq!(got.location(), h.url(&format!("q/messages/1/{token}")));
    assert_eq!(got.props["DeliveryCount"], 1);
    let until = docflow::servicebus::message::parse_http_date(
        got.props["LockedUntilUtc"].as_str().unwrap(),
    )
    .unwrap();
    let expected = chrono::Utc::now() + chrono::Duration::seconds(5);
    assert!(
        (until - expected).num_seconds().abs() <= 2,
        "{until} vs {expected}"
    );
}

#[tokio::test]
async fn a_locked_message_is_invisible_to_other_receivers() {
    let h = Harness::start().await;
    h.send("q", b"x", Value::Null, &[]).await;
    assert!(h.lock("q").await.is_some());
    assert!(h.receive("q", Method::POST, 1).await.is_none());
}

#[tokio::test]
async fn complete_removes_the_message_and_a_second_complete_is_404() {
    let h = Harness::start().await;
    h.send("q", b"x", Value::Null, &[]).await;
    let got = h.lock("q").await.unwrap();
    assert_eq!(
        h.on_lock(Method::DELETE, &got.location()).await,
        StatusCode::OK
    );
    assert!(h.lock("q").await.is_none());
    assert_eq!(
        h.on_lock(Method::DELETE, &got.location()).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn unlock_redelivers_with_an_incremented_count_and_a_new_lock_token() {
    let h = Harness::start().await;
    h.send("q", b"x", Value::Null, &[]).await;
    let first = h.lock("q").await.unwrap();
    assert_eq!(
        h.on_lock(Method::PUT, &first.location()).await,
        StatusCode::OK
    );
    let second = h.lock("q").await.unwrap();
    assert_eq!(second.props["DeliveryCount"], 2);
    assert_ne!(second.props["LockToken"], first.props["LockToken"]);
    assert_eq!(
        h.on_lock(Method::DELETE, &first.location()).await,
        StatusCode::NOT_FOUND,
        "the old token stops working"
    );
}

#[tokio::test]
async fn lock_expiry_redelivers_and_the_old_lock_is_lost() {
    let h = Harness::start().await;
    h.send("q", b"x", Value::Null, &[]).await;
    let first = h.lock("q").await.unwrap();
    h.advance(6);
    let second = h.lock("q").await.unwrap();
    assert_eq!(second.props["DeliveryCount"], 2);
    assert_eq!(
        h.on_lock(Method::DELETE, &first.location()).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.on_lock(Method::DELETE, &second.location()).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_renewed_lock_outlives_the_original_duration() {
    let h = Harness::start().await;
    h.send("q", b"x", Value::Null, &[]).await;
    let got = h.lock("q").await.unwrap();
    h.advance(4);
    assert_eq!(
        h.on_lock(Method::POST, &got.location()).await,
        StatusCode::OK
    );
    h.advance(4);
    assert_eq!(
        h.on_lock(Method::DELETE, &got.location()).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_settle_uri_accepts_the_message_id() {
    let h = Harness::start().await;
    h.send("q", b"x", json!({"MessageId": "my-id"}), &[]).await;
    let got = h.lock("q").await.unwrap();
    let token = got.props["LockToken"].as_str().unwrap();
    assert_eq!(
        h.on_lock(Method::DELETE, &h.url(&format!("q/messages/wrong/{token}")))
            .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        h.on_lock(Method::DELETE, &h.url(&format!("Q/Messages/my-id/{token}")))
            .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn receive_and_delete_has_no_location_and_counts_one_delivery() {
    let h = Harness::start().await;
    h.send("q", b"A", Value::Null, &[]).await;
    h.send("q", b"B", Value::Null, &[]).await;
    for body in [b"A", b"B"] {
        let got = h.receive("q", Method::DELETE, 0).await.unwrap();
        assert_eq!(got.status, StatusCode::OK);
        assert_eq!(got.body, body);
        assert!(got.header("location").is_none());
        assert!(got.props.get("LockToken").is_none());
        assert_eq!(got.props["DeliveryCount"], 1);
    }
}

#[tokio::test]
async fn an_abandoned_message_keeps_its_place() {
    let h = Harness::start().await;
    for body in ["1", "2", "3"] {
        h.send("q", body.as_bytes(), Value::Null, &[]).await;
    }
    let one = h.lock("q").await.unwrap();
    let two = h.lock("q").await.unwrap();
    assert_eq!(
        h.on_lock(Method::DELETE, &one.location()).await,
        StatusCode::OK
    );
    assert_eq!(
        h.on_lock(Method::PUT, &two.location()).await,
        StatusCode::OK
    );
    assert_eq!(h.body_of("q").await.as_deref(), Some("2"));
    assert_eq!(h.body_of("q").await.as_deref(), Some("3"));
}

// ----- Max delivery / DLQ -----

#[tokio::test]
async fn max_delivery_count_moves_the_message_to_the_dead_letter_queue() {
    let h = Harness::start().await;
    h.send("q", b"x", Value::Null, &[]).await;
    for _ in 0..3 {
        let got = h.lock("q").await.unwrap();
        assert_eq!(
            h.on_lock(Method::PUT, &got.location()).await,
            StatusCode::OK
        );
    }
    assert!(h.lock("q").await.is_none());
    let dead = h.lock("q/$DeadLetterQueue").await.unwrap();
    assert_eq!(
        dead.header("deadletterreason").as_deref(),
        Some("\"MaxDeliveryCountExceeded\"")
    );
    assert_eq!(
        dead.header("deadlettererrordescription").as_deref(),
        Some("\"Message could not be consumed after 3 delivery attempts.\"")
    );
    assert_eq!(dead.props["DeliveryCount"], 4);
}

#[tokio::test]
async fn lock_expiry_counts_toward_max_delivery_count() {
    let h = Harness::start().await;
    h.send("q2", b"x", Value::Null, &[]).await;
    for _ in 0..2 {
        assert!(h.lock("q2").await.is_some());
        h.advance(6);
    }
    assert!(h.lock("q2").await.is_none());
    let dead = h.lock("q2/$deadletterqueue").await.unwrap();
    assert_eq!(
        dead.header("deadletterreason").as_deref(),
        Some("\"MaxDeliveryCountExceeded\"")
    );
}

#[tokio::test]
async fn a_dead_lettered_message_can_be_completed_from_the_dead_letter_queue() {
    let h = Harness::start().await;
    h.send("q2", b"x", Value::Null, &[]).await;
    for _ in 0..2 {
        let got = h.lock("q2").await.unwrap();
        h.on_lock(Method::PUT, &got.location()).await;
    }
    let dead = h.lock("q2/$DeadLetterQueue").await.unwrap();
    assert!(
        dead.location().contains("/q2/$deadletterqueue/messages/"),
        "{}",
        dead.location()
    );
    assert_eq!(
        h.on_lock(Method::DELETE, &dead.location()).await,
        StatusCode::OK
    );
    assert!(h.lock("q2/$DeadLetterQueue").await.is_none());
}

#[tokio::test]
async fn a_subscription_dead_letter_queue_holds_only_its_own_messages() {
    let h = Harness::start().await;
    h.send("fan", b"x", Value::Null, &[]).await;
    let got = h.lock("fan/subscriptions/s2").await.unwrap();
    h.on_lock(Method::PUT, &got.location()).await;
    assert!(
        h.lock("fan/subscriptions/s2/$DeadLetterQueue")
            .await
            .is_some()
    );
    assert!(
        h.lock("fan/subscriptions/s1/$DeadLetterQueue")
            .await
            .is_none()
    );
    assert!(
        h.lock("fan/Subscriptions/S1").await.is_some(),
        "s1 still has its copy"
    );
}

#[tokio::test]
async fn sending_to_a_dead_letter_queue_or_subscription_is_refused() {
    let h = Harness::start().await;
    assert_eq!(
        h.send("q/$DeadLetterQueue", b"x", Value::Null, &[]).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        h.send("fan/subscriptions/s1", b"x", Value::Null, &[]).await,
        StatusCode::BAD_REQUEST
    );
}

// ----- TTL -----

#[tokio::test]
async fn an_expired_message_is_dropped() {
    let h = Harness::start().await;
    h.send("q", b"x", json!({"TimeToLive": 2}), &[]).await;
    h.advance(3);
    assert!(h.lock("q").await.is_none());
    assert!(h.lock("q/$DeadLetterQueue").await.is_none());
}

#[tokio::test]
async fn an_expired_message_is_dead_lettered_when_the_entity_says_so() {
    let h = Harness::start().await;
    h.send("ttl-dlq", b"x", json!({"TimeToLive": 2}), &[]).await;
    h.advance(3);
    assert!(h.lock("ttl-dlq").await.is_none());
    let dead = h.lock("ttl-dlq/$DeadLetterQueue").await.unwrap();
    assert_eq!(
        dead.header("deadletterreason").as_deref(),
        Some("\"TTLExpiredException\"")
    );
}

#[tokio::test]
async fn a_message_ttl_is_capped_by_the_entity_default() {
    let h = Harness::start().await;
    h.send("ttl", b"x", json!({"TimeToLive": 3600}), &[]).await;
    assert_eq!(h.lock("ttl").await.unwrap().props["TimeToLive"], 10.0);
}

#[tokio::test]
async fn a_locked_message_is_not_expired_until_released() {
    let h = Harness::start().await;
    h.send("ttl-dlq", b"x", json!({"TimeToLive": 3}), &[]).await;
    let got = h.lock("ttl-dlq").await.unwrap();
    h.advance(5);
    assert_eq!(
        h.on_lock(Method::DELETE, &got.location()).await,
        StatusCode::OK
    );

    h.send("ttl-dlq", b"y", json!({"TimeToLive": 3}), &[]).await;
    let got = h.lock("ttl-dlq").await.unwrap();
    h.advance(5);
    assert_eq!(
        h.on_lock(Method::PUT, &got.location()).await,
        StatusCode::OK
    );
    assert!(h.lock("ttl-dlq").await.is_none());
    let dead = h.lock("ttl-dlq/$DeadLetterQueue").await.unwrap();
    assert_eq!(
        dead.header("deadletterreason").as_deref(),
        Some("\"TTLExpiredException\"")
    );
}

// ----- Scheduling -----

#[tokio::test]
async fn a_scheduled_message_is_invisible_until_due_then_gets_a_new_sequence_number() {
    let h = Harness::start().await;
    let at = docflow::servicebus::message::format_http_date(
        chrono::Utc::now() + chrono::Duration::seconds(5),
    );
    h.send("q", b"later", json!({"ScheduledEnqueueTimeUtc": at}), &[])
        .await;
    h.send("q", b"now", Value::Null, &[]).await;
    h.advance(1);
    assert_eq!(h.body_of("q").await.as_deref(), Some("now"));
    assert!(h.lock("q").await.is_none());
    h.advance(5);
    let got = h.lock("q").await.unwrap();
    assert_eq!(got.body, b"later");
    assert!(got.props["SequenceNumber"].as_i64().unwrap() > 2);
}

#[tokio::test]
async fn a_cancelled_scheduled_message_is_never_delivered() {
    let h = Harness::start().await;
    let at = docflow::servicebus::message::format_http_date(
        chrono::Utc::now() + chrono::Duration::seconds(5),
    );
    let response = h
        .send_as(
            "q",
            b"later",
            json!({"ScheduledEnqueueTimeUtc": at}),
            &[],
            &h.token(),
        )
        .await;
    let seq = response.headers()["x-local-sequence-number"]
        .to_str()
        .unwrap()
        .to_string();
    let cancel = h
        .authed(Method::DELETE, &format!("q/$local/scheduled/{seq}"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), StatusCode::OK);
    h.advance(10);
    assert!(h.lock("q").await.is_none());
}

// ----- Duplicate detection -----

#[tokio::test]
async fn a_duplicate_message_id_within_the_window_is_accepted_and_dropped() {
    let h = Harness::start().await;
    assert_eq!(
        h.send("dedup", b"1", json!({"MessageId": "x"}), &[]).await,
        StatusCode::CREATED
    );
    assert_eq!(
        h.send("dedup", b"2", json!({"MessageId": "x"}), &[]).await,
        StatusCode::CREATED
    );
    assert_eq!(h.body_of("dedup").await.as_deref(), Some("1"));
    assert!(h.lock("dedup").await.is_none());
}

#[tokio::test]
async fn a_duplicate_after_the_window_is_delivered() {
    let h = Harness::start().await;
    h.send("dedup", b"1", json!({"MessageId": "x"}), &[]).await;
    h.advance(61);
    h.send("dedup", b"2", json!({"MessageId": "x"}), &[]).await;
    assert_eq!(h.body_of("dedup").await.as_deref(), Some("1"));
    assert_eq!(h.body_of("dedup").await.as_deref(), Some("2"));
}

#[tokio::test]
async fn a_scheduled_message_counts_for_duplicate_detection() {
    let h = Harness::start().await;
    let at = docflow::servicebus::message::format_http_date(
        chrono::Utc::now() + chrono::Duration::seconds(5),
    );
    h.send(
        "dedup",
        b"scheduled",
        json!({"MessageId": "y", "ScheduledEnqueueTimeUtc": at}),
        &[],
    )
    .await;
    h.send("dedup", b"immediate", json!({"MessageId": "y"}), &[])
        .await;
    assert!(h.lock("dedup").await.is_none());
    h.advance(6);
    assert_eq!(h.body_of("dedup").await.as_deref(), Some("scheduled"));
    assert!(h.lock("dedup").await.is_none());
}

// ----- Topics & filters -----

#[tokio::test]
async fn a_topic_gives_each_subscription_one_copy() {
    let h = Harness::start().await;
    h.send("fan", b"x", Value::Null, &[]).await;
    let s1 = h.lock("fan/subscriptions/s1").await.unwrap();
    assert_eq!(
        h.on_lock(Method::DELETE, &s1.location()).await,
        StatusCode::OK
    );
    assert!(h.lock("fan/subscriptions/s1").await.is_none());
    assert_eq!(
        h.body_of("fan/subscriptions/s2").await.as_deref(),
        Some("x")
    );
}

#[tokio::test]
async fn a_sql_filter_selects_by_properties() {
    let h = Harness::start().await;
    h.send(
        "filters",
        b"red",
        Value::Null,
        &[("color", "\"red\""), ("qty", "10")],
    )
    .await;
    h.send(
        "filters",
        b"blue",
        Value::Null,
        &[("color", "\"blue\""), ("qty", "10")],
    )
    .await;
    assert_eq!(
        h.body_of("filters/subscriptions/red").await.as_deref(),
        Some("red")
    );
    assert!(h.lock("filters/subscriptions/red").await.is_none());
}

#[tokio::test]
async fn a_like_filter_on_a_system_property_with_a_missing_user_property_matches() {
    let h = Harness::start().await;
    h.send("filters", b"o", json!({"Label": "orders"}), &[])
        .await;
    h.send(
        "filters",
        b"r",
        json!({"Label": "orders"}),
        &[("region", "\"eu\"")],
    )
    .await;
    assert_eq!(
        h.body_of("filters/subscriptions/label").await.as_deref(),
        Some("o")
    );
    assert!(h.lock("filters/subscriptions/label").await.is_none());
}

#[tokio::test]
async fn unknown_is_not_true() {
    let h = Harness::start().await;
    h.send("filters", b"x", Value::Null, &[]).await;
    // `missingProp = 1 OR NOT (missingProp = 1)` is unknown, not true, without the property.
    assert!(h.lock("filters/subscriptions/unknown").await.is_none());
    h.send("filters", b"y", Value::Null, &[("missingProp", "2")])
        .await;
    assert_eq!(
        h.body_of("filters/subscriptions/unknown").await.as_deref(),
        Some("y")
    );
}

#[tokio::test]
async fn a_correlation_filter_is_case_sensitive_and_requires_every_field() {
    let h = Harness::start().await;
    h.send(
        "filters",
        b"1",
        json!({"CorrelationId": "abc"}),
        &[("k", "\"v\"")],
    )
    .await;
    h.send(
        "filters",
        b"2",
        json!({"CorrelationId": "ABC"}),
        &[("k", "\"v\"")],
    )
    .await;
    h.send(
        "filters",
        b"3",
        json!({"CorrelationId": "abc"}),
        &[("k", "\"w\"")],
    )
    .await;
    assert_eq!(
        h.body_of("filters/subscriptions/corr").await.as_deref(),
        Some("1")
    );
    assert!(h.lock("filters/subscriptions/corr").await.is_none());
}

#[tokio::test]
async fn a_subscription_whose_rules_match_nothing_gets_nothing_and_the_send_still_succeeds() {
    let h = Harness::start().await;
    assert_eq!(
        h.send("filters", b"x", Value::Null, &[]).await,
        StatusCode::CREATED
    );
    assert!(h.lock("filters/subscriptions/none").await.is_none());
    assert!(h.lock("filters/subscriptions/plain").await.is_some());
}

#[tokio::test]
async fn matching_rules_without_actions_make_one_copy_and_each_action_rule_its_own() {
    let h = Harness::start().await;
    h.send(
        "filters",
        b"x",
        Value::Null,
        &[("color", "\"red\""), ("secret", "\"s\"")],
    )
    .await;
    assert!(
        h.receive("filters/subscriptions/multi", Method::DELETE, 0)
            .await
            .is_some()
    );
    assert!(
        h.lock("filters/subscriptions/multi").await.is_none(),
        "two plain rules, one copy"
    );
    let mut tiers = Vec::new();
    while let Some(got) = h
        .receive("filters/subscriptions/actions", Method::DELETE, 0)
        .await
    {
        tiers.push((
            got.header("tier").unwrap(),
            got.header("rulename").unwrap(),
            got.header("secret"),
        ));
    }
    tiers.sort();
    assert_eq!(
        tiers,
        vec![
            ("\"gold\"".to_string(), "\"gold\"".to_string(), None),
            (
                "\"silver\"".to_string(),
                "\"silver\"".to_string(),
                Some("\"s\"".to_string())
            )
        ]
    );
    let plain = h.lock("filters/subscriptions/plain").await.unwrap();
    assert_eq!(
        plain.header("tier"),
        None,
        "other subscriptions see the original"
    );
    assert_eq!(plain.header("secret").as_deref(), Some("\"s\""));
}

// ----- Sessions -----

#[tokio::test]
async fn a_session_queue_refuses_messages_without_a_session_id() {
    let h = Harness::start().await;
    assert_eq!(
        h.send("sessions", b"x", Value::Null, &[]).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        h.send("sessions", b"x", json!({"SessionId": "a"}), &[])
            .await,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn a_plain_receive_on_a_session_entity_is_405() {
    let h = Harness::start().await;
    let response = h
        .authed(Method::POST, "sessions/messages/head?timeout=0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("non-sessionful message receiver")
    );
}

#[tokio::test]
async fn a_sessionless_message_is_dead_lettered_in_a_session_subscription() {
    let h = Harness::start().await;
    assert_eq!(
        h.send("sess-topic", b"x", Value::Null, &[]).await,
        StatusCode::CREATED
    );
    let dead = h
        .lock("sess-topic/subscriptions/sess/$DeadLetterQueue")
        .await
        .unwrap();
    assert_eq!(
        dead.header("deadletterreason").as_deref(),
        Some("\"Session ID is null.\"")
    );
}

// ----- Forwarding -----

#[tokio::test]
async fn forward_to_moves_the_message_and_keeps_its_original_sequence_number() {
    let h = Harness::start().await;
    h.send("fwd-src", b"x", Value::Null, &[]).await;
    assert!(h.lock("fwd-src").await.is_none());
    let got = h.lock("fwd-dst").await.unwrap();
    assert_eq!(got.props["EnqueuedSequenceNumber"], 1);
}

#[tokio::test]
async fn a_forwarding_chain_over_four_hops_dead_letters_the_message() {
    let h = Harness::start().await;
    h.send("chain1", b"x", Value::Null, &[]).await;
    assert!(h.lock("chain6").await.is_none());
    let dead = h.lock("chain5/$DeadLetterQueue").await.unwrap();
    assert_eq!(
        dead.header("deadletterreason").as_deref(),
        Some("\"MaxTransferHopCountExceeded\"")
    );
}

#[tokio::test]
async fn dead_letters_are_forwarded_with_their_source() {
    let h = Harness::start().await;
    h.send("dl-src", b"x", Value::Null, &[]).await;
    let got = h.lock("dl-src").await.unwrap();
    h.on_lock(Method::PUT, &got.location()).await;
    assert!(h.lock("dl-src/$DeadLetterQueue").await.is_none());
    let moved = h.lock("dl-dst").await.unwrap();
    assert_eq!(
        moved.header("deadletterreason").as_deref(),
        Some("\"MaxDeliveryCountExceeded\"")
    );
    assert_eq!(moved.props["DeadLetterSource"], "dl-src");
}
