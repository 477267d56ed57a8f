//! A broker on a loopback port serving AMQP, and a raw-frame AMQP client built on
//! docflow-amqp.
#![allow(dead_code, unused_imports)]

pub mod sdk;

use std::time::Duration;

use docflow_amqp::delivery_state::DeliveryState;
use docflow_amqp::frame::{self, FrameType, ProtocolHeader, ReadFrame};
use docflow_amqp::message::{Message, Properties};
use docflow_amqp::performative::{self, Attach, Begin, Open, Transfer};
use docflow_amqp::sasl::{SaslCode, SaslFrame, SaslInit};
use docflow_amqp::{Performative, Role, Source, Target, Value};
use docflow_broker::{Broker, BrokerOptions, Entities};
use docflow_broker_amqp::{AmqpOptions, serve_connection};
use docflow_servicebus::sas;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The emulator's well-known key name and key (the broker's default SAS rule).
pub use docflow_servicebus::connection::{EMULATOR_KEY, EMULATOR_KEY_NAME};

/// A running broker with its AMQP listener.
pub struct Server {
    pub broker: Broker,
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// Starts a broker with queues `q`, `sessions` (sessions required), `retries` (three
/// deliveries, expired messages dead-lettered) and `dedup` (duplicate detection over a
/// minute), a topic `t` with subscription `s`, and a topic `orders` with subscriptions `big`
/// (SQL filter `amount > 100`) and `eu` (correlation filter on the property `region = 'eu'`),
/// and serves AMQP on 127.0.0.1 with an ephemeral port.
pub async fn start() -> Server {
    start_with(AmqpOptions::default()).await
}

/// [`start`] with the given AMQP options.
pub async fn start_with(options: AmqpOptions) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let topology = serde_json::json!({"UserConfig": {"Namespaces": [{"Name": "sbemulatorns",
        "Queues": [{"Name": "q", "Properties": {}},
                   {"Name": "sessions", "Properties": {"RequiresSession": true}},
                   {"Name": "retries", "Properties": {"MaxDeliveryCount": 3, "DeadLetteringOnMessageExpiration": true}},
                   {"Name": "dedup", "Properties": {"RequiresDuplicateDetection": true, "DuplicateDetectionHistoryTimeWindow": "PT1M"}}],
        "Topics": [{"Name": "t", "Properties": {}, "Subscriptions": [{"Name": "s", "Properties": {}, "Rules": []}]},
                   {"Name": "orders", "Properties": {}, "Subscriptions": [
                       {"Name": "big", "Properties": {}, "Rules": [{"Name": "big-orders", "Properties": {
                           "FilterType": "Sql", "SqlFilter": {"SqlExpression": "amount > 100"}}}]},
                       {"Name": "eu", "Properties": {}, "Rules": [{"Name": "eu-orders", "Properties": {
                           "FilterType": "Correlation", "CorrelationFilter": {"Properties": {"region": "eu"}}}}]}]}]}]}});
    let broker = Broker::open(
        Entities::from_json(&topology).unwrap(),
        BrokerOptions::new(dir.path()),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let serving = broker.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_connection(serving.clone(), stream, options.clone()));
        }
    });
    Server {
        broker,
        port,
        _dir: dir,
    }
}

/// A raw-frame client.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    next_delivery_id: u32,
}

const WAIT: Duration = Duration::from_secs(10);

impl Client {
    /// Connects with SASL `mechanism` (or no SASL when `None`), opens and begins channel 0.
    pub async fn connect(port: u16, mechanism: Option<&str>) -> Client {
        Self::connect_with(port, mechanism, None).await
    }

    /// A TCP connection and nothing else.
    pub async fn raw(port: u16) -> Client {
        Client {
            stream: TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
            buf: Vec::new(),
            next_delivery_id: 0,
        }
    }

    /// [`Client::connect`], announcing `idle_time_out` (ms) in `open`.
    pub async fn connect_with(
        port: u16,
        mechanism: Option<&str>,
        idle_time_out: Option<u32>,
    ) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut client = Client {
            stream,
            buf: Vec::new(),
            next_delivery_id: 0,
        };
        if let Some(mechanism) = mechanism {
            client.write(&ProtocolHeader::Sasl.bytes()).await;
            assert_eq!(client.read_bytes(8).await, ProtocolHeader::Sasl.bytes());
            let SaslFrame::Mechanisms(offered) = client.sasl_frame().await else {
                panic!("expected sasl-mechanisms");
            };
            assert!(offered.mechanisms.contains(&"MSSBCBS".to_string()));
            assert!(offered.mechanisms.contains(&"ANONYMOUS".to_string()));
            let mut out = Vec::new();
            SaslFrame::Init(SaslInit {
                mechanism: mechanism.into(),
                initial_response: Some(Vec::new()),
                hostname: None,
            })
            .encode_frame(&mut out)
            .unwrap();
            client.write(&out).await;
            let SaslFrame::Outcome(outcome) = client.sasl_frame().await else {
                panic!("expected sasl-outcome");
            };
            assert_eq!(outcome.code, SaslCode::Ok);
        }
        client.write(&ProtocolHeader::Amqp.bytes()).await;
        assert_eq!(client.read_bytes(8).await, ProtocolHeader::Amqp.bytes());
        let open = Open {
            container_id: "test-client".into(),
            max_frame_size: 4096,
            idle_time_out,
            ..Open::default()
        };
        client.send(0, open.into(), &[]).await;
        let Performative::Open(_) = client.recv().await.1 else {
            panic!("expected open");
        };
        let begin = Begin {
            incoming_window: 5000,
            outgoing_window: 5000,
            ..Begin::default()
        };
        client.send(0, begin.into(), &[]).await;
        let Performative::Begin(reply) = client.recv().await.1 else {
            panic!("expected begin");
        };
        assert_eq!(reply.remote_channel, Some(0));
        client
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
            .await
            .expect("the broker answered in time")
            .unwrap();
        assert!(n > 0, "the broker closed the socket");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The next `n` bytes.
    pub async fn read_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill().await;
        }
        self.buf.drain(..n).collect()
    }

    /// The next raw frame: type, channel and body (empty for a heartbeat).
    pub async fn frame(&mut self) -> (FrameType, u16, Vec<u8>) {
        loop {
            if let ReadFrame::Frame { frame, len } = frame::read_frame(&self.buf, u32::MAX).unwrap()
            {
                let owned = (frame.frame_type, frame.channel, frame.body.to_vec());
                self.buf.drain(..len);
                return owned;
            }
            self.fill().await;
        }
    }

    /// The next SASL frame.
    pub async fn sasl_frame(&mut self) -> SaslFrame {
        let (frame_type, _, body) = self.frame().await;
        assert_eq!(frame_type, FrameType::Sasl);
        SaslFrame::decode(&body).unwrap()
    }

    /// Sends a performative (and a transfer's payload) on `channel`.
    pub async fn send(&mut self, channel: u16, p: Performative, payload: &[u8]) {
        let mut out = Vec::new();
        performative::encode_frame(channel, &p, payload, &mut out).unwrap();
        self.write(&out).await;
    }

    /// The next performative, skipping heartbeats, with the payload after it.
    pub async fn recv(&mut self) -> (u16, Performative, Vec<u8>) {
        loop {
            let (frame_type, channel, body) = self.frame().await;
            assert_eq!(frame_type, FrameType::Amqp);
            if let Some((p, payload)) = performative::decode_frame_body(&body).unwrap() {
                return (channel, p, payload.to_vec());
            }
        }
    }

    /// Attaches a link on channel 0; the client is `role`, the node `address`.
    pub async fn attach(&mut self, name: &str, handle: u32, role: Role, address: &str) {
        let attach = attach_frame(name, handle, role, address);
        self.send(0, attach.into(), &[]).await;
    }

    /// Sends one delivery on `handle`, split into frames of at most `chunk` payload bytes.
    pub async fn transfer(
        &mut self,
        handle: u32,
        format: u32,
        payload: &[u8],
        chunk: usize,
    ) -> u32 {
        let id = self.next_delivery_id;
        self.next_delivery_id += 1;
        let mut chunks = payload.chunks(chunk).peekable();
        let mut first = true;
        while let Some(part) = chunks.next() {
            let transfer = Transfer {
                handle,
                delivery_id: first.then_some(id),
                delivery_tag: first.then(|| id.to_be_bytes().to_vec()),
                message_format: first.then_some(format),
                more: chunks.peek().is_some(),
                ..Transfer::default()
            };
            first = false;
            self.send(0, transfer.into(), part).await;
        }
        id
    }

    /// Puts a CBS token: attaches the `$cbs` links (handles 0 and 1) on first use, sends the
    /// request with `message_id`, and returns the reply message.
    pub async fn put_token(&mut self, token: &str, audience: &str, message_id: Value) -> Message {
        self.attach("cbs-sender", 0, Role::Sender, "$cbs").await;
        let Performative::Attach(_) = self.recv().await.1 else {
            panic!("expected the $cbs sender attach");
        };
        let Performative::Flow(flow) = self.recv().await.1 else {
            panic!("expected credit on $cbs");
        };
        assert!(flow.link_credit.unwrap_or(0) > 0);
        self.attach("cbs-receiver", 1, Role::Receiver, "$cbs").await;
        let Performative::Attach(_) = self.recv().await.1 else {
            panic!("expected the $cbs receiver attach");
        };
        let flow = docflow_amqp::performative::Flow {
            next_incoming_id: Some(0),
            incoming_window: 5000,
            next_outgoing_id: self.next_delivery_id,
            outgoing_window: 5000,
            handle: Some(1),
            delivery_count: Some(0),
            link_credit: Some(10),
            ..Default::default()
        };
        self.send(0, flow.into(), &[]).await;
        let request = Message {
            properties: Some(Properties {
                message_id: Some(message_id),
                ..Properties::default()
            }),
            application_properties: Some(vec![
                ("operation".into(), Value::String("put-token".into())),
                (
                    "type".into(),
                    Value::String("servicebus.windows.net:sastoken".into()),
                ),
                ("name".into(), Value::String(audience.into())),
            ]),
            ..Message::with_value(Value::String(token.into()))
        };
        let id = self.transfer(0, 0, &request.encode(), 1 << 20).await;
        let mut reply = None;
        let mut accepted = false;
        while reply.is_none() || !accepted {
            match self.recv().await {
                (_, Performative::Transfer(t), payload) if t.handle == 1 => {
                    assert_eq!(t.settled, Some(true));
                    reply = Some(payload);
                }
                (_, Performative::Disposition(d), _) => {
                    assert_eq!(d.first, id);
                    assert!(d.settled);
                    accepted = true;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        Message::decode(&reply.unwrap()).unwrap()
    }
}

/// An attach on channel 0 as the SDKs send it; the client is `role`, the node `address`.
pub fn attach_frame(name: &str, handle: u32, role: Role, address: &str) -> Attach {
    let terminus_source = Source {
        address: Some(if role == Role::Receiver {
            address.into()
        } else {
            name.into()
        }),
        ..Source::default()
    };
    let terminus_target = Target {
        address: Some(if role == Role::Sender {
            address.into()
        } else {
            name.into()
        }),
        ..Target::default()
    };
    Attach {
        name: name.into(),
        handle,
        role,
        source: Some(terminus_source),
        target: Some(terminus_target),
        initial_delivery_count: (role == Role::Sender).then_some(0),
        ..Attach::default()
    }
}

/// A SAS token for `audience`, signed with the emulator's key name and `key`, valid an hour.
/// Connects with SASL `ANONYMOUS` and puts a token (the emulator key) for `entity`, or for
/// the whole namespace when `entity` is empty; the `$cbs` links take handles 0 and 1.
pub async fn authorized(port: u16, entity: &str) -> Client {
    let mut client = Client::connect(port, Some("ANONYMOUS")).await;
    let audience = format!("sb://127.0.0.1:{port}/{entity}");
    let reply = client
        .put_token(
            &token(&audience, EMULATOR_KEY),
            &audience,
            Value::string("t"),
        )
        .await;
    assert_eq!(status(&reply), Value::Int(200));
    client
}

pub fn token(audience: &str, key: &str) -> String {
    let expiry = chrono::Utc::now().timestamp() as u64 + 3600;
    sas::sign(audience, EMULATOR_KEY_NAME, key, expiry)
}

/// The `status-code` of a CBS reply.
pub fn status(reply: &Message) -> Value {
    reply
        .application_properties
        .iter()
        .flatten()
        .find(|(k, _)| k == "status-code")
        .map(|(_, v)| v.clone())
        .expect("status-code")
}

/// Attaches a sender to `address` on handle 2 and returns the reply and the granted credit.
pub async fn attach_sender(
    client: &mut Client,
    address: &str,
    initial_count: bool,
) -> (docflow_amqp::performative::Attach, u32) {
    let mut attach = attach_frame("sender", 2, Role::Sender, address);
    if !initial_count {
        // .NET sometimes leaves initial-delivery-count out.
        attach.initial_delivery_count = None;
    }
    client.send(0, attach.into(), &[]).await;
    let Performative::Attach(reply) = client.recv().await.1 else {
        panic!("expected attach");
    };
    let Performative::Flow(flow) = client.recv().await.1 else {
        panic!("expected flow");
    };
    (reply, flow.link_credit.unwrap_or(0))
}

/// Expects a settled `accepted` disposition for delivery `id`.
pub async fn expect_accepted(client: &mut Client, id: u32) {
    let Performative::Disposition(d) = client.recv().await.1 else {
        panic!("expected disposition");
    };
    assert_eq!((d.first, d.settled), (id, true));
    assert!(matches!(d.state, Some(DeliveryState::Accepted(_))), "{d:?}");
}
