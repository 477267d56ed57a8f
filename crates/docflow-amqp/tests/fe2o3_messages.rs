//! Cross-check of whole messages against fe2o3-amqp-types: a Service Bus delivery encoded by
//! us reads back in fe2o3 with every section and value type intact, fe2o3's encoding reads
//! back in ours, and the one documented difference: fe2o3 leaves a `delivery-count` of 0
//! off the wire (the spec's default, but the .NET SDK throws without it), which we write
//! when the caller sets it.

use docflow_amqp::message::{Body, Header, Message, Properties};
use docflow_amqp::{Composite, Value};
use fe2o3_amqp_types::messaging as fm;
use fe2o3_amqp_types::messaging::message::__private::{Deserializable, Serializable};
use serde_amqp::Value as TheirValue;
use serde_amqp::primitives::{Symbol, Timestamp};

type TheirMessage = fm::Message<fm::Body<TheirValue>>;

fn delivered() -> Message {
    Message {
        header: Some(Header {
            durable: Some(true),
            priority: Some(4),
            ttl: Some(60_000),
            first_acquirer: Some(false),
            delivery_count: Some(3),
        }),
        message_annotations: Some(vec![
            (
                Value::symbol("x-opt-enqueued-time"),
                Value::Timestamp(1_700_000_000_000),
            ),
            (Value::symbol("x-opt-sequence-number"), Value::Long(42)),
            (Value::symbol("x-opt-message-state"), Value::Int(0)),
        ]),
        properties: Some(Properties {
            message_id: Some(Value::Uuid([9; 16])),
            correlation_id: Some(Value::string("request-1")),
            group_id: Some("session-a".into()),
            content_type: Some("application/json".into()),
            absolute_expiry_time: Some(1_700_000_060_000),
            ..Properties::default()
        }),
        application_properties: Some(vec![
            ("status-code".into(), Value::Int(200)),
            ("DeadLetterReason".into(), Value::string("why")),
        ]),
        body: Body::Value(Value::string("hello")),
        ..Message::default()
    }
}

#[test]
fn our_message_reads_in_fe2o3_with_exact_types() {
    let bytes = delivered().encode();
    let theirs: Deserializable<TheirMessage> = serde_amqp::from_slice(&bytes).unwrap();
    let m = theirs.0;
    let header = m.header.unwrap();
    assert_eq!(header.delivery_count, 3);
    assert_eq!(header.ttl, Some(60_000));
    assert!(header.durable);
    let props = m.properties.unwrap();
    assert_eq!(props.message_id, Some(fm::MessageId::Uuid([9; 16].into())));
    assert_eq!(
        props.correlation_id,
        Some(fm::MessageId::String("request-1".into()))
    );
    assert_eq!(props.group_id.as_deref(), Some("session-a"));
    assert_eq!(
        props.absolute_expiry_time,
        Some(Timestamp::from_milliseconds(1_700_000_060_000))
    );
    let annotations = m.message_annotations.unwrap().0;
    let get = |k: &str| {
        annotations
            .get(&fm::annotations::OwnedKey::Symbol(Symbol::from(k)))
            .cloned()
    };
    assert_eq!(get("x-opt-sequence-number"), Some(TheirValue::Long(42)));
    assert_eq!(
        get("x-opt-enqueued-time"),
        Some(TheirValue::Timestamp(Timestamp::from_milliseconds(
            1_700_000_000_000
        )))
    );
    assert_eq!(get("x-opt-message-state"), Some(TheirValue::Int(0)));
    let app = m.application_properties.unwrap().0;
    assert_eq!(
        app.get("status-code"),
        Some(&fe2o3_amqp_types::primitives::SimpleValue::Int(200))
    );
    let fm::Body::Value(fm::AmqpValue(body)) = m.body else {
        panic!("not an amqp-value body")
    };
    assert_eq!(body, TheirValue::String("hello".into()));
}

#[test]
fn fe2o3_message_reads_in_ours() {
    let bytes = delivered().encode();
    let theirs: Deserializable<TheirMessage> = serde_amqp::from_slice(&bytes).unwrap();
    let their_bytes = serde_amqp::to_vec(&Serializable(theirs.0)).unwrap();
    let ours = Message::decode(&their_bytes).unwrap();
    let expected = delivered();
    assert_eq!(ours.properties, expected.properties);
    assert_eq!(ours.message_annotations, expected.message_annotations);
    assert_eq!(ours.application_properties, expected.application_properties);
    assert_eq!(ours.body, expected.body);
    // fe2o3 leaves fields at their spec defaults (priority 4, first-acquirer false) off the
    // wire, so they read back as absent.
    let header = Header {
        priority: None,
        first_acquirer: None,
        ..expected.header.unwrap()
    };
    assert_eq!(ours.header, Some(header));
}

#[test]
fn a_zero_delivery_count_is_written_by_us_and_dropped_by_fe2o3() {
    let ours = Header {
        delivery_count: Some(0),
        ..Header::default()
    };
    let mut bytes = Vec::new();
    ours.encode(&mut bytes);
    assert_eq!(bytes.last(), Some(&0x43), "delivery-count written as uint0");
    let theirs: fm::Header = serde_amqp::from_slice(&bytes).unwrap();
    assert_eq!(theirs.delivery_count, 0);
    let their_bytes = serde_amqp::to_vec(&theirs).unwrap();
    let (decoded, _) = Header::decode(&their_bytes).unwrap();
    assert_eq!(
        decoded.delivery_count, None,
        "fe2o3 wrote {their_bytes:02x?}"
    );
}
