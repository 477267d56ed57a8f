//! AMQP messages to the broker's messages (the property mapping of the Service Bus AMQP
//! guide: `subject` is the label, `group-id` the session id, `header.ttl` the time to live).
//! What the mapping leaves out is kept beside the message by [`kept`].

mod kept;

use std::time::Duration;

use chrono::{DateTime, Utc};
use docflow_amqp::Value;
use docflow_amqp::codec::encode_to_vec;
use docflow_amqp::message::{Body, Header, Message as AmqpMessage, Properties};
use docflow_servicebus::message::{Message, MessageState, PropertyValue, ReceivedMessage};

/// The annotation carrying a scheduled enqueue time (a timestamp).
const SCHEDULED_ENQUEUE_TIME: &str = "x-opt-scheduled-enqueue-time";
/// The annotation carrying a partition key (a string).
const PARTITION_KEY: &str = "x-opt-partition-key";

/// Converts a received AMQP message into a broker message.
///
/// Ids of type uuid, ulong or binary are stored as their text form (for duplicate detection,
/// filters and REST); `body` holds the body's bytes (data sections joined, a string or binary
/// value as it is, another value or sequence as its AMQP encoding). The original ids and body
/// are kept in `amqp_sections` with everything else the mapping does not carry.
pub(crate) fn to_broker_message(amqp: &AmqpMessage) -> Message {
    let mut message = Message::new(body_bytes(&amqp.body));
    message.amqp_sections = kept::keep(amqp, |value| property_value(value).is_some());
    if let Some(p) = &amqp.properties {
        message.message_id = p.message_id.as_ref().and_then(id_text);
        message.correlation_id = p.correlation_id.as_ref().and_then(id_text);
        message.subject = p.subject.clone();
        message.to = p.to.clone();
        message.reply_to = p.reply_to.clone();
        message.session_id = p.group_id.clone();
        message.reply_to_session_id = p.reply_to_group_id.clone();
        message.content_type = p.content_type.clone();
    }
    if let Some(ttl) = amqp.header.as_ref().and_then(|h| h.ttl) {
        message.time_to_live = Some(Duration::from_millis(u64::from(ttl)));
    }
    for (key, value) in amqp.message_annotations.iter().flatten() {
        let Value::Symbol(key) = key else { continue };
        match (key.as_str(), value) {
            (SCHEDULED_ENQUEUE_TIME, Value::Timestamp(ms)) => {
                message.scheduled_enqueue_time = DateTime::<Utc>::from_timestamp_millis(*ms);
            }
            (PARTITION_KEY, Value::String(k)) => message.partition_key = Some(k.clone()),
            _ => {}
        }
    }
    for (key, value) in amqp.application_properties.iter().flatten() {
        if let Some(value) = property_value(value) {
            message.properties.insert(key.clone(), value);
        }
    }
    message
}

/// Converts a message the broker delivers into the AMQP message a receiver gets, with the
/// annotations of the Service Bus mapping in their exact AMQP types.
///
/// `header.delivery-count` is always encoded: it counts earlier deliveries (the broker's
/// count includes this one). Application properties keep the broker's types (integers are
/// `long`).
pub(crate) fn to_amqp_message(received: &ReceivedMessage) -> AmqpMessage {
    let mut delivered = mapped_message(received);
    if let Some(sections) = &received.message.amqp_sections {
        kept::restore(&mut delivered, sections);
    }
    delivered
}

/// The AMQP message of the broker's fields alone.
fn mapped_message(received: &ReceivedMessage) -> AmqpMessage {
    let m = &received.message;
    let text = |s: &Option<String>| s.clone();
    let ttl = m
        .time_to_live
        .map(|t| u32::try_from(t.as_millis()).unwrap_or(u32::MAX));
    let mut annotations = vec![
        annotation(
            "x-opt-sequence-number",
            Value::Long(received.sequence_number),
        ),
        annotation(
            "x-opt-enqueued-time",
            Value::Timestamp(received.enqueued_time.timestamp_millis()),
        ),
        annotation(
            "x-opt-enqueue-sequence-number",
            Value::Long(received.enqueued_sequence_number),
        ),
        annotation(
            "x-opt-message-state",
            Value::Int(match received.state {
                MessageState::Active => 0,
                MessageState::Deferred => 1,
                MessageState::Scheduled => 2,
            }),
        ),
    ];
    if let Some(until) = received.locked_until {
        annotations.push(annotation(
            "x-opt-locked-until",
            Value::Timestamp(until.timestamp_millis()),
        ));
    }
    if let Some(at) = m.scheduled_enqueue_time {
        annotations.push(annotation(
            SCHEDULED_ENQUEUE_TIME,
            Value::Timestamp(at.timestamp_millis()),
        ));
    }
    if let Some(key) = &m.partition_key {
        annotations.push(annotation(PARTITION_KEY, Value::String(key.clone())));
    }
    if let Some(source) = &received.dead_letter_source {
        annotations.push(annotation(
            "x-opt-deadletter-source",
            Value::String(source.clone()),
        ));
    }
    let properties = m
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), property_to_value(v)))
        .collect::<Vec<_>>();
    AmqpMessage {
        header: Some(Header {
            ttl,
            delivery_count: Some(received.delivery_count.saturating_sub(1)),
            ..Header::default()
        }),
        message_annotations: Some(annotations),
        properties: Some(Properties {
            message_id: m.message_id.clone().map(Value::String),
            correlation_id: m.correlation_id.clone().map(Value::String),
            subject: text(&m.subject),
            to: text(&m.to),
            reply_to: text(&m.reply_to),
            content_type: text(&m.content_type),
            group_id: text(&m.session_id),
            reply_to_group_id: text(&m.reply_to_session_id),
            absolute_expiry_time: received.expires_at.map(|t| t.timestamp_millis()),
            creation_time: Some(received.enqueued_time.timestamp_millis()),
            ..Properties::default()
        }),
        application_properties: (!properties.is_empty()).then_some(properties),
        body: Body::Data(vec![m.body.clone()]),
        ..AmqpMessage::default()
    }
}

fn annotation(key: &str, value: Value) -> (Value, Value) {
    (Value::Symbol(key.into()), value)
}

fn property_to_value(value: &PropertyValue) -> Value {
    match value {
        PropertyValue::String(s) => Value::String(s.clone()),
        PropertyValue::Int(n) => Value::Long(*n),
        PropertyValue::Double(x) => Value::Double(*x),
        PropertyValue::Bool(b) => Value::Boolean(*b),
        PropertyValue::DateTime(t) => Value::Timestamp(t.timestamp_millis()),
    }
}

fn body_bytes(body: &Body) -> Vec<u8> {
    match body {
        Body::Data(sections) => sections.concat(),
        Body::Value(Value::Binary(bytes)) => bytes.clone(),
        Body::Value(Value::String(text)) => text.clone().into_bytes(),
        Body::Value(value) => encode_to_vec(value),
        Body::Sequence(lists) => lists
            .iter()
            .flat_map(|items| encode_to_vec(&Value::List(items.clone())))
            .collect(),
    }
}

/// A message or correlation id as text: strings as they are, uuids hyphenated, numbers in
/// decimal, binary in hex.
fn id_text(id: &Value) -> Option<String> {
    match id {
        Value::String(s) | Value::Symbol(s) => Some(s.clone()),
        Value::Uuid(bytes) => Some(uuid::Uuid::from_bytes(*bytes).hyphenated().to_string()),
        Value::Ulong(n) => Some(n.to_string()),
        Value::Binary(bytes) => Some(bytes.iter().map(|b| format!("{b:02x}")).collect()),
        _ => None,
    }
}

/// An application property as the broker's typed value; `None` for types it cannot hold
/// (lists, maps, arrays, described values).
pub(crate) fn property_value(value: &Value) -> Option<PropertyValue> {
    Some(match value {
        Value::String(s) | Value::Symbol(s) => PropertyValue::String(s.clone()),
        Value::Char(c) => PropertyValue::String(c.to_string()),
        Value::Uuid(bytes) => {
            PropertyValue::String(uuid::Uuid::from_bytes(*bytes).hyphenated().to_string())
        }
        Value::Boolean(b) => PropertyValue::Bool(*b),
        Value::Ubyte(n) => PropertyValue::Int(i64::from(*n)),
        Value::Ushort(n) => PropertyValue::Int(i64::from(*n)),
        Value::Uint(n) => PropertyValue::Int(i64::from(*n)),
        Value::Byte(n) => PropertyValue::Int(i64::from(*n)),
        Value::Short(n) => PropertyValue::Int(i64::from(*n)),
        Value::Int(n) => PropertyValue::Int(i64::from(*n)),
        Value::Long(n) => PropertyValue::Int(*n),
        Value::Ulong(n) => {
            i64::try_from(*n).map_or(PropertyValue::Double(*n as f64), PropertyValue::Int)
        }
        Value::Float(x) => PropertyValue::Double(f64::from(*x)),
        Value::Double(x) => PropertyValue::Double(*x),
        Value::Timestamp(ms) => {
            PropertyValue::DateTime(DateTime::<Utc>::from_timestamp_millis(*ms)?)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_map_to_the_broker_message() {
        let amqp = AmqpMessage {
            header: Some(Header {
                ttl: Some(5_000),
                ..Header::default()
            }),
            properties: Some(Properties {
                message_id: Some(Value::Uuid([0x11; 16])),
                correlation_id: Some(Value::String("c".into())),
                subject: Some("label".into()),
                group_id: Some("s1".into()),
                content_type: Some("text/plain".into()),
                ..Properties::default()
            }),
            message_annotations: Some(vec![(
                Value::Symbol(SCHEDULED_ENQUEUE_TIME.into()),
                Value::Timestamp(1_700_000_000_000),
            )]),
            application_properties: Some(vec![
                ("n".into(), Value::Int(5)),
                ("list".into(), Value::List(vec![])),
            ]),
            ..AmqpMessage::with_data(b"hi".to_vec())
        };
        let m = to_broker_message(&amqp);
        assert_eq!(m.body, b"hi");
        assert_eq!(
            m.message_id.as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
        assert_eq!(m.correlation_id.as_deref(), Some("c"));
        assert_eq!(m.subject.as_deref(), Some("label"));
        assert_eq!(m.session_id.as_deref(), Some("s1"));
        assert_eq!(m.time_to_live, Some(Duration::from_secs(5)));
        assert_eq!(
            m.scheduled_enqueue_time.map(|t| t.timestamp_millis()),
            Some(1_700_000_000_000)
        );
        assert_eq!(m.property("n"), Some(&PropertyValue::Int(5)));
        assert_eq!(m.property("list"), None);
    }

    fn delivered(message: Message) -> AmqpMessage {
        to_amqp_message(&ReceivedMessage {
            message,
            sequence_number: 7,
            enqueued_sequence_number: 7,
            enqueued_time: DateTime::from_timestamp_millis(1_700_000_000_000).unwrap(),
            expires_at: None,
            delivery_count: 1,
            lock_token: None,
            locked_until: None,
            state: MessageState::Active,
            dead_letter_source: None,
            location: None,
        })
    }

    #[test]
    fn a_plain_message_keeps_nothing_beside_its_fields() {
        let amqp = AmqpMessage {
            header: Some(Header {
                ttl: Some(1_000),
                ..Header::default()
            }),
            properties: Some(Properties {
                message_id: Some(Value::String("m".into())),
                ..Properties::default()
            }),
            application_properties: Some(vec![("n".into(), Value::Int(5))]),
            ..AmqpMessage::with_data(b"hi".to_vec())
        };
        assert_eq!(to_broker_message(&amqp).amqp_sections, None);
    }

    #[test]
    fn what_the_mapping_leaves_out_comes_back_as_it_was_sent() {
        let symbol = |s: &str| Value::Symbol(s.into());
        let sent = [
            Body::Data(vec![b"aa".to_vec(), b"bb".to_vec(), b"cc".to_vec()]),
            Body::Sequence(vec![vec![
                Value::Binary(b"message".to_vec()),
                Value::Double(123.456),
                Value::Boolean(true),
            ]]),
            Body::Value(Value::Map(vec![(
                Value::Binary(b"key".to_vec()),
                Value::List(vec![Value::Long(-123), Value::Boolean(false)]),
            )])),
        ];
        for body in sent {
            let amqp = AmqpMessage {
                header: Some(Header {
                    priority: Some(10),
                    ttl: Some(60_000),
                    ..Header::default()
                }),
                delivery_annotations: Some(vec![(symbol("delivery_key"), "v".into())]),
                message_annotations: Some(vec![
                    (symbol("annotation_key"), "value".into()),
                    (symbol(PARTITION_KEY), "pk".into()),
                ]),
                properties: Some(Properties {
                    message_id: Some(Value::Ulong(42)),
                    correlation_id: Some(Value::Uuid([7; 16])),
                    subject: Some("sequence".into()),
                    ..Properties::default()
                }),
                application_properties: Some(vec![
                    ("body_type".into(), "any".into()),
                    ("raw".into(), Value::Binary(vec![1, 2])),
                ]),
                body: body.clone(),
                footer: Some(vec![(symbol("footer_key"), "footer_value".into())]),
            };
            let stored = to_broker_message(&amqp);
            assert_eq!(stored.message_id.as_deref(), Some("42"), "text for dedup");
            assert_eq!(stored.partition_key.as_deref(), Some("pk"));
            let got = delivered(stored);
            assert_eq!(got.body, body);
            let header = got.header.unwrap();
            assert_eq!(
                (header.priority, header.ttl, header.delivery_count),
                (Some(10), Some(60_000), Some(0))
            );
            assert_eq!(got.delivery_annotations, amqp.delivery_annotations);
            assert_eq!(got.footer, amqp.footer);
            let annotations = got.message_annotations.unwrap();
            assert!(annotations.contains(&(symbol("annotation_key"), "value".into())));
            assert!(annotations.contains(&(symbol("x-opt-sequence-number"), Value::Long(7))));
            assert_eq!(
                annotations
                    .iter()
                    .filter(|(k, _)| *k == symbol(PARTITION_KEY))
                    .count(),
                1
            );
            let properties = got.properties.unwrap();
            assert_eq!(properties.message_id, Some(Value::Ulong(42)));
            assert_eq!(properties.correlation_id, Some(Value::Uuid([7; 16])));
            assert_eq!(properties.subject.as_deref(), Some("sequence"));
            assert_eq!(
                got.application_properties.unwrap(),
                vec![
                    ("body_type".into(), Value::String("any".into())),
                    ("raw".into(), Value::Binary(vec![1, 2])),
                ]
            );
        }
    }
}
