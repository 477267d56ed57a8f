//! `$management` request/response links with raw frames, where the exact AMQP types matter:
//! the correlation id's type, `statusCode` as an int, `errorCondition` as a symbol, arrays
//! (not lists) of timestamps and longs, lock tokens as uuids, 204 for an empty peek, and lock
//! tokens of receiver links settled through `update-disposition`.

mod common;

use std::time::Duration;

use common::{Client, attach_frame, authorized, start};
use docflow_amqp::message::{Message, Properties};
use docflow_amqp::performative::Flow;
use docflow_amqp::{
    Array, Body, ElementType, Performative, ReceiverSettleMode, Role, SenderSettleMode, Value,
};
use docflow_broker::ReceiveMode;
use docflow_servicebus::message::{Message as BrokerMessage, PropertyValue};

/// A client with a token for `q`, management links on `q/$management` (requests on handle 2,
/// replies on handle 3 with target `reply-here`) and credit for the replies.
async fn management_client(port: u16) -> Client {
    management_client_for(port, "q").await
}

/// A client with a token for `entity` and request and reply links on its `$management`.
async fn management_client_for(port: u16, entity: &str) -> Client {
    let node = format!("{entity}/$management");
    let mut client = authorized(port, entity).await;
    client.attach("mgmt-requests", 2, Role::Sender, &node).await;
    let Performative::Attach(_) = client.recv().await.1 else {
        panic!("expected the request link's attach");
    };
    let Performative::Flow(_) = client.recv().await.1 else {
        panic!("expected credit for requests");
    };
    let mut replies = attach_frame("mgmt-replies", 3, Role::Receiver, &node);
    replies.target.as_mut().unwrap().address = Some("reply-here".into());
    client.send(0, replies.into(), &[]).await;
    let Performative::Attach(reply) = client.recv().await.1 else {
        panic!("expected the reply link's attach");
    };
    assert_eq!(
        reply.source.unwrap().address.as_deref(),
        Some(node.as_str())
    );
    let flow = Flow {
        next_incoming_id: Some(0),
        incoming_window: 5000,
        next_outgoing_id: 10,
        outgoing_window: 5000,
        handle: Some(3),
        delivery_count: Some(0),
        link_credit: Some(100),
        ..Flow::default()
    };
    client.send(0, flow.into(), &[]).await;
    client
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::String(k.into()), v))
            .collect(),
    )
}

fn array(element: ElementType, items: Vec<Value>) -> Value {
    Value::Array(Array::new(None, element, items).unwrap())
}

/// Sends a request and returns the reply (after checking its correlation id) and the request
/// delivery's outcome.
async fn request(client: &mut Client, operation: &str, id: Value, body: Value) -> Message {
    let request = Message {
        properties: Some(Properties {
            message_id: Some(id.clone()),
            reply_to: Some("reply-here".into()),
            ..Properties::default()
        }),
        application_properties: Some(vec![
            ("operation".into(), Value::String(operation.into())),
            ("type".into(), Value::String("entity-mgmt".into())),
        ]),
        ..Message::with_value(body)
    };
    client.transfer(2, 0, &request.encode(), 1 << 20).await;
    let (mut reply, mut accepted) = (None, false);
    while reply.is_none() || !accepted {
        match client.recv().await {
            (_, Performative::Transfer(t), payload) => {
                assert_eq!((t.handle, t.settled), (3, Some(true)));
                reply = Some(Message::decode(&payload).unwrap());
            }
            (_, Performative::Disposition(d), _) => {
                assert!(d.settled);
                accepted = true;
            }
            (_, Performative::Flow(_), _) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let reply = reply.unwrap();
    assert_eq!(
        reply.properties.as_ref().unwrap().correlation_id,
        Some(id),
        "correlation-id is the request's message-id, in its type"
    );
    reply
}

fn property<'a>(reply: &'a Message, name: &str) -> Option<&'a Value> {
    reply
        .application_properties
        .iter()
        .flatten()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

fn status_code(reply: &Message) -> Value {
    property(reply, "statusCode").cloned().expect("statusCode")
}

fn body_entry<'a>(reply: &'a Message, name: &str) -> &'a Value {
    let Body::Value(Value::Map(entries)) = &reply.body else {
        panic!("expected a map body, got {:?}", reply.body);
    };
    entries
        .iter()
        .find(|(k, _)| *k == Value::String(name.into()))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("{name} in the body"))
}

fn uuid_of(token: &str) -> Value {
    Value::Uuid(*uuid::Uuid::parse_str(token).unwrap().as_bytes())
}

#[tokio::test]
async fn renew_lock_and_update_disposition_serve_tokens_of_any_receiver() {
    let server = start().await;
    server
        .broker
        .send("q", vec![BrokerMessage::new("locked")])
        .await
        .unwrap();
    let locked = server
        .broker
        .receive("q", false, ReceiveMode::PeekLock, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    let token = locked.lock_token.clone().unwrap();
    let mut client = management_client(server.port).await;
    server.broker.advance_clock(Duration::from_secs(5));
    let lock_tokens = array(ElementType::Uuid, vec![uuid_of(&token)]);
    let reply = request(
        &mut client,
        "com.microsoft:renew-lock",
        Value::Uuid([9; 16]),
        map(vec![("lock-tokens", lock_tokens.clone())]),
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(200));
    let Value::Array(expirations) = body_entry(&reply, "expirations") else {
        panic!("expirations is an array");
    };
    assert_eq!(expirations.element(), ElementType::Timestamp);
    let Value::Timestamp(until) = expirations.items()[0] else {
        panic!("a timestamp");
    };
    assert!(until > locked.locked_until.unwrap().timestamp_millis());

    let complete = map(vec![
        ("lock-tokens", lock_tokens.clone()),
        ("disposition-status", Value::String("completed".into())),
    ]);
    let reply = request(
        &mut client,
        "com.microsoft:update-disposition",
        Value::String("complete-1".into()),
        complete.clone(),
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(200));
    assert_eq!(server.broker.counts("q").await.unwrap().active, 0);
    // The lock is gone now: a typed error.
    let reply = request(
        &mut client,
        "com.microsoft:update-disposition",
        Value::Ulong(3),
        complete,
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(410));
    assert_eq!(
        property(&reply, "errorCondition"),
        Some(&Value::Symbol("com.microsoft:message-lock-lost".into()))
    );
    assert!(matches!(
        property(&reply, "statusDescription"),
        Some(Value::String(_))
    ));
}

#[tokio::test]
async fn peek_answers_204_when_empty_and_encoded_messages_otherwise() {
    let server = start().await;
    let mut client = management_client(server.port).await;
    let peek = map(vec![
        ("from-sequence-number", Value::Long(1)),
        ("message-count", Value::Int(10)),
    ]);
    let reply = request(
        &mut client,
        "com.microsoft:peek-message",
        Value::String("p1".into()),
        peek.clone(),
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(204));
    for body in ["a", "b"] {
        let m = BrokerMessage::new(body).with_property("n", 1i64);
        server.broker.send("q", vec![m]).await.unwrap();
    }
    let reply = request(
        &mut client,
        "com.microsoft:peek-message",
        Value::String("p2".into()),
        peek,
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(200));
    let Value::List(messages) = body_entry(&reply, "messages") else {
        panic!("messages is a list");
    };
    assert_eq!(messages.len(), 2);
    let Value::Map(first) = &messages[0] else {
        panic!("each entry is a map");
    };
    assert_eq!(first.len(), 1, "a peeked message has no lock token");
    let (Value::String(key), Value::Binary(encoded)) = &first[0] else {
        panic!("message: binary");
    };
    assert_eq!(key, "message");
    let message = Message::decode(encoded).unwrap();
    assert_eq!(message.body, Body::Data(vec![b"a".to_vec()]));
    let annotations = message.message_annotations.unwrap();
    assert!(annotations.contains(&(
        Value::Symbol("x-opt-sequence-number".into()),
        Value::Long(1)
    )));
    // Peeking locks nothing.
    assert_eq!(server.broker.counts("q").await.unwrap().locked, 0);
}

#[tokio::test]
async fn schedule_returns_an_array_of_longs_and_cancel_removes_the_message() {
    let server = start().await;
    let mut client = management_client(server.port).await;
    let at = server.broker.now() + 60_000;
    let scheduled = Message {
        properties: Some(Properties {
            message_id: Some(Value::String("m-1".into())),
            ..Properties::default()
        }),
        message_annotations: Some(vec![(
            Value::Symbol("x-opt-scheduled-enqueue-time".into()),
            Value::Timestamp(at),
        )]),
        ..Message::with_data(b"later".to_vec())
    };
    let entry = map(vec![
        ("message-id", Value::String("m-1".into())),
        ("message", Value::Binary(scheduled.encode())),
    ]);
    let reply = request(
        &mut client,
        "com.microsoft:schedule-message",
        Value::String("s1".into()),
        map(vec![("messages", Value::List(vec![entry]))]),
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(200));
    let Value::Array(numbers) = body_entry(&reply, "sequence-numbers") else {
        panic!("sequence-numbers is an array");
    };
    assert_eq!(numbers.element(), ElementType::Long);
    let Value::Long(seq) = numbers.items()[0] else {
        panic!("a long");
    };
    let counts = server.broker.counts("q").await.unwrap();
    assert_eq!((counts.scheduled, counts.active), (1, 0));

    let cancel = map(vec![(
        "sequence-numbers",
        array(ElementType::Long, vec![Value::Long(seq)]),
    )]);
    let reply = request(
        &mut client,
        "com.microsoft:cancel-scheduled-message",
        Value::String("c1".into()),
        cancel.clone(),
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(200));
    assert_eq!(server.broker.counts("q").await.unwrap().scheduled, 0);
    let reply = request(
        &mut client,
        "com.microsoft:cancel-scheduled-message",
        Value::String("c2".into()),
        cancel,
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(404));
    assert_eq!(
        property(&reply, "errorCondition"),
        Some(&Value::Symbol("com.microsoft:message-not-found".into()))
    );
}

#[tokio::test]
async fn deferred_messages_come_back_by_sequence_number_with_uuid_lock_tokens() {
    let server = start().await;
    server
        .broker
        .send("q", vec![BrokerMessage::new("later")])
        .await
        .unwrap();
    let got = server
        .broker
        .receive("q", false, ReceiveMode::PeekLock, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    server.broker.defer_message("q", &got).await.unwrap();
    let mut client = management_client(server.port).await;
    let by_seq = map(vec![
        (
            "sequence-numbers",
            array(ElementType::Long, vec![Value::Long(got.sequence_number)]),
        ),
        ("receiver-settle-mode", Value::Uint(1)),
    ]);
    let reply = request(
        &mut client,
        "com.microsoft:receive-by-sequence-number",
        Value::String("r1".into()),
        by_seq.clone(),
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(200));
    let Value::List(messages) = body_entry(&reply, "messages") else {
        panic!("messages is a list");
    };
    let Value::Map(entry) = &messages[0] else {
        panic!("a map");
    };
    let token = entry
        .iter()
        .find(|(k, _)| *k == Value::String("lock-token".into()))
        .map(|(_, v)| v.clone())
        .expect("a lock token");
    assert!(matches!(token, Value::Uuid(_)), "{token:?}");
    let Value::Binary(encoded) = &entry[0].1 else {
        panic!("binary");
    };
    let message = Message::decode(encoded).unwrap();
    assert!(
        message
            .message_annotations
            .unwrap()
            .contains(&(Value::Symbol("x-opt-message-state".into()), Value::Int(1)))
    );

    // Dead-letter it through management, with a property to modify.
    let suspend = map(vec![
        ("lock-tokens", array(ElementType::Uuid, vec![token.clone()])),
        ("disposition-status", Value::String("suspended".into())),
        ("deadletter-reason", Value::String("Poison".into())),
        (
            "deadletter-description",
            Value::String("cannot parse".into()),
        ),
        (
            "properties-to-modify",
            Value::Map(vec![(Value::String("seen".into()), Value::Boolean(true))]),
        ),
    ]);
    let reply = request(
        &mut client,
        "com.microsoft:update-disposition",
        Value::String("d1".into()),
        suspend,
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(200));
    let dead = server
        .broker
        .receive("q", true, ReceiveMode::ReceiveAndDelete, Duration::ZERO)
        .await
        .unwrap()
        .expect("the dead-lettered message");
    assert_eq!(dead.dead_letter_reason(), Some("Poison"));
    assert_eq!(
        dead.message.property("seen"),
        Some(&PropertyValue::Bool(true))
    );
    // It is no longer deferred.
    let reply = request(
        &mut client,
        "com.microsoft:receive-by-sequence-number",
        Value::String("r2".into()),
        by_seq,
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(404));
}

#[tokio::test]
async fn session_operations_need_a_held_session_and_bad_requests_are_refused() {
    let server = start().await;
    let mut client = management_client(server.port).await;
    // No receiver of this connection holds session `s`: its lock is lost, as on Azure.
    let reply = request(
        &mut client,
        "com.microsoft:get-session-state",
        Value::String("g".into()),
        map(vec![("session-id", Value::String("s".into()))]),
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(410));
    assert_eq!(
        property(&reply, "errorCondition"),
        Some(&Value::Symbol("com.microsoft:session-lock-lost".into()))
    );
    let reply = request(
        &mut client,
        "com.microsoft:renew-lock",
        Value::String("bad".into()),
        map(vec![("lock-tokens", Value::Long(1))]),
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(400));
    assert_eq!(
        property(&reply, "errorCondition"),
        Some(&Value::Symbol("com.microsoft:argument-error".into()))
    );
}

#[tokio::test]
async fn a_management_link_needs_a_token_for_its_entity() {
    let server = start().await;
    let mut client = management_client(server.port).await;
    // The token is for `q`; `t` has none.
    client
        .attach("other-requests", 4, Role::Sender, "t/$management")
        .await;
    let Performative::Attach(reply) = client.recv().await.1 else {
        panic!("expected attach");
    };
    assert!(reply.target.is_none(), "a refused link has a null target");
    let Performative::Detach(detach) = client.recv().await.1 else {
        panic!("expected detach");
    };
    assert_eq!(detach.error.unwrap().condition, "amqp:unauthorized-access");
    client
        .attach("missing", 5, Role::Sender, "nope/$management")
        .await;
    let _ = client.recv().await;
    let Performative::Detach(detach) = client.recv().await.1 else {
        panic!("expected detach");
    };
    assert_eq!(detach.error.unwrap().condition, "amqp:not-found");
}

#[tokio::test]
async fn receive_and_delete_links_get_pre_settled_deliveries_and_the_message_is_gone() {
    let server = start().await;
    server
        .broker
        .send("q", vec![BrokerMessage::new("once")])
        .await
        .unwrap();
    let mut client = management_client(server.port).await;
    let mut attach = attach_frame("rd", 4, Role::Receiver, "q");
    attach.snd_settle_mode = SenderSettleMode::Settled;
    attach.rcv_settle_mode = ReceiverSettleMode::First;
    client.send(0, attach.into(), &[]).await;
    let Performative::Attach(reply) = client.recv().await.1 else {
        panic!("expected attach");
    };
    assert_eq!(reply.snd_settle_mode, SenderSettleMode::Settled);
    let flow = Flow {
        next_incoming_id: Some(0),
        incoming_window: 5000,
        next_outgoing_id: 10,
        outgoing_window: 5000,
        handle: Some(4),
        delivery_count: Some(0),
        link_credit: Some(5),
        ..Flow::default()
    };
    client.send(0, flow.into(), &[]).await;
    let (transfer, payload) = loop {
        if let (_, Performative::Transfer(t), payload) = client.recv().await {
            break (t, payload);
        }
    };
    assert_eq!((transfer.handle, transfer.settled), (4, Some(true)));
    assert_eq!(transfer.delivery_tag.unwrap().len(), 16);
    let message = Message::decode(&payload).unwrap();
    assert_eq!(message.body, Body::Data(vec![b"once".to_vec()]));
    let annotations = message.message_annotations.unwrap();
    assert!(
        !annotations
            .iter()
            .any(|(k, _)| *k == Value::Symbol("x-opt-locked-until".into())),
        "nothing is locked"
    );
    let counts = server.broker.counts("q").await.unwrap();
    assert_eq!((counts.active, counts.locked), (0, 0), "taken out at once");
}

#[tokio::test]
async fn get_message_sessions_lists_the_sessions_with_messages() {
    let server = start().await;
    let messages = ["B", "A", "B"]
        .iter()
        .map(|id| docflow_servicebus::message::Message::new("x").with_session_id(*id))
        .collect();
    server.broker.send("sessions", messages).await.unwrap();
    let mut client = management_client_for(server.port, "sessions").await;
    let list = |skip: i32| map(vec![("skip", Value::Int(skip)), ("top", Value::Int(10))]);
    let reply = request(
        &mut client,
        "com.microsoft:get-message-sessions",
        Value::String("s1".into()),
        list(0),
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(200));
    let Value::Array(ids) = body_entry(&reply, "sessions-ids") else {
        panic!("sessions-ids is an array");
    };
    assert_eq!(
        ids.items(),
        [Value::String("A".into()), Value::String("B".into())]
    );
    let reply = request(
        &mut client,
        "com.microsoft:get-message-sessions",
        Value::String("s2".into()),
        list(2),
    )
    .await;
    assert_eq!(status_code(&reply), Value::Int(204), "none past the end");
}
