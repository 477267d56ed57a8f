//! What the broker answers to deliveries it cannot take, and the session id mapping.

mod common;

use std::time::Duration;

use common::{Client, attach_sender, authorized, expect_accepted, start};
use docflow_amqp::delivery_state::DeliveryState;
use docflow_amqp::message::{Message, Properties};
use docflow_amqp::performative::Flow;
use docflow_amqp::{Performative, Role};
use docflow_broker::ReceiveMode;

async fn expect_rejected(client: &mut Client, id: u32) -> String {
    let Performative::Disposition(d) = client.recv().await.1 else {
        panic!("expected disposition");
    };
    assert_eq!((d.first, d.settled), (id, true));
    let Some(DeliveryState::Rejected(rejected)) = d.state else {
        panic!("expected rejected, got {:?}", d.state);
    };
    rejected.error.expect("an error").condition
}

#[tokio::test]
async fn an_oversized_message_is_rejected_with_message_size_exceeded() {
    let server = start().await;
    let mut client = authorized(server.port, "").await;
    attach_sender(&mut client, "q", true).await;
    let big = Message::with_data(vec![b'x'; 300 * 1024]).encode();
    let id = client.transfer(2, 0, &big, 3000).await;
    assert_eq!(
        expect_rejected(&mut client, id).await,
        "amqp:link:message-size-exceeded"
    );
    // The link stays usable.
    let id = client
        .transfer(2, 0, &Message::with_data(b"small".to_vec()).encode(), 3000)
        .await;
    expect_accepted(&mut client, id).await;
}

#[tokio::test]
async fn group_id_is_the_session_id_and_a_session_queue_requires_it() {
    let server = start().await;
    let mut client = authorized(server.port, "").await;
    attach_sender(&mut client, "sessions", true).await;
    let id = client
        .transfer(
            2,
            0,
            &Message::with_data(b"no session".to_vec()).encode(),
            1 << 20,
        )
        .await;
    assert_eq!(
        expect_rejected(&mut client, id).await,
        "com.microsoft:argument-error"
    );
    let message = Message {
        properties: Some(Properties {
            group_id: Some("s-1".into()),
            ..Properties::default()
        }),
        ..Message::with_data(b"in a session".to_vec())
    };
    let id = client.transfer(2, 0, &message.encode(), 1 << 20).await;
    expect_accepted(&mut client, id).await;
    let lock = server
        .broker
        .accept_session("sessions", Some("s-1"), Duration::ZERO)
        .await
        .unwrap()
        .expect("the session exists");
    let got = server
        .broker
        .receive_in_session(
            "sessions",
            &lock,
            ReceiveMode::ReceiveAndDelete,
            Duration::ZERO,
        )
        .await
        .unwrap()
        .expect("the message");
    assert_eq!(got.message.session_id.as_deref(), Some("s-1"));
    assert_eq!(got.message.body, b"in a session");
}

#[tokio::test]
async fn a_topic_accepts_sends_and_a_namespace_token_covers_it() {
    let server = start().await;
    let mut client = authorized(server.port, "").await;
    attach_sender(&mut client, "/T", true).await;
    let id = client
        .transfer(
            2,
            0,
            &Message::with_data(b"fan out".to_vec()).encode(),
            1 << 20,
        )
        .await;
    expect_accepted(&mut client, id).await;
    let got = server
        .broker
        .receive(
            "t/subscriptions/s",
            false,
            ReceiveMode::ReceiveAndDelete,
            Duration::ZERO,
        )
        .await
        .unwrap()
        .expect("the subscription's copy");
    assert_eq!(got.message.body, b"fan out");
}

#[tokio::test]
async fn a_receiver_link_neither_pre_settled_nor_settling_second_is_refused() {
    let server = start().await;
    let mut client = authorized(server.port, "").await;
    // The defaults, snd-settle-mode mixed and rcv-settle-mode first: neither receive-and-delete
    // (settled) nor peek-lock (second).
    client.attach("receiver", 2, Role::Receiver, "q").await;
    let Performative::Attach(reply) = client.recv().await.1 else {
        panic!("expected attach");
    };
    assert!(
        reply.source.is_none(),
        "a refused receiver link has a null source"
    );
    let Performative::Detach(detach) = client.recv().await.1 else {
        panic!("expected detach");
    };
    assert_eq!(detach.error.unwrap().condition, "amqp:not-implemented");
}

#[tokio::test]
async fn a_flow_with_echo_on_a_sender_link_is_answered_with_the_link_state() {
    let server = start().await;
    let mut client = authorized(server.port, "").await;
    let (_, credit) = attach_sender(&mut client, "q", true).await;
    let flow = Flow {
        next_incoming_id: Some(0),
        incoming_window: 5000,
        next_outgoing_id: 1,
        outgoing_window: 5000,
        handle: Some(2),
        delivery_count: Some(0),
        echo: true,
        ..Flow::default()
    };
    client.send(0, flow.into(), &[]).await;
    let Performative::Flow(reply) = client.recv().await.1 else {
        panic!("expected flow");
    };
    assert_eq!(reply.handle, Some(2));
    assert_eq!(reply.link_credit, Some(credit));
    assert_eq!(reply.delivery_count, Some(0));
}
