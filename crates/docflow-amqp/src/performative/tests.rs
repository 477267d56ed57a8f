//! Byte-exact vectors for the performatives, derived by hand from part 1 (encodings) and
//! part 2, section 2.7 (the field lists).

use super::*;
use crate::definitions::{AmqpError, ReceiverSettleMode, Role, SenderSettleMode};
use crate::delivery_state::{Accepted, DeliveryState};
use crate::frame::{ReadFrame, read_frame};
use crate::terminus::{Source, Target};

fn check(p: impl Into<Performative>, expected: &[u8]) {
    let p = p.into();
    let bytes = codec::encode_to_vec(&p.to_value());
    assert_eq!(bytes, expected, "{} encodes as {bytes:02x?}", p.name());
    let (decoded, rest) = decode_frame_body(&bytes).unwrap().unwrap();
    assert_eq!(decoded, p);
    assert!(rest.is_empty());
}

// 2.7.1: open [container-id="x"], every other field at its default and so trimmed.
#[test]
fn open_with_container_id() {
    let open = Open {
        container_id: "x".into(),
        ..Open::default()
    };
    check(
        open.clone(),
        &[0x00, 0x53, 0x10, 0xc0, 0x04, 0x01, 0xa1, 0x01, b'x'],
    );
    // As a whole frame: size 17, doff 2, type 0, channel 0.
    let mut frame = Vec::new();
    encode_frame(0, &open.into(), &[], &mut frame).unwrap();
    assert_eq!(
        frame,
        [
            0, 0, 0, 0x11, 2, 0, 0, 0, 0x00, 0x53, 0x10, 0xc0, 0x04, 0x01, 0xa1, 0x01, b'x'
        ]
    );
}

// Open with max-frame-size 65536, channel-max 255 and idle-time-out 30000, and a property.
#[test]
fn open_with_limits_and_properties() {
    let open = Open {
        container_id: "x".into(),
        max_frame_size: 65536,
        channel_max: 255,
        idle_time_out: Some(30_000),
        properties: vec![(Value::symbol("p"), Value::Int(1))],
        ..Open::default()
    };
    let mut expected = vec![0x00, 0x53, 0x10, 0xc0, 0x1e, 0x0a, 0xa1, 0x01, b'x', 0x40];
    expected.extend([0x70, 0, 1, 0, 0, 0x60, 0, 0xff, 0x70, 0, 0, 0x75, 0x30]);
    expected.extend([
        0x40, 0x40, 0x40, 0x40, 0xc1, 0x06, 0x02, 0xa3, 0x01, b'p', 0x54, 0x01,
    ]);
    check(open, &expected);
}

// 2.7.2: begin [remote-channel=null, next-outgoing-id=0, incoming-window=5000,
// outgoing-window=5000].
#[test]
fn begin_with_windows() {
    let begin = Begin {
        next_outgoing_id: 0,
        incoming_window: 5000,
        outgoing_window: 5000,
        ..Begin::default()
    };
    check(
        begin,
        &[
            0x00, 0x53, 0x11, 0xc0, 0x0d, 0x04, 0x40, 0x43, 0x70, 0, 0, 0x13, 0x88, 0x70, 0, 0,
            0x13, 0x88,
        ],
    );
}

// 2.7.3: a peek-lock receiver's attach: role=receiver, snd-settle-mode=unsettled,
// rcv-settle-mode=second, source address "q", target address "r".
#[test]
fn attach_with_source_and_target() {
    let attach = Attach {
        name: "l".into(),
        handle: 0,
        role: Role::Receiver,
        snd_settle_mode: SenderSettleMode::Unsettled,
        rcv_settle_mode: ReceiverSettleMode::Second,
        source: Some(Source {
            address: Some("q".into()),
            ..Source::default()
        }),
        target: Some(Target {
            address: Some("r".into()),
            ..Target::default()
        }),
        ..Attach::default()
    };
    check(
        attach,
        &[
            0x00, 0x53, 0x12, 0xc0, 0x1c, 0x07, 0xa1, 0x01, b'l', 0x43, 0x41, 0x50, 0x00, 0x50,
            0x01, 0x00, 0x53, 0x28, 0xc0, 0x04, 0x01, 0xa1, 0x01, b'q', 0x00, 0x53, 0x29, 0xc0,
            0x04, 0x01, 0xa1, 0x01, b'r',
        ],
    );
}

// A sender attach with max-message-size and initial-delivery-count 0 (which must be
// written: it has no default).
#[test]
fn attach_keeps_a_zero_initial_delivery_count() {
    let attach = Attach {
        name: "s".into(),
        handle: 1,
        initial_delivery_count: Some(0),
        max_message_size: Some(1 << 20),
        ..Attach::default()
    };
    check(
        attach,
        &[
            0x00, 0x53, 0x12, 0xc0, 0x17, 0x0b, 0xa1, 0x01, b's', 0x52, 0x01, 0x42, 0x40, 0x40,
            0x40, 0x40, 0x40, 0x40, 0x43, 0x80, 0, 0, 0, 0, 0, 0x10, 0, 0,
        ],
    );
}

// 2.7.4: flow granting 100 credits on handle 0, with drain.
#[test]
fn flow_with_credit_and_drain() {
    let flow = Flow {
        next_incoming_id: Some(0),
        incoming_window: 2048,
        next_outgoing_id: 1,
        outgoing_window: 2048,
        handle: Some(0),
        delivery_count: Some(0),
        link_credit: Some(100),
        available: None,
        drain: true,
        ..Flow::default()
    };
    check(
        flow,
        &[
            0x00, 0x53, 0x13, 0xc0, 0x14, 0x09, 0x43, 0x70, 0, 0, 0x08, 0, 0x52, 0x01, 0x70, 0, 0,
            0x08, 0, 0x43, 0x43, 0x52, 0x64, 0x40, 0x41,
        ],
    );
}

// 2.7.5: transfer [handle=0, delivery-id=1, delivery-tag=01020304, message-format=0,
// settled=false], followed by its payload in the same frame.
#[test]
fn transfer_with_payload() {
    let transfer = Transfer {
        handle: 0,
        delivery_id: Some(1),
        delivery_tag: Some(vec![1, 2, 3, 4]),
        message_format: Some(0),
        settled: Some(false),
        ..Transfer::default()
    };
    let body = [
        0x00, 0x53, 0x14, 0xc0, 0x0c, 0x05, 0x43, 0x52, 0x01, 0xa0, 0x04, 1, 2, 3, 4, 0x43, 0x42,
    ];
    check(transfer.clone(), &body);
    let payload = [0x00, 0x53, 0x77, 0xa1, 0x01, b'm'];
    let mut frame = Vec::new();
    encode_frame(3, &transfer.clone().into(), &payload, &mut frame).unwrap();
    let ReadFrame::Frame { frame: f, len } = read_frame(&frame, 512).unwrap() else {
        panic!("no frame");
    };
    assert_eq!(len, 8 + body.len() + payload.len());
    assert_eq!(f.channel, 3);
    let (p, rest) = decode_frame_body(f.body).unwrap().unwrap();
    assert_eq!(p, Performative::Transfer(transfer));
    assert_eq!(rest, payload);
}

// 2.7.6: the broker's settled echo of an accepted delivery 3.
#[test]
fn disposition_with_accepted() {
    let disposition = Disposition {
        role: Role::Receiver,
        first: 3,
        last: None,
        settled: true,
        state: Some(DeliveryState::Accepted(Accepted)),
        batchable: false,
    };
    check(
        disposition,
        &[
            0x00, 0x53, 0x15, 0xc0, 0x0a, 0x05, 0x41, 0x52, 0x03, 0x40, 0x41, 0x00, 0x53, 0x24,
            0x45,
        ],
    );
}

// 2.7.7-2.7.9: detach, end and close, with and without an error.
#[test]
fn detach_end_close() {
    check(
        Detach {
            handle: 2,
            closed: true,
            error: None,
        },
        &[0x00, 0x53, 0x16, 0xc0, 0x04, 0x02, 0x52, 0x02, 0x41],
    );
    check(End::default(), &[0x00, 0x53, 0x17, 0x45]);
    check(Close::default(), &[0x00, 0x53, 0x18, 0x45]);
    let error = AmqpError {
        condition: "amqp:not-found".into(),
        description: None,
        info: Vec::new(),
    };
    let mut expected = vec![
        0x00, 0x53, 0x18, 0xc0, 0x17, 0x01, 0x00, 0x53, 0x1d, 0xc0, 0x11, 0x01, 0xa3, 0x0e,
    ];
    expected.extend(b"amqp:not-found");
    check(Close { error: Some(error) }, &expected);
}

#[test]
fn absent_fields_read_as_defaults_and_extra_fields_are_ignored() {
    // open with only its container-id: every default restored.
    let (p, _) = decode_frame_body(&[0x00, 0x53, 0x10, 0xc0, 0x04, 0x01, 0xa1, 0x01, b'x'])
        .unwrap()
        .unwrap();
    let Performative::Open(open) = p else {
        panic!("not open")
    };
    assert_eq!(open.max_frame_size, u32::MAX);
    assert_eq!(open.channel_max, u16::MAX);
    // detach with a twelfth field from a future version.
    let value = Value::described(
        0x16,
        Value::List(vec![
            Value::Uint(1),
            Value::Null,
            Value::Null,
            Value::string("extra"),
        ]),
    );
    assert_eq!(
        Performative::from_value(value).unwrap(),
        Performative::Detach(Detach {
            handle: 1,
            closed: false,
            error: None
        })
    );
    // Symbolic descriptors are the same performative.
    let mut bytes = vec![0x00, 0xa3, 13];
    bytes.extend(b"amqp:end:list");
    bytes.push(0x45);
    assert_eq!(
        decode_frame_body(&bytes).unwrap().unwrap().0,
        Performative::End(End::default())
    );
}

#[test]
fn bad_performatives_name_what_failed() {
    assert!(decode_frame_body(&[]).unwrap().is_none());
    assert!(matches!(
        decode_frame_body(&[0x00, 0x53, 0x19, 0x45]),
        Err(FieldError::UnexpectedDescriptor {
            context: "performative",
            descriptor: Value::Ulong(0x19)
        })
    ));
    // attach without its handle.
    assert_eq!(
        decode_frame_body(&[0x00, 0x53, 0x12, 0xc0, 0x04, 0x01, 0xa1, 0x01, b'l']).unwrap_err(),
        FieldError::Missing {
            context: "attach",
            field: "handle"
        }
    );
    // flow with a string incoming-window.
    assert_eq!(
        decode_frame_body(&[0x00, 0x53, 0x13, 0xc0, 0x04, 0x02, 0x40, 0xa1, 0x00]).unwrap_err(),
        FieldError::WrongType {
            context: "flow",
            field: "incoming-window",
            expected: "uint",
            found: "string"
        }
    );
    assert!(matches!(
        decode_frame_body(&[0x45]),
        Err(FieldError::NotDescribed {
            context: "performative",
            found: "list"
        })
    ));
    assert!(matches!(
        decode_frame_body(&[0x00, 0x53]),
        Err(FieldError::Decode(_))
    ));
}
