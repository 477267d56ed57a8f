//! The broker's ports: REST and AMQP on one port told apart by the first bytes, an extra AMQP
//! port, the connection cap in each protocol, and the close AMQP peers get at shutdown.

mod common;

use std::time::Duration;

use common::sdk::{connection_string, run_python};
use common::{Client, EMULATOR_KEY};
use docflow_amqp::Performative;
use docflow_amqp::frame::ProtocolHeader;
use docflow_amqp::performative::Open;
use docflow_broker::{Broker, BrokerOptions, Entities};
use docflow_broker_amqp::{ListenOptions, Protocol, serve, sniff};
use docflow_servicebus::client::ServiceBusClient;
use docflow_servicebus::message::{Message, PropertyValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

struct Ports {
    broker: Broker,
    ports: Vec<u16>,
    stop: CancellationToken,
    served: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

/// A broker with queue `q` served by [`serve`] on `listeners` loopback ports.
async fn start(listeners: usize, options: ListenOptions) -> Ports {
    let dir = tempfile::tempdir().unwrap();
    let topology = serde_json::json!({"UserConfig": {"Namespaces": [{"Name": "sbemulatorns",
        "Queues": [{"Name": "q", "Properties": {}}]}]}});
    let broker = Broker::open(
        Entities::from_json(&topology).unwrap(),
        BrokerOptions::new(dir.path()),
    )
    .unwrap();
    let mut bound = Vec::new();
    let mut ports = Vec::new();
    for _ in 0..listeners {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        ports.push(listener.local_addr().unwrap().port());
        bound.push(listener);
    }
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let served = tokio::spawn(serve(broker.clone(), bound, options, async move {
        stopped.cancelled().await
    }));
    Ports {
        broker,
        ports,
        stop,
        served,
        _dir: dir,
    }
}

const PYTHON_SEND_AND_RECEIVE: &str = r#"
import os
from azure.servicebus import ServiceBusClient, ServiceBusMessage
with ServiceBusClient.from_connection_string(os.environ["SB_CONNECTION"], retry_total=0) as client:
    with client.get_queue_receiver("q", max_wait_time=5) as receiver:
        got = receiver.receive_messages(max_message_count=1, max_wait_time=5)
        m = got[0]
        print("GOT", str(m), m.subject, m.correlation_id, m.application_properties[b"n"])
        receiver.complete_message(m)
    with client.get_queue_sender("q") as sender:
        sender.send_messages(ServiceBusMessage("from amqp", subject="s2", application_properties={"k": "v"}))
print("DONE")
"#;

#[tokio::test]
async fn rest_and_the_python_sdk_share_one_port_and_one_queue() {
    let server = start(1, ListenOptions::default()).await;
    let port = server.ports[0];
    let rest =
        ServiceBusClient::from_connection_string(&connection_string(port, EMULATOR_KEY)).unwrap();
    let mut message = Message::new("from rest")
        .with_subject("s1")
        .with_correlation_id("c-1");
    message.properties.insert("n".into(), PropertyValue::Int(7));
    rest.send_message("q", &message).await.unwrap();

    let output = run_python(PYTHON_SEND_AND_RECEIVE, port, EMULATOR_KEY, &[]).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("GOT from rest s1 c-1 7"), "{stdout}");

    let got = rest
        .peek_lock("q", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the message the SDK sent over AMQP");
    assert_eq!(got.message.body, b"from amqp");
    assert_eq!(got.message.subject.as_deref(), Some("s2"));
    assert_eq!(
        got.message.property("k"),
        Some(&PropertyValue::String("v".into()))
    );
    rest.complete_message(&got).await.unwrap();
    assert_eq!(server.broker.counts("q").await.unwrap().active, 0);
}

#[tokio::test]
async fn an_extra_port_serves_amqp_and_rest_too() {
    let server = start(2, ListenOptions::default()).await;
    let mut amqp = Client::connect(server.ports[1], Some("ANONYMOUS")).await;
    amqp.send(0, Performative::Close(Default::default()), &[])
        .await;
    assert!(matches!(amqp.recv().await.1, Performative::Close(_)));
    let rest =
        ServiceBusClient::from_connection_string(&connection_string(server.ports[1], EMULATOR_KEY))
            .unwrap();
    rest.send_message("q", &Message::new("x")).await.unwrap();
    assert_eq!(server.broker.counts("q").await.unwrap().active, 1);
}

#[tokio::test]
async fn the_first_bytes_name_the_protocol() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    for (first, expected) in [
        (&b"AMQP\x03\x01\x00\x00"[..], Some(Protocol::Amqp)),
        (b"GET / HTTP/1.1\r\n", Some(Protocol::Http)),
        (b"PRI * HTTP/2.0", Some(Protocol::Http)),
        (b"AM", None),
        (b"", None),
    ] {
        let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(first).await.unwrap();
        if first.len() < 4 {
            client.shutdown().await.unwrap();
        }
        let got = sniff(&server, Duration::from_millis(300)).await;
        assert_eq!(got, expected, "{first:?}");
    }
}

#[tokio::test]
async fn a_header_split_across_packets_is_still_amqp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut client = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    client.write_all(b"AM").await.unwrap();
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        client.write_all(b"QP").await.unwrap();
        client
    });
    assert_eq!(
        sniff(&server, Duration::from_secs(5)).await,
        Some(Protocol::Amqp)
    );
    drop(writer.await.unwrap());
}

/// Opens a raw AMQP connection (no SASL) and returns the frames the broker sends after `open`.
async fn open_raw(port: u16) -> Client {
    let mut client = Client::raw(port).await;
    client.write(&ProtocolHeader::Amqp.bytes()).await;
    assert_eq!(client.read_bytes(8).await, ProtocolHeader::Amqp.bytes());
    let open = Open {
        container_id: "over-the-cap".into(),
        ..Open::default()
    };
    client.send(0, open.into(), &[]).await;
    let Performative::Open(_) = client.recv().await.1 else {
        panic!("expected open");
    };
    client
}

#[tokio::test]
async fn over_the_connection_cap_amqp_is_told_why_and_http_gets_a_503() {
    let options = ListenOptions {
        max_connections: 2,
        ..ListenOptions::default()
    };
    let server = start(1, options).await;
    let port = server.ports[0];
    let _first = Client::connect(port, Some("ANONYMOUS")).await;
    let _second = Client::connect(port, Some("MSSBCBS")).await;

    let mut third = open_raw(port).await;
    let Performative::Close(close) = third.recv().await.1 else {
        panic!("expected close");
    };
    let error = close.error.expect("an error");
    assert_eq!(error.condition, "amqp:resource-limit-exceeded");
    assert!(
        error.description.unwrap_or_default().contains("at most 2"),
        "the reason names the cap"
    );

    let mut http = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    http.write_all(b"GET /q HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut reply = String::new();
    http.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("ServerBusy"), "{reply}");

    // A connection that ends frees its place.
    drop(_first);
    let mut again = None;
    for _ in 0..50 {
        let mut client = open_raw(port).await;
        client
            .send(0, docflow_amqp::performative::Begin::default().into(), &[])
            .await;
        if let Performative::Begin(_) = client.recv().await.1 {
            again = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        again.is_some(),
        "a place came free once a connection closed"
    );
}

#[tokio::test]
async fn at_shutdown_amqp_peers_are_closed_with_connection_forced() {
    let server = start(1, ListenOptions::default()).await;
    let mut client = Client::connect(server.ports[0], Some("ANONYMOUS")).await;
    server.stop.cancel();
    let Performative::Close(close) = client.recv().await.1 else {
        panic!("expected close");
    };
    assert_eq!(close.error.unwrap().condition, "amqp:connection:forced");
    tokio::time::timeout(Duration::from_secs(10), server.served)
        .await
        .expect("the broker's ports drained")
        .unwrap();
    assert!(
        TcpStream::connect(("127.0.0.1", server.ports[0]))
            .await
            .is_err(),
        "the listener is closed"
    );
}
