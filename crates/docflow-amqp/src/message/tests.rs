//! Byte vectors and round trips for whole messages (part 3, section 3.2) and batches.

use super::*;
use crate::types::Array;

// Section 3.2: header, then properties, then application-properties, then an amqp-value
// body; each section a described value.
#[test]
fn a_cbs_put_token_request_encodes_section_by_section() {
    let message = Message {
        properties: Some(Properties {
            message_id: Some(Value::string("1")),
            ..Properties::default()
        }),
        application_properties: Some(vec![("operation".into(), Value::string("put-token"))]),
        body: Body::Value(Value::string("tok")),
        ..Message::default()
    };
    let bytes = message.encode();
    let mut expected = vec![0x00, 0x53, 0x73, 0xc0, 0x04, 0x01, 0xa1, 0x01, b'1'];
    expected.extend([0x00, 0x53, 0x74, 0xc1, 0x17, 0x02, 0xa1, 0x09]);
    expected.extend(b"operation");
    expected.extend([0xa1, 0x09]);
    expected.extend(b"put-token");
    expected.extend([0x00, 0x53, 0x77, 0xa1, 0x03, b't', b'o', b'k']);
    assert_eq!(bytes, expected);
    assert_eq!(Message::decode(&bytes).unwrap(), message);
}

/// A delivered Service Bus message: every section, with the annotation types the SDKs unbox.
fn full_message() -> Message {
    Message {
        header: Some(Header {
            delivery_count: Some(0),
            ..Header::default()
        }),
        delivery_annotations: Some(vec![(Value::symbol("x-opt-d"), Value::Null)]),
        message_annotations: Some(vec![
            (Value::symbol("x-opt-sequence-number"), Value::Long(1)),
            (
                Value::symbol("x-opt-enqueued-time"),
                Value::Timestamp(1_700_000_000_000),
            ),
            (Value::symbol("x-opt-message-state"), Value::Int(0)),
            (
                Value::symbol("x-opt-locked-until"),
                Value::Timestamp(1_700_000_060_000),
            ),
        ]),
        properties: Some(Properties {
            message_id: Some(Value::Uuid([1; 16])),
            correlation_id: Some(Value::Binary(vec![1, 2])),
            group_id: Some("s".into()),
            subject: Some("label".into()),
            ..Properties::default()
        }),
        application_properties: Some(vec![
            ("DeadLetterReason".into(), Value::string("x")),
            ("n".into(), Value::Double(1.5)),
        ]),
        body: Body::Data(vec![b"hello".to_vec(), vec![0; 300]]),
        footer: Some(vec![(Value::symbol("f"), Value::Uint(1))]),
    }
}

#[test]
fn a_full_message_round_trips_with_exact_types() {
    let message = full_message();
    let bytes = message.encode();
    // The header comes first, with delivery-count 0 written as uint0.
    assert_eq!(
        &bytes[..11],
        [
            0x00, 0x53, 0x70, 0xc0, 0x06, 0x05, 0x40, 0x40, 0x40, 0x40, 0x43
        ]
    );
    assert_eq!(Message::decode(&bytes).unwrap(), message);
    for body in [
        Body::Sequence(vec![vec![Value::Int(1)], vec![]]),
        Body::Value(Value::Array(Array::symbols(["a"]))),
        Body::Value(Value::Null),
        Body::Data(vec![]),
    ] {
        let m = Message {
            body,
            ..full_message()
        };
        assert_eq!(Message::decode(&m.encode()).unwrap(), m);
    }
    assert_eq!(Message::decode(&[]).unwrap(), Message::default());
}

#[test]
fn sections_are_checked() {
    let value = Message::with_value(Value::Null).encode();
    let data = Message::with_data(vec![1]).encode();
    let mixed = [data.clone(), value.clone()].concat();
    assert_eq!(
        Message::decode(&mixed).unwrap_err(),
        MessageError::MixedBody { offset: data.len() }
    );
    let twice = [value.clone(), value].concat();
    assert!(matches!(
        Message::decode(&twice),
        Err(MessageError::MixedBody { .. })
    ));
    let header = [0x00, 0x53, 0x70, 0x45];
    assert_eq!(
        Message::decode(&[header, header].concat()).unwrap_err(),
        MessageError::DuplicateSection {
            offset: 4,
            section: "header"
        }
    );
    assert_eq!(
        Message::decode(&[0x00, 0x53, 0x79, 0x40]).unwrap_err(),
        MessageError::UnknownSection {
            offset: 0,
            descriptor: Value::Ulong(0x79)
        }
    );
    assert_eq!(
        Message::decode(&[0x40]).unwrap_err(),
        MessageError::UnknownSection {
            offset: 0,
            descriptor: Value::Null
        }
    );
    // application-properties keys must be strings.
    assert!(matches!(
        Message::decode(&[0x00, 0x53, 0x74, 0xc1, 0x03, 0x02, 0x43, 0x40]),
        Err(MessageError::Section {
            offset: 0,
            source: FieldError::WrongType { field: "key", .. }
        })
    ));
    // A data section must hold binary.
    assert!(matches!(
        Message::decode(&[0x00, 0x53, 0x75, 0x40]),
        Err(MessageError::Section { offset: 0, .. })
    ));
    // Truncation is a decode error with its offset.
    assert!(matches!(
        Message::decode(&[0x00, 0x53, 0x75, 0xa0, 0x05, 1]),
        Err(MessageError::Decode(DecodeError::Truncated {
            offset: 5,
            ..
        }))
    ));
}

#[test]
fn batches_split_into_their_messages() {
    let messages: Vec<Message> = (0..3u64)
        .map(|i| Message {
            properties: Some(Properties {
                message_id: Some(Value::Ulong(i)),
                group_id: Some("g".into()),
                ..Properties::default()
            }),
            ..Message::with_data(vec![i as u8])
        })
        .collect();
    let envelope = batch(&messages);
    assert_eq!(envelope.properties, messages[0].properties);
    let wire = envelope.encode();
    let received = Message::decode(&wire).unwrap();
    assert_eq!(split_batch(&received).unwrap(), messages);
    assert_eq!(BATCH_MESSAGE_FORMAT, 0x8001_3700);
    assert_eq!(split_batch(&batch(&[])).unwrap(), Vec::<Message>::new());

    let not_data = Message::with_value(Value::Null);
    assert_eq!(
        split_batch(&not_data).unwrap_err(),
        MessageError::BatchBody {
            found: "amqp-value"
        }
    );
    let broken = Message {
        body: Body::Data(vec![Message::with_data(vec![]).encode(), vec![0x40]]),
        ..Message::default()
    };
    assert!(matches!(
        split_batch(&broken),
        Err(MessageError::BatchEntry { index: 1, .. })
    ));
}

// Regression: each section was decoded with its own zero-width budget, so many amqp-sequence
// sections each holding an array of input-length nulls held (input length)² / 16 values.
#[test]
fn zero_width_elements_share_one_budget_across_sections() {
    let section = |n: u32| {
        // amqp-sequence [array32 of n nulls]
        let mut bytes = vec![0x00, 0x53, 0x76, 0xc0, 11, 1, 0xf0, 0, 0, 0, 5];
        bytes.extend(n.to_be_bytes());
        bytes.push(0x40);
        bytes
    };
    let one = section(40_000);
    let message = Message::decode(&one).unwrap();
    assert!(matches!(&message.body, Body::Sequence(s) if s.len() == 1));
    let many: Vec<u8> = (0..100).flat_map(|_| section(40_000)).collect();
    assert_eq!(many.len(), 1600);
    assert!(matches!(
        Message::decode(&many),
        Err(MessageError::Decode(DecodeError::CountTooLarge {
            what: "array",
            ..
        }))
    ));
}

// Regression (found by fuzzing amqp_message): the zero-width budget was exactly the input's
// length, so 66 nulls in a 66-byte message decoded, but not from its shorter re-encoding.
#[test]
fn a_decoded_message_decodes_again_from_its_encoding() {
    let bytes = [
        0x00, 0x53, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x41, 0xe0, 0x2a, 0x05, 0x83, 0x00,
        0x00, 0xff, 0x80, 0x06, 0x00, 0x07, 0x00, 0x00, 0x05, 0x00, 0x0a, 0xff, 0xff, 0xff, 0xff,
        0x30, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x51, 0x42, 0x00, 0x42, 0x00, 0x42,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x51, 0x51, 0x51, 0x51, 0x51, 0x51, 0x51, 0x51, 0x53, 0x77,
        0xe0, 0x02, 0x42, 0x40, 0x53, 0x00,
    ];
    let message = Message::decode(&bytes).unwrap();
    let encoded = message.encode();
    assert!(encoded.len() < bytes.len());
    assert_eq!(Message::decode(&encoded).unwrap(), message);
}
