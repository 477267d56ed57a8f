//! The seeds of the AMQP fuzz targets (`fuzz/seeds/amqp_*`): valid encodings of what the SDKs
//! send, for libFuzzer to mutate. The test checks that each seed decodes and that the committed
//! files are the codec's current encodings, so a codec change that breaks or changes one is
//! caught here first; `DOCFLOW_WRITE_FUZZ_SEEDS=1 cargo test -p docflow-amqp --test fuzz_seeds`
//! writes them anew.

use std::path::PathBuf;

use docflow_amqp::codec::encode_to_vec;
use docflow_amqp::delivery_state::{Accepted, Modified};
use docflow_amqp::frame::{self, FrameType, HEARTBEAT, ProtocolHeader};
use docflow_amqp::message::{Body, Header, Message, Properties, batch};
use docflow_amqp::performative::{
    self, Attach, Begin, Close, Detach, Disposition, End, Flow, Open, Transfer,
};
use docflow_amqp::sasl::{SaslCode, SaslFrame, SaslInit, SaslMechanisms, SaslOutcome};
use docflow_amqp::{
    AmqpError, DeliveryState, Performative, ReceiverSettleMode, Role, Source, Target, Value,
};

/// The performatives of a client's connection that sends one message and closes.
fn performatives() -> Vec<(&'static str, Performative)> {
    let attach = Attach {
        name: "sender".into(),
        handle: 2,
        role: Role::Sender,
        rcv_settle_mode: ReceiverSettleMode::Second,
        source: Some(Source {
            address: Some("sender".into()),
            filter: vec![(
                Value::symbol("com.microsoft:session-filter"),
                Value::string("s1"),
            )],
            ..Source::default()
        }),
        target: Some(Target {
            address: Some("amqps://localhost/q".into()),
            ..Target::default()
        }),
        initial_delivery_count: Some(0),
        max_message_size: Some(262_144),
        properties: vec![(Value::symbol("com.microsoft:timeout"), Value::Uint(60_000))],
        ..Attach::default()
    };
    vec![
        (
            "open",
            Open {
                container_id: "client".into(),
                hostname: Some("localhost".into()),
                max_frame_size: 65_536,
                channel_max: 4,
                idle_time_out: Some(60_000),
                desired_capabilities: vec!["ANONYMOUS-RELAY".into()],
                ..Open::default()
            }
            .into(),
        ),
        (
            "begin",
            Begin {
                next_outgoing_id: 1,
                incoming_window: 5000,
                outgoing_window: 5000,
                handle_max: 255,
                ..Begin::default()
            }
            .into(),
        ),
        ("attach", attach.into()),
        (
            "flow",
            Flow {
                next_incoming_id: Some(0),
                incoming_window: 5000,
                next_outgoing_id: 1,
                outgoing_window: 5000,
                handle: Some(2),
                delivery_count: Some(0),
                link_credit: Some(100),
                drain: true,
                echo: true,
                ..Flow::default()
            }
            .into(),
        ),
        (
            "transfer",
            Transfer {
                handle: 2,
                delivery_id: Some(0),
                delivery_tag: Some(vec![7; 16]),
                message_format: Some(0x8001_3700),
                settled: Some(false),
                more: true,
                state: Some(DeliveryState::Modified(Modified {
                    delivery_failed: Some(true),
                    undeliverable_here: None,
                    message_annotations: vec![(Value::symbol("x-opt-a"), Value::Long(1))],
                })),
                ..Transfer::default()
            }
            .into(),
        ),
        (
            "disposition",
            Disposition {
                role: Role::Receiver,
                first: 0,
                last: Some(3),
                settled: true,
                state: Some(DeliveryState::Accepted(Accepted)),
                batchable: false,
            }
            .into(),
        ),
        (
            "detach",
            Detach {
                handle: 2,
                closed: true,
                error: Some(AmqpError::new("amqp:not-found", "no such entity")),
            }
            .into(),
        ),
        ("end", End::default().into()),
        (
            "close",
            Close {
                error: Some(AmqpError::new(
                    "amqp:connection:framing-error",
                    "frame too large",
                )),
            }
            .into(),
        ),
    ]
}

fn sasl_frames() -> Vec<(&'static str, SaslFrame)> {
    vec![
        (
            "sasl-mechanisms",
            SaslFrame::Mechanisms(SaslMechanisms {
                mechanisms: vec!["MSSBCBS".into(), "ANONYMOUS".into()],
            }),
        ),
        (
            "sasl-init",
            SaslFrame::Init(SaslInit {
                mechanism: "ANONYMOUS".into(),
                initial_response: Some(Vec::new()),
                hostname: Some("localhost".into()),
            }),
        ),
        (
            "sasl-outcome",
            SaslFrame::Outcome(SaslOutcome {
                code: SaslCode::Ok,
                additional_data: None,
            }),
        ),
    ]
}

/// A CBS put-token request, a full Service Bus message, a sequence body, and a batch of both.
fn messages() -> Vec<(&'static str, Message)> {
    let put_token = Message {
        properties: Some(Properties {
            message_id: Some(Value::Uuid([7; 16])),
            reply_to: Some("cbs-receiver".into()),
            ..Properties::default()
        }),
        application_properties: Some(vec![
            ("operation".into(), Value::string("put-token")),
            (
                "type".into(),
                Value::string("servicebus.windows.net:sastoken"),
            ),
            ("name".into(), Value::string("sb://localhost/q")),
        ]),
        ..Message::with_value(Value::string("SharedAccessSignature sr=x&sig=y&se=1&skn=k"))
    };
    let full = Message {
        header: Some(Header {
            durable: Some(true),
            ttl: Some(60_000),
            delivery_count: Some(0),
            ..Header::default()
        }),
        delivery_annotations: Some(vec![(Value::symbol("x-opt-d"), Value::Null)]),
        message_annotations: Some(vec![
            (Value::symbol("x-opt-partition-key"), Value::string("p")),
            (
                Value::symbol("x-opt-scheduled-enqueue-time"),
                Value::Timestamp(1_700_000_000_000),
            ),
        ]),
        properties: Some(Properties {
            message_id: Some(Value::string("m1")),
            correlation_id: Some(Value::Binary(vec![1, 2])),
            subject: Some("label".into()),
            content_type: Some("application/json".into()),
            group_id: Some("session".into()),
            ..Properties::default()
        }),
        application_properties: Some(vec![
            ("n".into(), Value::Double(1.5)),
            ("when".into(), Value::Timestamp(0)),
        ]),
        footer: Some(vec![(Value::symbol("f"), Value::Int(1))]),
        ..Message::with_data(b"{\"hello\":\"amqp\"}".to_vec())
    };
    let sequence = Message {
        body: Body::Sequence(vec![vec![Value::Int(1), Value::string("two")], vec![]]),
        ..Message::default()
    };
    let envelope = batch(&[full.clone(), Message::with_data(b"second".to_vec())]);
    vec![
        ("put-token", put_token),
        ("full", full),
        ("sequence", sequence),
        ("batch", envelope),
    ]
}

/// Writes the seed (with `DOCFLOW_WRITE_FUZZ_SEEDS` set) or checks the committed one.
fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let path = dir.join(format!("{name}.bin"));
    if std::env::var_os("DOCFLOW_WRITE_FUZZ_SEEDS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(path, bytes).unwrap();
    } else {
        let committed = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            committed == bytes,
            "{} is not the current encoding: set DOCFLOW_WRITE_FUZZ_SEEDS=1 to write it",
            path.display()
        );
    }
}

#[test]
fn the_amqp_fuzz_seeds_decode_and_are_current() {
    // amqp_performative: frame bodies, checked to decode.
    for (name, p) in performatives() {
        let body = encode_to_vec(&p.to_value());
        let (decoded, _) = performative::decode_frame_body(&body).unwrap().unwrap();
        assert_eq!(decoded, p);
        write("amqp_performative", name, &body);
    }
    for (name, f) in sasl_frames() {
        let body = encode_to_vec(&f.to_value());
        assert_eq!(SaslFrame::decode(&body).unwrap(), f);
        write("amqp_performative", name, &body);
    }
    // amqp_message: whole transfer payloads.
    for (name, m) in messages() {
        let bytes = m.encode();
        assert_eq!(Message::decode(&bytes).unwrap(), m);
        write("amqp_message", name, &bytes);
    }
    // amqp_frame: two bytes choosing the max-frame-size, then a client's stream.
    let max = 65_536u32 - frame::MIN_MAX_FRAME_SIZE;
    let prefix = u16::try_from(max).unwrap().to_be_bytes();
    let mut sasl = prefix.to_vec();
    sasl.extend(ProtocolHeader::Sasl.bytes());
    for (_, f) in sasl_frames() {
        f.encode_frame(&mut sasl).unwrap();
    }
    sasl.extend(ProtocolHeader::Amqp.bytes());
    let mut session = prefix.to_vec();
    session.extend(ProtocolHeader::Amqp.bytes());
    for (channel, (name, p)) in performatives().into_iter().enumerate() {
        let payload = if name == "transfer" {
            messages()[1].1.encode()
        } else {
            Vec::new()
        };
        let channel = u16::try_from(channel % 2).unwrap();
        performative::encode_frame(channel, &p, &payload, &mut session).unwrap();
        session.extend(HEARTBEAT);
    }
    // An extended header (doff 3) on a SASL frame, then a heartbeat.
    let mut extended = [0u8, 0].to_vec();
    extended.extend([0, 0, 0, 13, 3, 1, 0, 0, 9, 9, 9, 9, 0x40]);
    frame::encode_frame(FrameType::Amqp, 0, &[], &mut extended).unwrap();
    write("amqp_frame", "sasl", &sasl);
    write("amqp_frame", "session", &session);
    write("amqp_frame", "extended-header", &extended);
}
