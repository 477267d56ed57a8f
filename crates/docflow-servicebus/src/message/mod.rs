//! Service Bus messages and their REST encoding (`servicebus.md` §1.4–1.5).
//!
//! Shared by the client and the embedded broker, so both speak exactly the same wire format:
//! system properties in the `BrokerProperties` JSON header, user properties as one header each
//! with the type encoded in the value (`"text"`, `5`, `1.5`, `true`, `"<RFC 1123 date>"`).
//!
//! - `properties`: typed user property values and their headers.
//! - `wire`: the `BrokerProperties` header, batch bodies and `TimeSpan` text.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

mod properties;
mod wire;

pub use self::properties::{
    PropertyValue, RESERVED_HEADERS, format_http_date, is_user_property_header, parse_http_date,
};
pub use self::wire::{
    BrokerProperties, PropertyError, REST_DEFAULT_CONTENT_TYPE, decode_batch, format_timespan,
    parse_timespan,
};

/// A message to send.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Payload bytes, sent unchanged.
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
    /// MIME type (the HTTP `Content-Type` over REST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Duplicate-detection key; generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Correlation id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Session (FIFO group).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Subject (`Label` over REST).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `To`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// `ReplyTo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// `ReplyToSessionId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_session_id: Option<String>,
    /// `PartitionKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
    /// Time to live (capped by the entity's default).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_duration_ms"
    )]
    pub time_to_live: Option<Duration>,
    /// Invisible until this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_enqueue_time: Option<DateTime<Utc>>,
    /// Application properties.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, PropertyValue>,
    /// What an AMQP sender put in its message that the fields above do not carry (header
    /// priority, delivery annotations, its own message annotations, application properties of
    /// AMQP types, ids that are not strings, a body other than one data section, the footer),
    /// as AMQP sections, so that an AMQP receiver gets the message as it was sent. Only the
    /// broker's AMQP front end reads it; `body` holds the body's bytes for everyone else.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_base64_bytes"
    )]
    pub amqp_sections: Option<Vec<u8>>,
}

impl Message {
    /// A message with this body.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    /// The bytes a broker stores for this message's payload: the body, and the AMQP sections
    /// kept beside it.
    pub fn stored_size(&self) -> usize {
        self.body.len() + self.amqp_sections.as_ref().map_or(0, Vec::len)
    }

    /// Sets `MessageId`.
    pub fn with_message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    /// Sets `SessionId`.
    pub fn with_session_id(mut self, id: impl Into<String>) -> Self {
        self.session_id = Some(id.into());
        self
    }

    /// Sets `CorrelationId`.
    pub fn with_correlation_id(mut self, id: impl Into<String>) -> Self {
        self.correlation_id = Some(id.into());
        self
    }

    /// Sets `Subject`.
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the content type.
    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    /// Sets the time to live.
    pub fn with_time_to_live(mut self, ttl: Duration) -> Self {
        self.time_to_live = Some(ttl);
        self
    }

    /// Schedules the message.
    pub fn with_scheduled_enqueue_time(mut self, at: DateTime<Utc>) -> Self {
        self.scheduled_enqueue_time = Some(at);
        self
    }

    /// An application property by name, matched case-insensitively: over REST, properties
    /// travel as HTTP headers, whose names are case-insensitive (and arrive lower-cased).
    pub fn property(&self, name: &str) -> Option<&PropertyValue> {
        self.properties.get(name).or_else(|| {
            self.properties
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        })
    }

    /// Removes an application property, matched case-insensitively.
    pub fn remove_property(&mut self, name: &str) {
        self.properties.retain(|k, _| !k.eq_ignore_ascii_case(name));
    }

    /// Adds an application property.
    pub fn with_property(
        mut self,
        name: impl Into<String>,
        value: impl Into<PropertyValue>,
    ) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }
}

/// State of a message in an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageState {
    /// Receivable.
    Active,
    /// Set aside by its receiver; only receivable by sequence number.
    Deferred,
    /// Not visible before its scheduled time.
    Scheduled,
}

impl MessageState {
    /// The REST `State` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "Active",
            Self::Deferred => "Deferred",
            Self::Scheduled => "Scheduled",
        }
    }
}

/// A message as a receiver sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    /// What was sent (after rule actions), with `message_id` always set.
    pub message: Message,
    /// Position in the entity.
    pub sequence_number: i64,
    /// Sequence number in the entity it was first sent to (auto-forwarding).
    pub enqueued_sequence_number: i64,
    /// When the entity accepted it.
    pub enqueued_time: DateTime<Utc>,
    /// When it expires (none in a dead-letter queue).
    pub expires_at: Option<DateTime<Utc>>,
    /// Deliveries so far, this one included.
    pub delivery_count: u32,
    /// Peek-lock token (none for receive-and-delete and browse).
    pub lock_token: Option<String>,
    /// End of the lock.
    pub locked_until: Option<DateTime<Utc>>,
    /// State.
    pub state: MessageState,
    /// Entity whose dead-letter queue it was forwarded out of.
    pub dead_letter_source: Option<String>,
    /// The settle URI given by the REST API (`Location`).
    pub location: Option<String>,
}

impl ReceivedMessage {
    /// `DeadLetterReason`, for messages read from a dead-letter queue.
    pub fn dead_letter_reason(&self) -> Option<&str> {
        self.message
            .property("DeadLetterReason")
            .and_then(PropertyValue::as_str)
    }

    /// `DeadLetterErrorDescription`.
    pub fn dead_letter_description(&self) -> Option<&str> {
        self.message
            .property("DeadLetterErrorDescription")
            .and_then(PropertyValue::as_str)
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

mod opt_base64_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => super::base64_bytes::serialize(bytes, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        #[derive(Deserialize)]
        struct Bytes(#[serde(with = "super::base64_bytes")] Vec<u8>);
        Ok(Option::<Bytes>::deserialize(d)?.map(|b| b.0))
    }
}

mod opt_duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_millis() as u64),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_keep_their_types() {
        let date = parse_http_date("Fri, 04 Mar 2011 08:49:37 GMT").unwrap();
        for value in [
            PropertyValue::Int(5),
            PropertyValue::Double(1.5),
            PropertyValue::Double(2.0),
            PropertyValue::Bool(true),
            PropertyValue::String("High \"quoted\"".into()),
            PropertyValue::DateTime(date),
        ] {
            assert_eq!(
                PropertyValue::from_header(&value.to_header()),
                Some(value.clone()),
                "{value:?}"
            );
        }
        assert_eq!(PropertyValue::from_header("abc"), None);
        assert_eq!(PropertyValue::from_header("True"), None);
        assert_eq!(PropertyValue::from_header("inf"), None);
        assert_eq!(
            PropertyValue::from_header("\"12345,ABC\""),
            Some(PropertyValue::String("12345,ABC".into()))
        );
    }

    #[test]
    fn dates_parse_leniently() {
        assert!(parse_http_date(" Sun, 06 Nov 1994 08:49:37 GMT").is_some());
        assert!(parse_http_date("Sun, 06 Nov 1994 08:49:37 UTC").is_some());
        assert!(parse_http_date("yesterday").is_none());
    }

    #[test]
    fn timespans() {
        assert_eq!(parse_timespan("0.00:00:40"), Some(Duration::from_secs(40)));
        assert_eq!(parse_timespan("01:02:03"), Some(Duration::from_secs(3723)));
        assert_eq!(
            parse_timespan("1.00:00:00.5"),
            Some(Duration::from_millis(86_400_500))
        );
        assert_eq!(
            parse_timespan(&format_timespan(Duration::from_millis(90_061_250))),
            Some(Duration::from_millis(90_061_250))
        );
        assert_eq!(parse_timespan("40"), None);
        assert_eq!(
            parse_timespan("10675199.02:48:05.4775807"),
            Some(Duration::new(922_337_203_685, 477_580_700))
        );
        for bad in [
            "00:00:-1",
            "-00:00:01",
            "-1.00:00:00",
            "00:60:00",
            "24:00:00",
            "00:00:60",
            "00:00:01.12345678",
            "00:00:inf",
            "00:00:NaN",
            "00:00:1e3",
            "18446744073709551615.00:00:00",
            "+1:00:00",
            " : : ",
            "1.2.3:00:00",
        ] {
            assert_eq!(parse_timespan(bad), None, "{bad}");
        }
    }

    #[test]
    fn broker_properties_ignore_read_only_fields_on_send() {
        let props: BrokerProperties =
            serde_json::from_str(r#"{"MessageId":"m1","SequenceNumber":99,"DeliveryCount":7,"LockToken":"x","TimeToLive":90,"Unknown":1}"#).unwrap();
        let mut message = Message::new("b");
        props.apply_to(&mut message).unwrap();
        assert_eq!(message.message_id.as_deref(), Some("m1"));
        assert_eq!(message.time_to_live, Some(Duration::from_secs(90)));
        let bad: BrokerProperties = serde_json::from_str(r#"{"TimeToLive":-1}"#).unwrap();
        assert!(bad.apply_to(&mut Message::new("b")).is_err());
    }
}
