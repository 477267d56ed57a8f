//! Broker behaviours Azure offers only over AMQP (sessions, deferral, browse), tested through the
//! in-process API and the `$local` REST extras; and durability across restarts.

mod common;

use std::time::Duration;

use common::broker::{Harness, test_topology};
use docflow::broker::{BrokerError, ReceiveMode};
use docflow::servicebus::message::{Message, MessageState, ReceivedMessage};
use reqwest::{Method, StatusCode};
use serde_json::Value;

const NOW: Duration = Duration::ZERO;

/// Peek-locks the next message of `entity`, which must have one.
async fn lock_next(h: &Harness, entity: &str) -> ReceivedMessage {
    h.broker
        .receive(entity, false, ReceiveMode::PeekLock, NOW)
        .await
        .unwrap()
        .expect("a message")
}

/// Peek-locks the next message of a locked session, which must have one.
async fn lock_in_session(h: &Harness, lock: &docflow::broker::SessionLock) -> ReceivedMessage {
    h.broker
        .receive_in_session("sessions", lock, ReceiveMode::PeekLock, NOW)
        .await
        .unwrap()
        .expect("a session message")
}

/// Sends messages in process.
async fn put(h: &Harness, entity: &str, messages: Vec<Message>) {
    h.broker.send(entity, messages).await.unwrap();
}

async fn send_session(h: &Harness, session: &str, body: &str) {
    h.broker
        .send(
            "sessions",
            vec![Message::new(body).with_session_id(session)],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn sessions_deliver_in_order_and_one_receiver_holds_a_session() {
    let h = Harness::start().await;
    for (s, b) in [("A", "A1"), ("B", "B1"), ("A", "A2"), ("A", "A3")] {
        send_session(&h, s, b).await;
    }
    let a = h
        .broker
        .accept_session("sessions", None, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.session_id, "A");
    let b = h
        .broker
        .accept_session("sessions", None, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.session_id, "B", "a second acceptor never gets A");
    assert!(matches!(
        h.broker.accept_session("sessions", Some("A"), NOW).await,
        Err(BrokerError::SessionLocked(_))
    ));
    let mut bodies = Vec::new();
    while let Some(m) = h
        .broker
        .receive_in_session("sessions", &a, ReceiveMode::PeekLock, NOW)
        .await
        .unwrap()
    {
        bodies.push(String::from_utf8(m.message.body.clone()).unwrap());
        h.broker.complete_message("sessions", &m).await.unwrap();
    }
    assert_eq!(bodies, ["A1", "A2", "A3"]);
}

#[tokio::test]
async fn sessions_over_the_local_rest_extension() {
    let h = Harness::start().await;
    send_session(&h, "S", "S1").await;
    send_session(&h, "S", "S2").await;
    let response = h
        .authed(Method::POST, "sessions/$local/sessions/head?timeout=1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["x-local-session-id"], "S");
    let token = response.headers()["x-local-session-lock-token"]
        .to_str()
        .unwrap()
        .to_string();
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(response.bytes().await.unwrap(), "S1");
    assert_eq!(h.on_lock(Method::DELETE, &location).await, StatusCode::OK);
    let next = h
        .authed(
            Method::DELETE,
            "sessions/$local/sessions/S/messages/head?timeout=0",
        )
        .header("x-local-session-lock-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(next.status(), StatusCode::OK);
    assert_eq!(next.bytes().await.unwrap(), "S2");
    let wrong = h
        .authed(
            Method::DELETE,
            "sessions/$local/sessions/S/messages/head?timeout=0",
        )
        .header("x-local-session-lock-token", "not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_abandoned_session_message_comes_back_first() {
    let h = Harness::start().await;
    send_session(&h, "A", "A1").await;
    send_session(&h, "A", "A2").await;
    let lock = h
        .broker
        .accept_session("sessions", Some("A"), NOW)
        .await
        .unwrap()
        .unwrap();
    let first = lock_in_session(&h, &lock).await;
    h.broker.abandon_message("sessions", &first).await.unwrap();
    let again = lock_in_session(&h, &lock).await;
    assert_eq!(again.message.body, b"A1");
    assert_eq!(again.delivery_count, 2);
}

#[tokio::test]
async fn session_state_outlives_the_messages_and_can_be_cleared() {
    let h = Harness::start().await;
    send_session(&h, "A", "A1").await;
    let lock = h
        .broker
        .accept_session("sessions", Some("A"), NOW)
        .await
        .unwrap()
        .unwrap();
    h.broker
        .set_session_state("sessions", &lock, Some(b"X".to_vec()))
        .await
        .unwrap();
    let m = lock_in_session(&h, &lock).await;
    h.broker.complete_message("sessions", &m).await.unwrap();
    h.broker.close_session("sessions", &lock).await.unwrap();
    let again = h
        .broker
        .accept_session("sessions", Some("A"), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        h.broker.session_state("sessions", &again).await.unwrap(),
        Some(b"X".to_vec())
    );
    h.broker
        .set_session_state("sessions", &again, None)
        .await
        .unwrap();
    assert_eq!(
        h.broker.session_state("sessions", &again).await.unwrap(),
        None
    );
}

#[tokio::test]
async fn session_lock_expiry_counts_a_delivery_but_closing_does_not() {
    let h = Harness::start().await;
    send_session(&h, "A", "A1").await;
    let lock = h
        .broker
        .accept_session("sessions", Some("A"), NOW)
        .await
        .unwrap()
        .unwrap();
    lock_in_session(&h, &lock).await;
    h.advance(6);
    let lock = h
        .broker
        .accept_session("sessions", Some("A"), NOW)
        .await
        .unwrap()
        .unwrap();
    let m = lock_in_session(&h, &lock).await;
    assert_eq!(m.delivery_count, 2, "an expired session lock counts");
    h.broker.close_session("sessions", &lock).await.unwrap();
    let lock = h
        .broker
        .accept_session("sessions", Some("A"), NOW)
        .await
        .unwrap()
        .unwrap();
    let m = lock_in_session(&h, &lock).await;
    assert_eq!(m.delivery_count, 2, "closing the session does not count");
    assert!(matches!(
        h.broker
            .renew_session_lock(
                "sessions",
                &docflow::broker::SessionLock {
                    lock_token: "x".into(),
                    ..lock.clone()
                }
            )
            .await,
        Err(BrokerError::SessionLockLost)
    ));
    assert!(h.broker.renew_session_lock("sessions", &lock).await.is_ok());
}

#[tokio::test]
async fn a_deferred_message_is_received_only_by_sequence_number() {
    let h = Harness::start().await;
    put(&h, "q", vec![Message::new("d")]).await;
    let m = lock_next(&h, "q").await;
    h.broker.defer_message("q", &m).await.unwrap();
    assert!(
        h.broker
            .receive("q", false, ReceiveMode::PeekLock, NOW)
            .await
            .unwrap()
            .is_none()
    );
    let response = h
        .authed(
            Method::POST,
            &format!("q/$local/deferred/{}", m.sequence_number),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let props: Value =
        serde_json::from_str(response.headers()["brokerproperties"].to_str().unwrap()).unwrap();
    assert_eq!(props["State"], "Deferred");
    let missing = h
        .authed(Method::POST, "q/$local/deferred/999")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn browse_shows_every_state_in_order_and_changes_nothing() {
    let h = Harness::start().await;
    let later = chrono::Utc::now() + chrono::Duration::minutes(5);
    put(&h, "q", vec![Message::new("active")]).await;
    h.broker
        .send(
            "q",
            vec![Message::new("scheduled").with_scheduled_enqueue_time(later)],
        )
        .await
        .unwrap();
    put(&h, "q", vec![Message::new("deferred")]).await;
    put(&h, "q", vec![Message::new("locked")]).await;
    let first = lock_next(&h, "q").await;
    h.broker.abandon_message("q", &first).await.unwrap();
    let active_again = lock_next(&h, "q").await;
    h.broker.abandon_message("q", &active_again).await.unwrap();
    // Defer "deferred" (seq 3) and keep "locked" (seq 4) locked.
    let _a = lock_next(&h, "q").await;
    let d = lock_next(&h, "q").await;
    h.broker.defer_message("q", &d).await.unwrap();
    let _l = lock_next(&h, "q").await;
    let seen = h.broker.browse("q", false, 0, 100).await.unwrap();
    let view: Vec<(i64, String, MessageState)> = seen
        .iter()
        .map(|m| {
            (
                m.sequence_number,
                String::from_utf8(m.message.body.clone()).unwrap(),
                m.state,
            )
        })
        .collect();
    assert_eq!(
        view,
        vec![
            (1, "active".into(), MessageState::Active),
            (2, "scheduled".into(), MessageState::Scheduled),
            (3, "deferred".into(), MessageState::Deferred),
            (4, "locked".into(), MessageState::Active)
        ]
    );
    assert!(seen.iter().all(|m| m.lock_token.is_none()));
    let again = h.broker.browse("q", false, 2, 2).await.unwrap();
    assert_eq!(
        again.iter().map(|m| m.sequence_number).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(
        seen[0].delivery_count,
        again_count(&h).await,
        "browsing does not count deliveries"
    );
    let counts = h.broker.counts("q").await.unwrap();
    assert_eq!(
        (counts.scheduled, counts.deferred, counts.locked),
        (1, 1, 2)
    );
}

async fn again_count(h: &Harness) -> u32 {
    h.broker.browse("q", false, 1, 1).await.unwrap()[0].delivery_count
}

#[tokio::test]
async fn dead_lettering_by_the_receiver_records_reason_and_description() {
    let h = Harness::start().await;
    put(&h, "q", vec![Message::new("bad")]).await;
    let m = lock_next(&h, "q").await;
    h.broker
        .dead_letter_message("q", &m, "PoisonTask", "unknown kind")
        .await
        .unwrap();
    let dead = h
        .broker
        .receive("q", true, ReceiveMode::ReceiveAndDelete, NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dead.dead_letter_reason(), Some("PoisonTask"));
    assert_eq!(dead.dead_letter_description(), Some("unknown kind"));
    assert_eq!(
        dead.sequence_number, m.sequence_number,
        "the dead-letter queue keeps the sequence number"
    );
}

#[tokio::test]
async fn the_local_clock_endpoint_advances_time() {
    let h = Harness::start().await;
    h.send("q", b"x", Value::Null, &[]).await;
    let first = h.lock("q").await.unwrap();
    let response = h
        .authed(Method::POST, "$local/clock?advance=PT6S")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        h.on_lock(Method::DELETE, &first.location()).await,
        StatusCode::NOT_FOUND
    );
    let bad = h
        .authed(Method::POST, "$local/clock?advance=soon")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_restarted_broker_keeps_messages_and_expires_the_locks_of_dead_consumers() {
    let h = Harness::start().await;
    put(&h, "q", vec![Message::new("locked"), Message::new("kept")]).await;
    let _held = lock_next(&h, "q").await;
    let dir = h.stop();
    let h = Harness::start_with(test_topology(), dir).await;
    let m = lock_next(&h, "q").await;
    assert_eq!(
        m.message.body, b"kept",
        "the locked message stays locked across the restart"
    );
    h.advance(6);
    let m = lock_next(&h, "q").await;
    assert_eq!(m.message.body, b"locked");
    assert_eq!(
        m.delivery_count, 2,
        "the dead consumer's lock expired and counted"
    );
}
