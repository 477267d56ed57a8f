//! The two list-shaped message sections (part 3, sections 3.2.1 and 3.2.4): `header` and
//! `properties`. Every field is optional and written exactly when the caller sets it, so a
//! `delivery-count` of 0 is on the wire when set (the .NET SDK throws when it is absent),
//! and ids keep their AMQP types.

use crate::fields::{self, Composite, Descriptor, FieldError, FieldReader};
use crate::types::Value;

/// `header` (0x70): transport headers. `None` fields are left off the wire and mean the
/// spec's defaults (not durable, priority 4, no TTL, not first acquirer, delivery-count 0).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Header {
    /// Durable delivery requested.
    pub durable: Option<bool>,
    /// Relative priority, default 4.
    pub priority: Option<u8>,
    /// Time to live in milliseconds (Service Bus's TimeToLive).
    pub ttl: Option<u32>,
    /// Whether this is the first acquirer of the message.
    pub first_acquirer: Option<bool>,
    /// Failed delivery attempts so far; set it to `Some(0)` to write a 0.
    pub delivery_count: Option<u32>,
}

impl Composite for Header {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x70,
        name: "amqp:header:list",
    };
    const NAME: &'static str = "header";

    fn fields(&self) -> Vec<Value> {
        vec![
            fields::opt(&self.durable),
            fields::opt(&self.priority),
            fields::opt(&self.ttl),
            fields::opt(&self.first_acquirer),
            fields::opt(&self.delivery_count),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            durable: r.boolean("durable")?,
            priority: r.ubyte("priority")?,
            ttl: r.uint("ttl")?,
            first_acquirer: r.boolean("first-acquirer")?,
            delivery_count: r.uint("delivery-count")?,
        })
    }
}

/// `properties` (0x73): the immutable properties of the bare message. `message-id` and
/// `correlation-id` stay [`Value`]s because their type (string, uuid, ulong, binary) must
/// survive the broker: replies carry the request's id in the same type.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Properties {
    /// MessageId: string, uuid, ulong or binary.
    pub message_id: Option<Value>,
    /// The sending user's identity.
    pub user_id: Option<Vec<u8>>,
    /// The destination address (To).
    pub to: Option<String>,
    /// Subject (Service Bus's Label).
    pub subject: Option<String>,
    /// Where replies go (ReplyTo).
    pub reply_to: Option<String>,
    /// CorrelationId, same types as `message_id`.
    pub correlation_id: Option<Value>,
    /// ContentType, a symbol.
    pub content_type: Option<String>,
    /// Content encoding, a symbol.
    pub content_encoding: Option<String>,
    /// When the message expires, ms since the epoch.
    pub absolute_expiry_time: Option<i64>,
    /// When the message was created, ms since the epoch.
    pub creation_time: Option<i64>,
    /// The group (Service Bus's SessionId).
    pub group_id: Option<String>,
    /// Position in the group.
    pub group_sequence: Option<u32>,
    /// ReplyToSessionId.
    pub reply_to_group_id: Option<String>,
}

impl Composite for Properties {
    const DESCRIPTOR: Descriptor = Descriptor {
        code: 0x73,
        name: "amqp:properties:list",
    };
    const NAME: &'static str = "properties";

    fn fields(&self) -> Vec<Value> {
        vec![
            fields::opt(&self.message_id),
            fields::opt(&self.user_id),
            fields::string(&self.to),
            fields::string(&self.subject),
            fields::string(&self.reply_to),
            fields::opt(&self.correlation_id),
            fields::symbol(&self.content_type),
            fields::symbol(&self.content_encoding),
            self.absolute_expiry_time
                .map_or(Value::Null, Value::Timestamp),
            self.creation_time.map_or(Value::Null, Value::Timestamp),
            fields::string(&self.group_id),
            fields::opt(&self.group_sequence),
            fields::string(&self.reply_to_group_id),
        ]
    }

    fn from_fields(r: &mut FieldReader) -> Result<Self, FieldError> {
        Ok(Self {
            message_id: message_id(r, "message-id")?,
            user_id: r.binary("user-id")?,
            to: r.address("to")?,
            subject: r.string("subject")?,
            reply_to: r.address("reply-to")?,
            correlation_id: message_id(r, "correlation-id")?,
            content_type: r.symbol("content-type")?,
            content_encoding: r.symbol("content-encoding")?,
            absolute_expiry_time: r.timestamp("absolute-expiry-time")?,
            creation_time: r.timestamp("creation-time")?,
            group_id: r.string("group-id")?,
            group_sequence: r.uint("group-sequence")?,
            reply_to_group_id: r.string("reply-to-group-id")?,
        })
    }
}

/// A `*message-id` field (section 3.2.11-3.2.15): ulong, uuid, binary or string.
fn message_id(r: &mut FieldReader, field: &'static str) -> Result<Option<Value>, FieldError> {
    match r.value() {
        Value::Null => Ok(None),
        v @ (Value::Ulong(_) | Value::Uuid(_) | Value::Binary(_) | Value::String(_)) => Ok(Some(v)),
        other => Err(FieldError::WrongType {
            context: "properties",
            field,
            expected: "ulong, uuid, binary or string",
            found: other.type_name(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode_to_vec;

    // Section 3.2.1: header [durable, priority, ttl, first-acquirer, delivery-count]; a
    // delivery-count of 0 that the caller set is written (uint0), not dropped.
    #[test]
    fn header_writes_a_zero_delivery_count() {
        let header = Header {
            delivery_count: Some(0),
            ..Header::default()
        };
        let bytes = encode_to_vec(&header.to_value());
        assert_eq!(
            bytes,
            [
                0x00, 0x53, 0x70, 0xc0, 0x06, 0x05, 0x40, 0x40, 0x40, 0x40, 0x43
            ]
        );
        assert_eq!(Header::decode(&bytes).unwrap().0, header);
        let empty = Header::default();
        assert_eq!(encode_to_vec(&empty.to_value()), [0x00, 0x53, 0x70, 0x45]);
        let full = Header {
            durable: Some(true),
            priority: Some(4),
            ttl: Some(60_000),
            first_acquirer: Some(false),
            delivery_count: Some(3),
        };
        let bytes = encode_to_vec(&full.to_value());
        assert_eq!(
            bytes,
            [
                0x00, 0x53, 0x70, 0xc0, 0x0c, 0x05, 0x41, 0x50, 0x04, 0x70, 0, 0, 0xea, 0x60, 0x42,
                0x52, 0x03
            ]
        );
        assert_eq!(Header::decode(&bytes).unwrap().0, full);
    }

    // Section 3.2.4: message-id keeps its type; a uuid id and a string correlation-id.
    #[test]
    fn properties_keep_id_types() {
        let props = Properties {
            message_id: Some(Value::Uuid([7; 16])),
            correlation_id: Some(Value::string("c")),
            group_id: Some("session".into()),
            content_type: Some("application/json".into()),
            absolute_expiry_time: Some(1_700_000_000_000),
            ..Properties::default()
        };
        let bytes = encode_to_vec(&props.to_value());
        assert_eq!(&bytes[..6], [0x00, 0x53, 0x73, 0xc0, 0x3f, 0x0b]);
        assert_eq!(&bytes[6..8], [0x98, 7]);
        assert_eq!(Properties::decode(&bytes).unwrap().0, props);
        let ulong_id = Properties {
            message_id: Some(Value::Ulong(5)),
            ..Properties::default()
        };
        let bytes = encode_to_vec(&ulong_id.to_value());
        assert_eq!(bytes, [0x00, 0x53, 0x73, 0xc0, 0x03, 0x01, 0x53, 0x05]);
        assert_eq!(Properties::decode(&bytes).unwrap().0, ulong_id);
    }

    #[test]
    fn a_message_id_of_another_type_is_refused() {
        let v = Value::described(0x73, Value::List(vec![Value::Int(1)]));
        assert_eq!(
            Properties::from_value(v).unwrap_err(),
            FieldError::WrongType {
                context: "properties",
                field: "message-id",
                expected: "ulong, uuid, binary or string",
                found: "int"
            }
        );
    }
}
