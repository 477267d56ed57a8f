//! Property tests: every value survives encode then decode, and the encoder's output is
//! exactly what the decoder consumes.

mod common;

use docflow_amqp::codec::{decode, encode_to_vec};
use docflow_amqp::message::{Body, Header, Message, Properties};
use docflow_amqp::{Value, encode};
use proptest::collection::vec;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_of_encode_is_identity(v in common::value(common::ALL)) {
        let bytes = encode_to_vec(&v);
        let (decoded, used) = decode(&bytes).unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(decoded, v);
    }

    /// Values written one after another come back one by one.
    #[test]
    fn concatenated_values_decode_in_order(values in vec(common::value(common::ALL), 1..5)) {
        let mut bytes = Vec::new();
        for v in &values {
            encode(v, &mut bytes);
        }
        let mut pos = 0;
        for v in &values {
            let (decoded, used) = decode(&bytes[pos..]).unwrap();
            prop_assert_eq!(&decoded, v);
            pos += used;
        }
        prop_assert_eq!(pos, bytes.len());
    }

    #[test]
    fn messages_round_trip(
        delivery_count in proptest::option::of(any::<u32>()),
        ttl in proptest::option::of(any::<u32>()),
        id in prop_oneof![
            any::<u64>().prop_map(Value::Ulong),
            any::<[u8; 16]>().prop_map(Value::Uuid),
            ".{0,10}".prop_map(Value::String),
            vec(any::<u8>(), 0..10).prop_map(Value::Binary),
        ],
        annotations in vec((common::symbol_text().prop_map(Value::Symbol), common::primitive()), 0..4),
        app in vec((".{0,8}", common::primitive()), 0..4),
        body in prop_oneof![
            vec(vec(any::<u8>(), 0..300), 0..3).prop_map(Body::Data),
            vec(vec(common::primitive(), 0..3), 1..3).prop_map(Body::Sequence),
            common::value(common::ALL).prop_map(Body::Value),
        ],
    ) {
        let message = Message {
            header: Some(Header { delivery_count, ttl, ..Header::default() }),
            message_annotations: Some(annotations),
            properties: Some(Properties { message_id: Some(id), ..Properties::default() }),
            application_properties: Some(app),
            body,
            ..Message::default()
        };
        prop_assert_eq!(Message::decode(&message.encode()).unwrap(), message);
    }
}
