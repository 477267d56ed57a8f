//! Property tests on hostile input: arbitrary and mutated bytes never panic any decoder, and
//! whatever decodes re-encodes to a value that decodes the same.

mod common;

use docflow_amqp::codec::{decode, encode_to_vec};
use docflow_amqp::frame::{ProtocolHeader, ReadFrame, read_frame};
use docflow_amqp::message::Message;
use docflow_amqp::performative::{Attach, Disposition, Transfer, decode_frame_body};
use docflow_amqp::sasl::SaslFrame;
use docflow_amqp::terminus::{Source, Target};
use docflow_amqp::{Composite, DeliveryState, Performative, Role, delivery_state::Accepted};
use proptest::collection::vec;
use proptest::prelude::*;

/// Runs every decoder of the crate on `bytes`; none may panic.
fn decode_everything(bytes: &[u8]) {
    if let Ok((value, used)) = decode(bytes) {
        assert!(used <= bytes.len());
        let again = encode_to_vec(&value);
        assert_eq!(decode(&again).unwrap().0, value);
    }
    let _ = decode_frame_body(bytes);
    let _ = SaslFrame::decode(bytes);
    if let Ok(message) = Message::decode(bytes) {
        assert_eq!(Message::decode(&message.encode()).unwrap(), message);
        let _ = docflow_amqp::message::split_batch(&message);
    }
    let _ = ProtocolHeader::read(bytes);
    if let Ok(ReadFrame::Frame { frame, len }) = read_frame(bytes, u32::MAX) {
        assert!(len <= bytes.len());
        let _ = decode_frame_body(frame.body);
    }
}

/// Valid encodings to mutate: a value, and three performatives with nested parts.
fn seeds() -> impl Strategy<Value = Vec<u8>> {
    let attach = Attach {
        name: "link".into(),
        handle: 1,
        role: Role::Receiver,
        source: Some(Source {
            address: Some("q/Subscriptions/s".into()),
            filter: vec![(
                docflow_amqp::Value::symbol("com.microsoft:session-filter"),
                docflow_amqp::Value::Null,
            )],
            ..Source::default()
        }),
        target: Some(Target::default()),
        ..Attach::default()
    };
    let transfer = Transfer {
        handle: 1,
        delivery_id: Some(7),
        delivery_tag: Some(vec![0; 16]),
        message_format: Some(0x8001_3700),
        state: Some(DeliveryState::Accepted(Accepted)),
        ..Transfer::default()
    };
    let disposition = Disposition {
        role: Role::Sender,
        first: 1,
        last: Some(9),
        settled: true,
        state: Some(DeliveryState::Accepted(Accepted)),
        batchable: false,
    };
    prop_oneof![
        common::value(common::ALL).prop_map(|v| encode_to_vec(&v)),
        Just(encode_to_vec(&attach.to_value())),
        Just(encode_to_vec(&Performative::Transfer(transfer).to_value())),
        Just(encode_to_vec(&disposition.to_value())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
    }

    /// Bytes that start like a value's constructor, to get past the first check more often.
    #[test]
    fn arbitrary_compounds_never_panic(
        code in prop_oneof![Just(0x00u8), Just(0xc0), Just(0xd0), Just(0xc1), Just(0xd1), Just(0xe0), Just(0xf0)],
        rest in vec(any::<u8>(), 0..256),
    ) {
        let mut bytes = vec![code];
        bytes.extend(rest);
        decode_everything(&bytes);
    }

    #[test]
    fn mutated_encodings_never_panic(
        seed in seeds(),
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = seed;
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        decode_everything(&bytes);
        let len = cut.index(bytes.len() + 1);
        decode_everything(&bytes[..len]);
    }

    /// A frame reader fed bytes in arbitrary chunks finds the same frames as one fed at once.
    #[test]
    fn frames_read_incrementally(
        bodies in vec(vec(any::<u8>(), 0..40), 1..5),
        chunk in 1usize..17,
    ) {
        let mut wire = Vec::new();
        for body in &bodies {
            docflow_amqp::frame::encode_frame(docflow_amqp::frame::FrameType::Amqp, 0, body, &mut wire).unwrap();
        }
        let mut buffer: Vec<u8> = Vec::new();
        let mut found = Vec::new();
        for piece in wire.chunks(chunk) {
            buffer.extend_from_slice(piece);
            while let ReadFrame::Frame { frame, len } = read_frame(&buffer, 512).unwrap() {
                found.push(frame.body.to_vec());
                buffer.drain(..len);
            }
        }
        prop_assert!(buffer.is_empty());
        prop_assert_eq!(found, bodies);
    }
}
