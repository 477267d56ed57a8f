//! Service Bus messages and their REST encoding (`servicebus.md` §1.4–1.5).
//!
//! Shared by the client and the embedded broker, so both speak exactly the same wire format:
//! system properties in the `BrokerProperties` JSON header, user properties as one header each
//! with the type encoded in the value (`"text"`, `5`, `1.5`, `true`, `"<RFC 1123 date>"`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A typed application (user) property value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "lowercase")]
pub enum PropertyValue {
    /// Text.
    String(String),
    /// 64-bit integer.
    Int(i64),
    /// Double.
    Double(f64),
    /// Boolean.
    Bool(bool),
    /// A UTC timestamp.
    DateTime(DateTime<Utc>),
}

impl fmt::Display for PropertyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::String(s) => f.write_str(s),
            Self::Int(n) => write!(f, "{n}"),
            Self::Double(x) => write!(f, "{x}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::DateTime(t) => f.write_str(&format_http_date(*t)),
        }
    }
}

impl From<&str> for PropertyValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_string())
    }
}

impl From<String> for PropertyValue {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<i64> for PropertyValue {
    fn from(n: i64) -> Self {
        Self::Int(n)
    }
}

impl From<bool> for PropertyValue {
    fn from(b: bool) -> Self {
        Self::Bool(b)
    }
}

impl From<f64> for PropertyValue {
    fn from(x: f64) -> Self {
        Self::Double(x)
    }
}

impl PropertyValue {
    /// The header value encoding of §1.5.
    pub fn to_header(&self) -> String {
        match self {
            Self::String(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
            Self::Int(n) => n.to_string(),
            Self::Double(x) => {
                let text = format!("{x:?}");
                if text.contains(['.', 'e', 'E']) {
                    text
                } else {
                    format!("{text}.0")
                }
            }
            Self::Bool(b) => b.to_string(),
            Self::DateTime(t) => format!("\"{}\"", format_http_date(*t)),
        }
    }

    /// Parses a header value by the type-inference rules of §1.5; `None` for a value that is
    /// neither quoted, a bool (case-sensitive) nor a number.
    pub fn from_header(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
            let inner = unescape(&value[1..value.len() - 1]);
            return Some(match parse_http_date(&inner) {
                Some(t) => Self::DateTime(t),
                None => Self::String(inner),
            });
        }
        match value {
            "true" => return Some(Self::Bool(true)),
            "false" => return Some(Self::Bool(false)),
            _ => {}
        }
        if let Ok(n) = value.parse::<i64>() {
            return Some(Self::Int(n));
        }
        let numeric = !value.is_empty()
            && value
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
        if numeric && let Ok(x) = value.parse::<f64>() {
            return Some(Self::Double(x));
        }
        None
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn format_http_date(t: DateTime<Utc>) -> String {
    httpdate::fmt_http_date(SystemTime::from(t))
}

/// Parses an RFC 1123 date leniently: surrounding spaces, `GMT` or `UTC`.
pub fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let s = s
        .strip_suffix(" UTC")
        .map(|p| format!("{p} GMT"))
        .unwrap_or_else(|| s.to_string());
    httpdate::parse_http_date(&s)
        .ok()
        .map(DateTime::<Utc>::from)
}

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
}

impl Message {
    /// A message with this body.
    pub fn new(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
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

/// The `BrokerProperties` header (every field optional: Azure omits lock fields in
/// receive-and-delete, and read-only fields are ignored on send).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BrokerProperties {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_key: Option<String>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live: Option<f64>,
    /// .NET TimeSpan `d.hh:mm:ss[.fff]` (batch sends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_live_time_span: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_enqueue_time_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locked_until_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_number: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueued_sequence_number: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enqueued_time_utc: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_source: Option<String>,
}

/// A `BrokerProperties` value that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid BrokerProperties {field}: {problem}")]
pub struct PropertyError {
    /// The field.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl BrokerProperties {
    /// The send-side properties of a message.
    pub fn for_send(message: &Message) -> Self {
        Self {
            message_id: message.message_id.clone(),
            correlation_id: message.correlation_id.clone(),
            session_id: message.session_id.clone(),
            label: message.subject.clone(),
            to: message.to.clone(),
            reply_to: message.reply_to.clone(),
            reply_to_session_id: message.reply_to_session_id.clone(),
            partition_key: message.partition_key.clone(),
            time_to_live: message.time_to_live.map(|d| d.as_secs_f64()),
            scheduled_enqueue_time_utc: message.scheduled_enqueue_time.map(format_http_date),
            ..Self::default()
        }
    }

    /// The receive-side properties of a received message.
    pub fn for_receive(received: &ReceivedMessage) -> Self {
        let mut props = Self::for_send(&received.message);
        props.scheduled_enqueue_time_utc = None;
        props.time_to_live = received
            .expires_at
            .map(|e| (e - received.enqueued_time).num_milliseconds().max(0) as f64 / 1000.0)
            .or(props.time_to_live);
        props.delivery_count = Some(i64::from(received.delivery_count));
        props.lock_token = received.lock_token.clone();
        props.locked_until_utc = received.locked_until.map(format_http_date);
        props.sequence_number = Some(received.sequence_number);
        props.enqueued_sequence_number = Some(received.enqueued_sequence_number);
        props.enqueued_time_utc = Some(format_http_date(received.enqueued_time));
        props.state = Some(received.state.as_str().to_string());
        props.dead_letter_source = received.dead_letter_source.clone();
        props
    }

    /// Applies the writable fields to `message` (read-only ones are ignored, as Azure does).
    pub fn apply_to(&self, message: &mut Message) -> Result<(), PropertyError> {
        let check_len = |field: &'static str, v: &Option<String>| match v {
            Some(s) if s.chars().count() > 128 => Err(PropertyError {
                field,
                problem: "is longer than 128 characters".into(),
            }),
            _ => Ok(()),
        };
        check_len("MessageId", &self.message_id)?;
        check_len("SessionId", &self.session_id)?;
        check_len("PartitionKey", &self.partition_key)?;
        if let (Some(s), Some(p)) = (&self.session_id, &self.partition_key)
            && s != p
        {
            return Err(PropertyError {
                field: "PartitionKey",
                problem: "must equal SessionId when both are set".into(),
            });
        }
        message.message_id = self.message_id.clone().or(message.message_id.take());
        message.correlation_id = self
            .correlation_id
            .clone()
            .or(message.correlation_id.take());
        message.session_id = self.session_id.clone().or(message.session_id.take());
        message.subject = self.label.clone().or(message.subject.take());
        message.to = self.to.clone().or(message.to.take());
        message.reply_to = self.reply_to.clone().or(message.reply_to.take());
        message.reply_to_session_id = self
            .reply_to_session_id
            .clone()
            .or(message.reply_to_session_id.take());
        message.partition_key = self.partition_key.clone().or(message.partition_key.take());
        let ttl = match (&self.time_to_live_time_span, self.time_to_live) {
            (Some(span), _) => Some(parse_timespan(span).ok_or_else(|| PropertyError {
                field: "TimeToLiveTimeSpan",
                problem: format!("{span:?} is not a d.hh:mm:ss time span"),
            })?),
            // Seconds travel as a float: rounded to whole microseconds, so that a TTL in
            // milliseconds comes back exactly (8451616.779 s, not 8451616.778999… s).
            (None, Some(seconds)) if seconds > 0.0 && (seconds * 1e6).round() < u64::MAX as f64 => {
                Some(Duration::from_micros((seconds * 1e6).round() as u64))
            }
            (None, Some(seconds)) => {
                return Err(PropertyError {
                    field: "TimeToLive",
                    problem: format!("{seconds} is not a positive number of seconds"),
                });
            }
            (None, None) => None,
        };
        message.time_to_live = ttl.or(message.time_to_live);
        if let Some(at) = &self.scheduled_enqueue_time_utc {
            message.scheduled_enqueue_time =
                Some(parse_http_date(at).ok_or_else(|| PropertyError {
                    field: "ScheduledEnqueueTimeUtc",
                    problem: format!("{at:?} is not an RFC 1123 date"),
                })?);
        }
        Ok(())
    }
}

/// Decodes a batch send body (`application/vnd.microsoft.servicebus.json`): a JSON array of
/// `{Body, BrokerProperties, UserProperties, IsBodyBase64}`. The error says which element and
/// field is wrong.
pub fn decode_batch(body: &[u8]) -> Result<Vec<Message>, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Element {
        body: Option<String>,
        #[serde(default)]
        broker_properties: Option<BrokerProperties>,
        #[serde(default)]
        user_properties: Option<serde_json::Map<String, serde_json::Value>>,
        #[serde(default)]
        is_body_base64: bool,
    }
    let bad = |m: String| m;
    let elements: Vec<Element> = serde_json::from_slice(body)
        .map_err(|e| bad(format!("batch body is not a JSON array of messages: {e}")))?;
    let mut messages = Vec::with_capacity(elements.len());
    for (i, element) in elements.into_iter().enumerate() {
        let text = element.body.unwrap_or_default();
        let bytes = if element.is_body_base64 {
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, text.trim())
                .map_err(|_| bad(format!("batch element {i}: Body is not base64")))?
        } else {
            text.into_bytes()
        };
        let mut message = Message::new(bytes);
        if let Some(props) = element.broker_properties {
            props
                .apply_to(&mut message)
                .map_err(|e| bad(format!("batch element {i}: {e}")))?;
        }
        for (name, value) in element.user_properties.unwrap_or_default() {
            let value = match value {
                serde_json::Value::String(s) => PropertyValue::String(s),
                serde_json::Value::Bool(b) => PropertyValue::Bool(b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => PropertyValue::Int(i),
                    None => PropertyValue::Double(n.as_f64().unwrap_or_default()),
                },
                _ => {
                    return Err(bad(format!(
                        "batch element {i}: user property {name} must be a string, number or bool"
                    )));
                }
            };
            message.properties.insert(name, value);
        }
        messages.push(message);
    }
    Ok(messages)
}

/// The content type Service Bus's REST API reports for a message sent without one (as in
/// Azure's examples); clients read it as "none given".
pub const REST_DEFAULT_CONTENT_TYPE: &str = "application/atom+xml;type=entry;charset=utf-8";

/// Parses a non-negative .NET TimeSpan, `[d.]hh:mm:ss[.fffffff]`: hours below 24, minutes and
/// seconds below 60, at most seven fraction digits. Negative, out-of-range, overflowing and
/// malformed spans are `None`, never a panic.
pub fn parse_timespan(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (days, rest) = match s.split_once('.') {
        Some((d, rest)) if rest.contains(':') && !d.contains(':') => (digits(d)?, rest),
        _ => (0, s),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let [h, m, sec] = parts.as_slice() else {
        return None;
    };
    let (whole, fraction) = sec.split_once('.').unwrap_or((sec, ""));
    let (h, m, whole) = (digits(h)?, digits(m)?, digits(whole)?);
    if h >= 24 || m >= 60 || whole >= 60 || fraction.len() > 7 {
        return None;
    }
    let nanos = match fraction {
        "" => 0,
        f => digits(f)? as u32 * 10u32.pow(9 - f.len() as u32),
    };
    let secs = days
        .checked_mul(86_400)?
        .checked_add(h * 3_600 + m * 60 + whole)?;
    Some(Duration::new(secs, nanos))
}

/// A non-empty run of ASCII digits as a number (no sign, no spaces, no overflow).
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Formats a duration as a .NET TimeSpan `d.hh:mm:ss.fff`.
pub fn format_timespan(d: Duration) -> String {
    let total = d.as_secs();
    format!(
        "{}.{:02}:{:02}:{:02}.{:03}",
        total / 86_400,
        total % 86_400 / 3_600,
        total % 3_600 / 60,
        total % 60,
        d.subsec_millis()
    )
}

/// Request and response headers that are never user properties.
pub const RESERVED_HEADERS: &[&str] = &[
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "authorization",
    "brokerproperties",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "cookie",
    "date",
    "expect",
    "host",
    "keep-alive",
    "location",
    "pragma",
    "proxy-authorization",
    "request-id",
    "server",
    "servicebusdlqsupplementaryauthorization",
    "servicebussupplementaryauthorization",
    "strict-transport-security",
    "te",
    "traceparent",
    "tracestate",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "via",
    "x-ms-client-request-id",
    "x-ms-retrypolicy",
    "x-ms-version",
    "x-local-sequence-number",
];

/// Whether a header carries a user property.
pub fn is_user_property_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !RESERVED_HEADERS.contains(&lower.as_str()) && !lower.starts_with("x-local-")
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
