//! Bad frames: a peer that breaks the protocol gets the AMQP error the spec names, on the
//! level it names (link detach, session end, connection close), and the broker neither panics
//! nor hangs: every test ends by serving a fresh connection through SASL, CBS and `close`.
//! Broker tasks run on the runtime's worker threads, where a panic hook counts any panic.

mod common;

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{
    Client, EMULATOR_KEY, attach_frame, attach_sender, authorized, start, start_with, status, token,
};
use docflow_amqp::frame::{FrameType, ProtocolHeader, encode_frame};
use docflow_amqp::message::Message;
use docflow_amqp::performative::{self, Begin, Close, Detach, End, Flow, Transfer};
use docflow_amqp::sasl::{SaslFrame, SaslInit};
use docflow_amqp::{AmqpError, Performative, ReceiverSettleMode, Role, Value, codec};
use docflow_broker_amqp::AmqpOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Panics on the runtime's worker threads (where the broker's connection tasks run).
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Installs the panic counter once per test binary.
fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("tokio-runtime-worker") {
                PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
}

/// The broker still serves: a new connection does SASL, open, begin, a CBS put-token and an
/// orderly close; and no broker task has panicked.
async fn still_serving(port: u16) {
    let mut client = Client::connect(port, Some("MSSBCBS")).await;
    let audience = format!("sb://127.0.0.1:{port}/q");
    let token = token(&audience, EMULATOR_KEY);
    let reply = client
        .put_token(&token, &audience, Value::string("still"))
        .await;
    assert_eq!(status(&reply), Value::Int(200));
    client.send(0, Close::default().into(), &[]).await;
    assert_eq!(closed_with(&mut client).await, None);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "a broker task panicked");
}

/// Reads performatives up to the broker's `close`, then expects the socket to end; returns
/// the close's error.
async fn closed_with(client: &mut Client) -> Option<AmqpError> {
    loop {
        if let (_, Performative::Close(close), _) = client.recv().await {
            expect_eof(client).await;
            return close.error;
        }
    }
}

/// The broker ends the socket (no more bytes) within five seconds.
async fn expect_eof(client: &mut Client) {
    let mut rest = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), client.stream.read(&mut rest))
        .await
        .expect("the broker closed the socket in time");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

/// The condition of the broker's `close`.
async fn close_condition(client: &mut Client) -> String {
    closed_with(client).await.expect("a close error").condition
}

/// A flow on `handle` of channel 0.
fn flow(handle: u32, delivery_count: u32, link_credit: u32, echo: bool) -> Flow {
    Flow {
        next_incoming_id: Some(0),
        incoming_window: 5000,
        next_outgoing_id: 1000,
        outgoing_window: 5000,
        handle: Some(handle),
        delivery_count: Some(delivery_count),
        link_credit: Some(link_credit),
        echo,
        ..Flow::default()
    }
}

/// The next performative that is not a flow or disposition (which sends may interleave).
async fn next_control(client: &mut Client) -> Performative {
    loop {
        match client.recv().await.1 {
            Performative::Flow(_) | Performative::Disposition(_) => {}
            p => return p,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_frame_then_eof_ends_the_connection() {
    watch_panics();
    let server = start().await;
    // After open: the first 20 bytes of an attach, then the write side shut.
    let mut client = Client::connect(server.port, Some("ANONYMOUS")).await;
    let mut frame = Vec::new();
    let attach = attach_frame("sender", 2, Role::Sender, "q");
    performative::encode_frame(0, &attach.into(), &[], &mut frame).unwrap();
    client.write(&frame[..20]).await;
    client.stream.shutdown().await.unwrap();
    expect_eof(&mut client).await;
    // During SASL: half a sasl-init.
    let mut client = Client::raw(server.port).await;
    client.write(&ProtocolHeader::Sasl.bytes()).await;
    assert_eq!(client.read_bytes(8).await, ProtocolHeader::Sasl.bytes());
    let SaslFrame::Mechanisms(_) = client.sasl_frame().await else {
        panic!("expected sasl-mechanisms");
    };
    let mut init = Vec::new();
    SaslFrame::Init(SaslInit {
        mechanism: "ANONYMOUS".into(),
        initial_response: None,
        hostname: None,
    })
    .encode_frame(&mut init)
    .unwrap();
    client.write(&init[..init.len() / 2]).await;
    client.stream.shutdown().await.unwrap();
    expect_eof(&mut client).await;
    still_serving(server.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_above_the_max_frame_size_is_a_framing_error() {
    watch_panics();
    let max = 4096;
    let server = start_with(AmqpOptions {
        max_frame_size: max,
        ..AmqpOptions::default()
    })
    .await;
    // A frame of exactly max-frame-size bytes is served: a session flow with echo, padded.
    let mut client = Client::connect(server.port, None).await;
    let mut pad = max as usize;
    let frame = loop {
        let mut padded = flow(0, 0, 0, true);
        padded.handle = None;
        padded.properties = vec![(Value::symbol("pad"), Value::Binary(vec![0; pad]))];
        let mut frame = Vec::new();
        performative::encode_frame(0, &padded.into(), &[], &mut frame).unwrap();
        if frame.len() <= max as usize {
            break frame;
        }
        pad -= frame.len() - max as usize;
    };
    assert_eq!(frame.len(), max as usize);
    client.write(&frame).await;
    let Performative::Flow(reply) = client.recv().await.1 else {
        panic!("expected the echoed session flow");
    };
    assert_eq!(reply.handle, None);
    // One byte more: refused from its header alone (the body never comes).
    client.write(&(max + 1).to_be_bytes()).await;
    client.write(&[2, 0, 0, 0, 0x00, 0x53, 0x13]).await;
    assert_eq!(
        close_condition(&mut client).await,
        "amqp:connection:framing-error"
    );
    // A size field below the 8-byte header is one too.
    let mut client = Client::connect(server.port, None).await;
    client.write(&[0, 0, 0, 4, 2, 0, 0, 0]).await;
    assert_eq!(
        close_condition(&mut client).await,
        "amqp:connection:framing-error"
    );
    still_serving(server.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_performatives_and_frame_types_close_the_connection() {
    watch_panics();
    let server = start().await;
    // Descriptor 0x19 follows close (0x18) and is no performative.
    let mut client = Client::connect(server.port, Some("ANONYMOUS")).await;
    let body = codec::encode_to_vec(&Value::described(0x19, Value::List(vec![])));
    let mut frame = Vec::new();
    encode_frame(FrameType::Amqp, 0, &body, &mut frame).unwrap();
    client.write(&frame).await;
    assert_eq!(close_condition(&mut client).await, "amqp:decode-error");
    // A symbolic descriptor nobody defines.
    let mut client = Client::connect(server.port, Some("ANONYMOUS")).await;
    let described = Value::Described(Box::new(docflow_amqp::Described {
        descriptor: Value::symbol("amqp:bogus:list"),
        value: Value::List(vec![]),
    }));
    let mut frame = Vec::new();
    encode_frame(
        FrameType::Amqp,
        0,
        &codec::encode_to_vec(&described),
        &mut frame,
    )
    .unwrap();
    client.write(&frame).await;
    assert_eq!(close_condition(&mut client).await, "amqp:decode-error");
    // Bytes that are no AMQP value at all.
    let mut client = Client::connect(server.port, Some("ANONYMOUS")).await;
    let mut frame = Vec::new();
    encode_frame(FrameType::Amqp, 0, &[0xff, 0xff], &mut frame).unwrap();
    client.write(&frame).await;
    assert_eq!(close_condition(&mut client).await, "amqp:decode-error");
    // A SASL frame after open, and a frame type that does not exist.
    for frame_type in [1u8, 7] {
        let mut client = Client::connect(server.port, Some("ANONYMOUS")).await;
        client
            .write(&[0, 0, 0, 11, 2, frame_type, 0, 0, 0x00, 0x53, 0x17])
            .await;
        assert_eq!(
            close_condition(&mut client).await,
            "amqp:connection:framing-error"
        );
    }
    still_serving(server.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_on_an_unattached_handle_ends_the_session_only() {
    watch_panics();
    let server = start().await;
    let mut client = authorized(server.port, "q").await;
    // A peek-lock receiver with credit, so that the session has a fetching worker to stop.
    let mut attach = attach_frame("receiver", 3, Role::Receiver, "q");
    attach.rcv_settle_mode = ReceiverSettleMode::Second;
    client.send(0, attach.into(), &[]).await;
    let Performative::Attach(_) = client.recv().await.1 else {
        panic!("expected attach");
    };
    client.send(0, flow(3, 0, 10, false).into(), &[]).await;

    let transfer = Transfer {
        handle: 9,
        delivery_id: Some(0),
        delivery_tag: Some(vec![0]),
        message_format: Some(0),
        ..Transfer::default()
    };
    let payload = Message::with_data(b"x".to_vec()).encode();
    client.send(0, transfer.into(), &payload).await;
    let (channel, Performative::End(end), _) = client.recv().await else {
        panic!("expected end");
    };
    assert_eq!(channel, 0);
    let error = end.error.expect("an end error");
    assert_eq!(error.condition, "amqp:session:unattached-handle");
    // A frame sent before the peer saw the end is dropped, not a connection error; then the
    // peer answers the end, which the broker does not answer again.
    client.send(0, flow(3, 0, 10, true).into(), &[]).await;
    client.send(0, End::default().into(), &[]).await;
    // The receiver's worker stops and reports (within its 1 s poll); the ended session must
    // not come back from that report, so channel 0 can begin again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let begin = Begin {
        incoming_window: 5000,
        outgoing_window: 5000,
        ..Begin::default()
    };
    client.send(0, begin.into(), &[]).await;
    let (_, Performative::Begin(reply), _) = client.recv().await else {
        panic!("expected begin, the connection still open");
    };
    assert_eq!(reply.remote_channel, Some(0));
    // The connection's CBS token still holds on the new session.
    let (reply, credit) = attach_sender(&mut client, "q", true).await;
    assert!(reply.target.is_some() && credit > 0);
    client.send(0, Close::default().into(), &[]).await;
    assert_eq!(closed_with(&mut client).await, None);
    still_serving(server.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_abuse_is_capped_or_detached() {
    watch_panics();
    let server = start().await;
    let mut client = authorized(server.port, "q").await;
    // A receiver asking for u32::MAX credit holds at most the broker's cap (1000).
    let mut attach = attach_frame("receiver", 3, Role::Receiver, "q");
    attach.rcv_settle_mode = ReceiverSettleMode::Second;
    client.send(0, attach.into(), &[]).await;
    let Performative::Attach(_) = client.recv().await.1 else {
        panic!("expected attach");
    };
    client.send(0, flow(3, 0, u32::MAX, true).into(), &[]).await;
    let Performative::Flow(echo) = client.recv().await.1 else {
        panic!("expected the echoed link flow");
    };
    assert_eq!(echo.handle, Some(3));
    let held = echo.link_credit.expect("link credit");
    assert!(held > 0 && held <= 1000, "credit {held}");
    client
        .send(
            0,
            Detach {
                handle: 3,
                closed: true,
                error: None,
            }
            .into(),
            &[],
        )
        .await;
    let Performative::Detach(_) = next_control(&mut client).await else {
        panic!("expected detach");
    };

    // A sender claiming a million credit gets what the broker granted, no more.
    let (_, granted) = attach_sender(&mut client, "q", true).await;
    assert!(granted > 0);
    client
        .send(0, flow(2, 0, 1_000_000, true).into(), &[])
        .await;
    let Performative::Flow(echo) = client.recv().await.1 else {
        panic!("expected the echoed link flow");
    };
    assert_eq!(echo.link_credit, Some(granted));
    // granted + 1 settled transfers in one write: the last one has no credit.
    let payload = Message::with_data(b"x".to_vec()).encode();
    let mut frames = Vec::new();
    for id in 0..=granted {
        let transfer = Transfer {
            handle: 2,
            delivery_id: Some(id),
            delivery_tag: Some(id.to_be_bytes().to_vec()),
            message_format: Some(0),
            settled: Some(true),
            ..Transfer::default()
        };
        performative::encode_frame(0, &transfer.into(), &payload, &mut frames).unwrap();
    }
    client.write(&frames).await;
    let Performative::Detach(detach) = next_control(&mut client).await else {
        panic!("expected detach");
    };
    assert_eq!(detach.handle, 2);
    assert!(detach.closed);
    let error = detach.error.expect("a detach error");
    assert_eq!(error.condition, "amqp:link:transfer-limit-exceeded");
    // Only the link went: the session attaches again on the same handle.
    client
        .send(
            0,
            Detach {
                handle: 2,
                closed: true,
                error: None,
            }
            .into(),
            &[],
        )
        .await;
    let (reply, credit) = attach_sender(&mut client, "q", true).await;
    assert!(reply.target.is_some() && credit > 0);
    client.send(0, Close::default().into(), &[]).await;
    assert_eq!(closed_with(&mut client).await, None);
    still_serving(server.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_begin_beyond_max_sessions_closes_the_connection() {
    watch_panics();
    let server = start_with(AmqpOptions {
        max_sessions: 2,
        ..AmqpOptions::default()
    })
    .await;
    let begin = Begin {
        incoming_window: 5000,
        outgoing_window: 5000,
        ..Begin::default()
    };
    let mut client = Client::connect(server.port, None).await;
    client.send(1, begin.clone().into(), &[]).await;
    let (1, Performative::Begin(_), _) = client.recv().await else {
        panic!("expected begin on channel 1");
    };
    client.send(2, begin.clone().into(), &[]).await;
    assert_eq!(
        close_condition(&mut client).await,
        "amqp:resource-limit-exceeded"
    );
    // A channel above the channel-max announced in open (1), with one session free.
    let mut client = Client::connect(server.port, None).await;
    client.send(7, begin.into(), &[]).await;
    assert_eq!(
        close_condition(&mut client).await,
        "amqp:resource-limit-exceeded"
    );
    still_serving(server.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attach_beyond_max_links_is_refused_with_a_detach() {
    watch_panics();
    let server = start_with(AmqpOptions {
        max_links_per_session: 2,
        ..AmqpOptions::default()
    })
    .await;
    // The two $cbs links fill the session.
    let mut client = authorized(server.port, "q").await;
    client
        .send(0, attach_frame("sender", 2, Role::Sender, "q").into(), &[])
        .await;
    let Performative::Attach(reply) = client.recv().await.1 else {
        panic!("expected attach");
    };
    assert_eq!(reply.target, None, "a refused link has no terminus");
    let Performative::Detach(detach) = client.recv().await.1 else {
        panic!("expected detach");
    };
    assert_eq!((detach.handle, detach.closed), (2, true));
    let error = detach.error.expect("a detach error");
    assert_eq!(error.condition, "amqp:resource-limit-exceeded");
    // Detaching one makes room.
    client
        .send(
            0,
            Detach {
                handle: 1,
                closed: true,
                error: None,
            }
            .into(),
            &[],
        )
        .await;
    let Performative::Detach(_) = client.recv().await.1 else {
        panic!("expected detach");
    };
    let (reply, credit) = attach_sender(&mut client, "q", true).await;
    assert!(reply.target.is_some() && credit > 0);
    client.send(0, Close::default().into(), &[]).await;
    assert_eq!(closed_with(&mut client).await, None);
    still_serving(server.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_handshake_is_dropped_at_the_handshake_timeout() {
    watch_panics();
    let server = start_with(AmqpOptions {
        handshake_timeout: Duration::from_millis(500),
        ..AmqpOptions::default()
    })
    .await;
    let started = tokio::time::Instant::now();
    // Nothing at all.
    let mut silent = Client::raw(server.port).await;
    // Half a sasl-init.
    let mut half = Client::raw(server.port).await;
    half.write(&ProtocolHeader::Sasl.bytes()).await;
    assert_eq!(half.read_bytes(8).await, ProtocolHeader::Sasl.bytes());
    let SaslFrame::Mechanisms(_) = half.sasl_frame().await else {
        panic!("expected sasl-mechanisms");
    };
    half.write(&[0, 0, 0, 40, 2, 1, 0, 0, 0x00, 0x53, 0x41])
        .await;
    // SASL done, the AMQP header answered, no open.
    let mut no_open = Client::raw(server.port).await;
    no_open.write(&ProtocolHeader::Amqp.bytes()).await;
    assert_eq!(no_open.read_bytes(8).await, ProtocolHeader::Amqp.bytes());
    for client in [&mut silent, &mut half, &mut no_open] {
        expect_eof(client).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(400));
    still_serving(server.port).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_the_protocol_header_gets_the_broker_header_and_a_close() {
    watch_panics();
    let server = start().await;
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        b"AMQP\x02\x01\x00\x00",
        b"AMQP\x00\x02\x00\x00",
        b"\x16\x03\x01\x02\x00\x01\x00\x01",
    ] {
        let mut client = Client::raw(server.port).await;
        client.write(garbage).await;
        assert_eq!(
            client.read_bytes(8).await,
            ProtocolHeader::Amqp.bytes(),
            "answer to {garbage:02x?}"
        );
        expect_eof(&mut client).await;
    }
    // A second SASL header where the AMQP header belongs, after a finished SASL exchange.
    let mut client = Client::raw(server.port).await;
    client.write(&ProtocolHeader::Sasl.bytes()).await;
    assert_eq!(client.read_bytes(8).await, ProtocolHeader::Sasl.bytes());
    let SaslFrame::Mechanisms(_) = client.sasl_frame().await else {
        panic!("expected sasl-mechanisms");
    };
    let mut init = Vec::new();
    SaslFrame::Init(SaslInit {
        mechanism: "ANONYMOUS".into(),
        initial_response: None,
        hostname: None,
    })
    .encode_frame(&mut init)
    .unwrap();
    client.write(&init).await;
    let SaslFrame::Outcome(_) = client.sasl_frame().await else {
        panic!("expected sasl-outcome");
    };
    client.write(&ProtocolHeader::Sasl.bytes()).await;
    assert_eq!(client.read_bytes(8).await, ProtocolHeader::Amqp.bytes());
    expect_eof(&mut client).await;
    still_serving(server.port).await;
}
