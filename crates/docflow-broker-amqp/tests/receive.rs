//! Peek-lock receiving over AMQP: credit, lock-token delivery tags, the annotations' exact
//! types, settlement echoes, abandon and redelivery, drain, and a lost lock.

mod common;

use std::time::Duration;

use common::{Client, attach_frame, authorized, start};
use docflow_amqp::delivery_state::{Accepted, DeliveryState, Modified};
use docflow_amqp::message::Message;
use docflow_amqp::performative::{Disposition, Flow};
use docflow_amqp::{Performative, ReceiverSettleMode, Role, SenderSettleMode, Value};
use docflow_broker::ReceiveMode;
use docflow_servicebus::message::Message as BrokerMessage;

async fn receiver(port: u16) -> Client {
    let mut client = authorized(port, "q").await;
    let mut attach = attach_frame("receiver", 2, Role::Receiver, "q");
    attach.rcv_settle_mode = ReceiverSettleMode::Second;
    attach.snd_settle_mode = SenderSettleMode::Unsettled;
    client.send(0, attach.into(), &[]).await;
    let Performative::Attach(reply) = client.recv().await.1 else {
        panic!("expected attach");
    };
    assert_eq!(reply.source.unwrap().address.as_deref(), Some("q"));
    assert_eq!(reply.initial_delivery_count, Some(0));
    client
}

async fn credit(client: &mut Client, delivery_count: u32, credit: u32, drain: bool) {
    let flow = Flow {
        next_incoming_id: Some(0),
        incoming_window: 5000,
        next_outgoing_id: 1,
        outgoing_window: 5000,
        handle: Some(2),
        delivery_count: Some(delivery_count),
        link_credit: Some(credit),
        drain,
        ..Flow::default()
    };
    client.send(0, flow.into(), &[]).await;
}

/// The next delivery on the receiver link: id, tag and message.
async fn delivery(client: &mut Client) -> (u32, Vec<u8>, Message) {
    loop {
        if let (_, Performative::Transfer(t), payload) = client.recv().await {
            assert_eq!(t.handle, 2);
            assert_eq!(t.settled, Some(false));
            return (
                t.delivery_id.unwrap(),
                t.delivery_tag.unwrap(),
                Message::decode(&payload).unwrap(),
            );
        }
    }
}

async fn settle(client: &mut Client, id: u32, state: DeliveryState) -> DeliveryState {
    let disposition = Disposition {
        role: Role::Receiver,
        first: id,
        last: None,
        settled: false,
        state: Some(state),
        batchable: false,
    };
    client.send(0, disposition.into(), &[]).await;
    let Performative::Disposition(echo) = client.recv().await.1 else {
        panic!("expected the disposition echo");
    };
    assert_eq!(
        (echo.role, echo.first, echo.settled),
        (Role::Sender, id, true)
    );
    echo.state.expect("an outcome")
}

fn annotation<'a>(m: &'a Message, key: &str) -> &'a Value {
    m.message_annotations
        .iter()
        .flatten()
        .find(|(k, _)| *k == Value::Symbol(key.into()))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{key} is annotated"))
}

#[tokio::test]
async fn peek_lock_delivers_with_lock_token_tags_and_exact_types_and_complete_is_echoed() {
    let server = start().await;
    for body in ["one", "two"] {
        let message = BrokerMessage::new(body).with_property("n", 5i64);
        server.broker.send("q", vec![message]).await.unwrap();
    }
    let mut client = receiver(server.port).await;
    credit(&mut client, 0, 1, false).await;
    let (id, tag, message) = delivery(&mut client).await;
    assert_eq!(tag.len(), 16, "the lock token is the delivery tag");
    assert_eq!(
        message.body,
        docflow_amqp::Body::Data(vec![b"one".to_vec()])
    );
    assert_eq!(message.header.as_ref().unwrap().delivery_count, Some(0));
    assert!(matches!(annotation(&message, "x-opt-sequence-number"), Value::Long(n) if *n >= 1));
    assert!(matches!(
        annotation(&message, "x-opt-enqueued-time"),
        Value::Timestamp(_)
    ));
    assert!(matches!(
        annotation(&message, "x-opt-locked-until"),
        Value::Timestamp(_)
    ));
    assert_eq!(annotation(&message, "x-opt-message-state"), &Value::Int(0));
    let props = message.application_properties.unwrap();
    assert_eq!(props, vec![("n".to_string(), Value::Long(5))]);

    let echo = settle(&mut client, id, DeliveryState::Accepted(Accepted)).await;
    assert_eq!(echo, DeliveryState::Accepted(Accepted));
    // One credit, one delivery: "two" is still in the queue, and "one" is gone.
    let left = server
        .broker
        .receive("q", false, ReceiveMode::ReceiveAndDelete, Duration::ZERO)
        .await
        .unwrap()
        .expect("the second message");
    assert_eq!(left.message.body, b"two");
    assert!(
        server
            .broker
            .receive("q", false, ReceiveMode::ReceiveAndDelete, Duration::ZERO)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn abandon_is_echoed_and_the_message_comes_back_with_its_delivery_count() {
    let server = start().await;
    server
        .broker
        .send("q", vec![BrokerMessage::new("again")])
        .await
        .unwrap();
    let mut client = receiver(server.port).await;
    credit(&mut client, 0, 1, false).await;
    let (id, _, _) = delivery(&mut client).await;
    let abandon = DeliveryState::Modified(Modified {
        delivery_failed: Some(true),
        ..Modified::default()
    });
    assert_eq!(settle(&mut client, id, abandon.clone()).await, abandon);
    credit(&mut client, 1, 1, false).await;
    let (_, _, message) = delivery(&mut client).await;
    assert_eq!(message.header.unwrap().delivery_count, Some(1));
}

#[tokio::test]
async fn drain_on_an_empty_queue_uses_up_the_credit() {
    let server = start().await;
    let mut client = receiver(server.port).await;
    credit(&mut client, 0, 5, true).await;
    let Performative::Flow(flow) = client.recv().await.1 else {
        panic!("expected the drain flow");
    };
    assert_eq!(flow.handle, Some(2));
    assert!(flow.drain);
    assert_eq!((flow.delivery_count, flow.link_credit), (Some(5), Some(0)));
}

#[tokio::test]
async fn a_drain_while_a_fetch_waits_is_answered_at_once() {
    let server = start().await;
    let mut client = receiver(server.port).await;
    // Credit first: the broker starts waiting for a message; the drain comes meanwhile.
    credit(&mut client, 0, 5, false).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = std::time::Instant::now();
    credit(&mut client, 0, 5, true).await;
    let Performative::Flow(flow) = client.recv().await.1 else {
        panic!("expected the drain flow");
    };
    let took = asked.elapsed();
    assert!(flow.drain);
    assert_eq!((flow.delivery_count, flow.link_credit), (Some(5), Some(0)));
    // The JavaScript SDK gives a drain 200 ms before it closes the link.
    assert!(took < Duration::from_millis(150), "the drain took {took:?}");
    // New credit after the drain: a message sent now is delivered.
    credit(&mut client, 5, 1, false).await;
    server
        .broker
        .send("q", vec![BrokerMessage::new(b"after".to_vec())])
        .await
        .unwrap();
    let (_, _, message) = delivery(&mut client).await;
    assert_eq!(
        message.body,
        docflow_amqp::message::Body::Data(vec![b"after".to_vec()])
    );
}

#[tokio::test]
async fn settling_after_the_lock_expired_is_answered_with_message_lock_lost() {
    let server = start().await;
    server
        .broker
        .send("q", vec![BrokerMessage::new("slow")])
        .await
        .unwrap();
    let mut client = receiver(server.port).await;
    credit(&mut client, 0, 1, false).await;
    let (id, _, _) = delivery(&mut client).await;
    server.broker.advance_clock(Duration::from_secs(600));
    let DeliveryState::Rejected(rejected) =
        settle(&mut client, id, DeliveryState::Accepted(Accepted)).await
    else {
        panic!("expected rejected");
    };
    assert_eq!(
        rejected.error.unwrap().condition,
        "com.microsoft:message-lock-lost"
    );
}
