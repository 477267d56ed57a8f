//! Sending over AMQP end to end: SASL, CBS put-token, a sender link, transfers, and the
//! message found in the broker by its in-process API.

mod common;

use std::time::Duration;

use common::{
    Client, EMULATOR_KEY, attach_sender, authorized, expect_accepted, start, status, token,
};
use docflow_amqp::message::{BATCH_MESSAGE_FORMAT, Header, Message, Properties, batch};
use docflow_amqp::{Performative, Role, Value};
use docflow_broker::ReceiveMode;
use docflow_servicebus::message::PropertyValue;

#[tokio::test]
async fn anonymous_sasl_put_token_and_a_message_sent_lands_in_the_broker() {
    let server = start().await;
    let mut client = Client::connect(server.port, Some("ANONYMOUS")).await;
    let audience = format!("sb://127.0.0.1:{}/q", server.port);
    let reply = client
        .put_token(
            &token(&audience, EMULATOR_KEY),
            &audience,
            Value::Uuid([7; 16]),
        )
        .await;
    assert_eq!(status(&reply), Value::Int(200));
    // The correlation-id keeps the request message-id's AMQP type (Python sends a uuid).
    assert_eq!(
        reply.properties.unwrap().correlation_id,
        Some(Value::Uuid([7; 16]))
    );

    let address = format!("amqps://127.0.0.1:{}/Q", server.port);
    let (reply, credit) = attach_sender(&mut client, &address, true).await;
    assert_eq!(reply.role, Role::Receiver);
    assert_eq!(
        reply.target.unwrap().address.as_deref(),
        Some(address.as_str())
    );
    assert_eq!(reply.max_message_size, Some(256 * 1024));
    assert!(credit > 0);

    let message = Message {
        header: Some(Header {
            ttl: Some(60_000),
            ..Header::default()
        }),
        properties: Some(Properties {
            message_id: Some(Value::String("m1".into())),
            correlation_id: Some(Value::String("c1".into())),
            subject: Some("label".into()),
            content_type: Some("text/plain".into()),
            ..Properties::default()
        }),
        application_properties: Some(vec![("color".into(), Value::String("red".into()))]),
        ..Message::with_data(b"hello over amqp".to_vec())
    };
    let id = client.transfer(2, 0, &message.encode(), 1 << 20).await;
    expect_accepted(&mut client, id).await;

    let got = server
        .broker
        .receive("q", false, ReceiveMode::ReceiveAndDelete, Duration::ZERO)
        .await
        .unwrap()
        .expect("the message sent over AMQP");
    assert_eq!(got.message.body, b"hello over amqp");
    assert_eq!(got.message.message_id.as_deref(), Some("m1"));
    assert_eq!(got.message.correlation_id.as_deref(), Some("c1"));
    assert_eq!(got.message.subject.as_deref(), Some("label"));
    assert_eq!(got.message.content_type.as_deref(), Some("text/plain"));
    assert_eq!(got.message.time_to_live, Some(Duration::from_secs(60)));
    assert_eq!(
        got.message.property("color"),
        Some(&PropertyValue::String("red".into()))
    );
}

#[tokio::test]
async fn mssbcbs_with_a_dotnet_audience_sends_a_multi_frame_batch_in_order() {
    let server = start().await;
    let mut client = Client::connect(server.port, Some("MSSBCBS")).await;
    // .NET: `amqp://host/entity`, no port; a string message-id.
    let audience = "amqp://127.0.0.1/q";
    let reply = client
        .put_token(
            &token(audience, EMULATOR_KEY),
            audience,
            Value::String("req-1".into()),
        )
        .await;
    assert_eq!(status(&reply), Value::Int(200));
    assert_eq!(
        reply.properties.unwrap().correlation_id,
        Some(Value::String("req-1".into()))
    );

    let (reply, _) = attach_sender(&mut client, "/q", false).await;
    assert_eq!(reply.target.unwrap().address.as_deref(), Some("/q"));
    let messages: Vec<Message> = (0..3)
        .map(|i| Message::with_data(format!("batch {i} {}", "x".repeat(3000)).into_bytes()))
        .collect();
    // Frames of 1000 payload bytes: the batch arrives in about ten transfers with more=true.
    let id = client
        .transfer(2, BATCH_MESSAGE_FORMAT, &batch(&messages).encode(), 1000)
        .await;
    expect_accepted(&mut client, id).await;

    for i in 0..3 {
        let got = server
            .broker
            .receive("q", false, ReceiveMode::ReceiveAndDelete, Duration::ZERO)
            .await
            .unwrap()
            .expect("each message of the batch");
        assert!(
            got.message
                .body
                .starts_with(format!("batch {i} ").as_bytes())
        );
    }
}

#[tokio::test]
async fn links_without_a_valid_token_or_entity_are_refused() {
    let server = start().await;
    let mut client = Client::connect(server.port, None).await;
    // A token signed with the wrong key: 401 on $cbs, and the link stays unauthorised.
    let audience = format!("sb://127.0.0.1:{}/q", server.port);
    let reply = client
        .put_token(&token(&audience, "not-the-key"), &audience, Value::Ulong(9))
        .await;
    assert_eq!(status(&reply), Value::Int(401));

    let refused = |condition: &'static str| {
        move |(reply, detach): (Performative, Performative)| {
            let Performative::Attach(reply) = reply else {
                panic!("expected attach, got {reply:?}");
            };
            assert!(
                reply.target.is_none(),
                "a refused sender link has a null target"
            );
            let Performative::Detach(detach) = detach else {
                panic!("expected detach, got {detach:?}");
            };
            assert!(detach.closed);
            assert_eq!(detach.error.unwrap().condition, condition);
        }
    };
    client.attach("s1", 2, Role::Sender, "q").await;
    let pair = (client.recv().await.1, client.recv().await.1);
    refused("amqp:unauthorized-access")(pair);
    client.attach("s2", 3, Role::Sender, "no-such-queue").await;
    let pair = (client.recv().await.1, client.recv().await.1);
    refused("amqp:not-found")(pair);
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
async fn a_bad_frame_closes_that_connection_with_an_error_and_others_are_served() {
    let server = start().await;
    let mut bad = Client::connect(server.port, Some("ANONYMOUS")).await;
    // A frame whose body is not an AMQP value.
    bad.write(&[0, 0, 0, 12, 2, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])
        .await;
    let Performative::Close(close) = bad.recv().await.1 else {
        panic!("expected close");
    };
    assert_eq!(close.error.unwrap().condition, "amqp:decode-error");
    // A frame above the negotiated max-frame-size.
    let mut big = Client::connect(server.port, None).await;
    big.write(&[0, 0x10, 0, 0, 2, 0, 0, 0]).await;
    let Performative::Close(close) = big.recv().await.1 else {
        panic!("expected close");
    };
    assert_eq!(
        close.error.unwrap().condition,
        "amqp:connection:framing-error"
    );

    // A connection with the right key is still authorised.
    authorized(server.port, "q").await;
}
