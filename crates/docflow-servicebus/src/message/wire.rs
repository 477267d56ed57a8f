//! The REST wire format of system properties: the `BrokerProperties` JSON header, batch bodies,
//! and .NET `TimeSpan` text.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Message, PropertyValue, ReceivedMessage, format_http_date, parse_http_date};

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
