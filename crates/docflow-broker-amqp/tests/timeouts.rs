//! Timeouts and heartbeats: a stalled handshake, a silent peer, and empty frames at half the
//! peer's idle timeout.

mod common;

use std::time::Duration;

use common::{Client, start_with};
use docflow_amqp::Performative;
use docflow_amqp::frame::{FrameType, ProtocolHeader};
use docflow_amqp::sasl::SaslFrame;
use docflow_broker_amqp::AmqpOptions;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn a_connection_that_never_finishes_sasl_is_dropped() {
    let server = start_with(AmqpOptions {
        handshake_timeout: Duration::from_millis(300),
        ..AmqpOptions::default()
    })
    .await;
    let mut client = Client::raw(server.port).await;
    client.write(&ProtocolHeader::Sasl.bytes()).await;
    assert_eq!(client.read_bytes(8).await, ProtocolHeader::Sasl.bytes());
    let SaslFrame::Mechanisms(_) = client.sasl_frame().await else {
        panic!("expected sasl-mechanisms");
    };
    // No sasl-init: the broker gives up and closes the socket.
    let mut rest = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), client.stream.read(&mut rest))
        .await
        .expect("the broker closed the stalled connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn a_silent_peer_is_closed_after_the_idle_timeout() {
    let server = start_with(AmqpOptions {
        idle_timeout: Duration::from_millis(400),
        ..AmqpOptions::default()
    })
    .await;
    let mut client = Client::connect(server.port, Some("ANONYMOUS")).await;
    let Performative::Close(close) = client.recv().await.1 else {
        panic!("expected close");
    };
    assert_eq!(
        close.error.expect("an error").condition,
        "amqp:resource-limit-exceeded"
    );
}

#[tokio::test]
async fn the_broker_sends_empty_frames_at_half_the_peer_idle_timeout() {
    let server = start_with(AmqpOptions::default()).await;
    let mut client = Client::connect_with(server.port, None, Some(200)).await;
    let started = tokio::time::Instant::now();
    for _ in 0..3 {
        let (frame_type, _, body) = client.frame().await;
        assert_eq!(frame_type, FrameType::Amqp);
        assert!(body.is_empty(), "a heartbeat has no body");
    }
    // Three heartbeats at ~100 ms each.
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(started.elapsed() < Duration::from_secs(3));
}
