//! Parsing of the invocation request the Functions host POSTs to `/{FunctionName}`.
//!
//! The host encodes values by `GetHttpScriptInvocationContextValue` (protocol doc §1.3): scalars
//! arrive as JSON strings holding JSON text (`"DeliveryCount": "1"`, `"MessageId": "\"abc\""`),
//! `DateTime` values as ISO strings with or without an offset, `byte[]` as base64, objects as
//! objects. Everything here parses defensively: the documented sample shapes (plain numbers,
//! single-quoted strings) are accepted too.

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::{Map, Value};

use super::ProtocolError;

/// How the trigger delivers the message body, as declared by `dataType` in function.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerDataType {
    /// No `dataType`, or `"string"`: the body text, double-encoded (§1.4).
    String,
    /// `"binary"`: plain base64 of the body bytes.
    Binary,
}

/// The request body the host sends: `{"Data": {...}, "Metadata": {...}}`.
#[derive(Debug, Clone)]
pub struct InvocationRequest {
    data: Map<String, Value>,
    metadata: Map<String, Value>,
}

impl InvocationRequest {
    /// Parses the raw request body; anything that is not the host's schema is an error naming
    /// the problem.
    pub fn parse(body: &[u8]) -> Result<Self, ProtocolError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| ProtocolError::NotJson {
            detail: e.to_string(),
        })?;
        let Value::Object(mut top) = value else {
            return Err(ProtocolError::Schema {
                path: "$".into(),
                expected: "a JSON object with Data and Metadata",
            });
        };
        let data = match top.remove("Data") {
            Some(Value::Object(data)) => data,
            Some(_) => {
                return Err(ProtocolError::Schema {
                    path: "$.Data".into(),
                    expected: "an object",
                });
            }
            None => {
                return Err(ProtocolError::MissingField {
                    path: "$.Data".into(),
                });
            }
        };
        let metadata = match top.remove("Metadata") {
            Some(Value::Object(metadata)) => metadata,
            Some(Value::Null) | None => Map::new(),
            Some(_) => {
                return Err(ProtocolError::Schema {
                    path: "$.Metadata".into(),
                    expected: "an object",
                });
            }
        };
        Ok(Self { data, metadata })
    }

    /// The raw `Data` value of one input binding.
    pub fn data(&self, binding: &str) -> Option<&Value> {
        self.data.get(binding)
    }

    /// The raw `Metadata` map.
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }

    /// The `sys` object (`MethodName`, `UtcNow`, `RandGuid`), when present.
    pub fn sys(&self) -> Option<SystemData> {
        let sys = self.metadata.get("sys")?.as_object()?;
        Some(SystemData {
            method_name: sys.get("MethodName").and_then(scalar_string),
            utc_now: sys.get("UtcNow").and_then(parse_timestamp),
            rand_guid: sys.get("RandGuid").and_then(scalar_string),
        })
    }

    /// Decodes a Service Bus trigger with `cardinality: one`.
    ///
    /// The encoding is recognised from the value itself, so a function works whether or not its
    /// function.json declares `dataType: binary`: double-encoded text starts with a quote, and
    /// anything else is base64. `data_type` only decides what to do with a value that is
    /// neither (an error for binary, the text itself for string).
    pub fn service_bus_message(
        &self,
        binding: &str,
        data_type: TriggerDataType,
    ) -> Result<ServiceBusMessage, ProtocolError> {
        let path = format!("$.Data.{binding}");
        let raw = self
            .data
            .get(binding)
            .ok_or_else(|| ProtocolError::MissingField { path: path.clone() })?;
        let body = decode_single_body(raw, data_type, &path)?;
        // The host merges JSON body properties into metadata only for string inputs (§1.4).
        let merged = matches!(raw, Value::String(s) if s.starts_with('"'));
        let shadowed = if merged {
            body_property_names(&body)
        } else {
            Vec::new()
        };
        let properties = MessageProperties::from_metadata(&self.metadata, &shadowed);
        Ok(ServiceBusMessage { body, properties })
    }

    /// Decodes a Service Bus trigger with `cardinality: many` (§7): `Data` is one string holding a
    /// JSON array, and every metadata key carries an `Array` suffix.
    pub fn service_bus_batch(
        &self,
        binding: &str,
        data_type: TriggerDataType,
    ) -> Result<Vec<ServiceBusMessage>, ProtocolError> {
        let path = format!("$.Data.{binding}");
        let raw = self
            .data
            .get(binding)
            .ok_or_else(|| ProtocolError::MissingField { path: path.clone() })?;
        let items = match unwrap_json_string(raw) {
            Value::Array(items) => items,
            _ => {
                return Err(ProtocolError::Schema {
                    path,
                    expected: "a string holding a JSON array of message bodies",
                });
            }
        };
        let mut messages = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let body = match (item, data_type) {
                (Value::String(s), TriggerDataType::Binary) => decode_base64(s, &item_path)?,
                (Value::String(s), TriggerDataType::String) => s.clone().into_bytes(),
                // No dataType: the host JSON-parsed each body (§7, `object[]`).
                (other, _) => serde_json::to_vec(other).expect("a JSON value serializes"),
            };
            let properties =
                MessageProperties::from_batch_metadata(&self.metadata, i, items.len())?;
            messages.push(ServiceBusMessage { body, properties });
        }
        Ok(messages)
    }

    /// Decodes an HTTP trigger's `Data.<binding>` (§4.2).
    pub fn http_request(&self, binding: &str) -> Result<HttpRequestData, ProtocolError> {
        let path = format!("$.Data.{binding}");
        let raw = self
            .data
            .get(binding)
            .ok_or_else(|| ProtocolError::MissingField { path: path.clone() })?;
        HttpRequestData::from_value(&unwrap_json_string(raw), &path)
    }
}

/// The `sys` binding data.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemData {
    /// The function name.
    pub method_name: Option<String>,
    /// The host's clock at invocation.
    pub utc_now: Option<DateTime<Utc>>,
    /// A fresh GUID per invocation.
    pub rand_guid: Option<String>,
}

/// One received Service Bus message: the body bytes plus the broker properties the host passed.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceBusMessage {
    /// The exact body bytes.
    pub body: Vec<u8>,
    /// The broker and application properties.
    pub properties: MessageProperties,
}

/// Service Bus system and application properties from trigger metadata.
///
/// A property is `None` when the host did not send it *or* when a top-level property of the JSON
/// body has the same name (case-insensitively): the host copies body properties over the
/// metadata (§1.4, host issue #7119), so such a value cannot be trusted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageProperties {
    /// `MessageId`.
    pub message_id: Option<String>,
    /// `CorrelationId`.
    pub correlation_id: Option<String>,
    /// `SessionId`.
    pub session_id: Option<String>,
    /// `ContentType`.
    pub content_type: Option<String>,
    /// `Subject` (or the legacy `Label`).
    pub subject: Option<String>,
    /// `ReplyTo`.
    pub reply_to: Option<String>,
    /// `To`.
    pub to: Option<String>,
    /// `DeliveryCount`, starting at 1.
    pub delivery_count: Option<u32>,
    /// `SequenceNumber`.
    pub sequence_number: Option<i64>,
    /// `LockToken`.
    pub lock_token: Option<String>,
    /// `EnqueuedTime` (or `EnqueuedTimeUtc`, read as UTC).
    pub enqueued_time: Option<DateTime<Utc>>,
    /// `ExpiresAt` (or `ExpiresAtUtc`, read as UTC).
    pub expires_at: Option<DateTime<Utc>>,
    /// `DeadLetterSource`, only on messages read from a dead-letter queue.
    pub dead_letter_source: Option<String>,
    /// `ApplicationProperties` (or the legacy `UserProperties`).
    pub application_properties: Map<String, Value>,
    /// Metadata keys overwritten by body properties, lower-cased.
    pub shadowed: Vec<String>,
}

/// The Service Bus metadata keys this module reads, with the field each one fills.
const STRING_KEYS: [&str; 9] = [
    "MessageId",
    "CorrelationId",
    "SessionId",
    "ContentType",
    "Subject",
    "ReplyTo",
    "To",
    "LockToken",
    "DeadLetterSource",
];

impl MessageProperties {
    fn from_metadata(metadata: &Map<String, Value>, shadowed: &[String]) -> Self {
        let trusted = |key: &str| -> Option<&Value> {
            if shadowed.iter().any(|s| s.eq_ignore_ascii_case(key)) {
                return None;
            }
            lookup(metadata, key)
        };
        let string = |key: &str| trusted(key).and_then(scalar_string);
        let mut props = Self {
            message_id: string("MessageId"),
            correlation_id: string("CorrelationId"),
            session_id: string("SessionId"),
            content_type: string("ContentType"),
            subject: string("Subject").or_else(|| string("Label")),
            reply_to: string("ReplyTo"),
            to: string("To"),
            delivery_count: trusted("DeliveryCount").and_then(scalar_u32),
            sequence_number: trusted("SequenceNumber").and_then(scalar_i64),
            lock_token: string("LockToken"),
            enqueued_time: trusted("EnqueuedTime")
                .or_else(|| trusted("EnqueuedTimeUtc"))
                .and_then(parse_timestamp),
            expires_at: trusted("ExpiresAt")
                .or_else(|| trusted("ExpiresAtUtc"))
                .and_then(parse_timestamp),
            dead_letter_source: string("DeadLetterSource"),
            application_properties: Map::new(),
            shadowed: shadowed.to_vec(),
        };
        if let Some(Value::Object(map)) = trusted("ApplicationProperties")
            .or_else(|| trusted("UserProperties"))
            .map(unwrap_json_string)
        {
            props.application_properties = map;
        }
        props
    }

    fn from_batch_metadata(
        metadata: &Map<String, Value>,
        index: usize,
        len: usize,
    ) -> Result<Self, ProtocolError> {
        let mut single = Map::new();
        for key in STRING_KEYS.iter().chain(&[
            "Label",
            "DeliveryCount",
            "SequenceNumber",
            "EnqueuedTime",
            "EnqueuedTimeUtc",
            "ExpiresAt",
            "ExpiresAtUtc",
            "ApplicationProperties",
            "UserProperties",
        ]) {
            let array_key = format!("{key}Array");
            let Some(raw) = lookup(metadata, &array_key) else {
                continue;
            };
            let Value::Array(values) = unwrap_json_string(raw) else {
                return Err(ProtocolError::Schema {
                    path: format!("$.Metadata.{array_key}"),
                    expected: "a string holding a JSON array",
                });
            };
            if values.len() != len {
                return Err(ProtocolError::Schema {
                    path: format!("$.Metadata.{array_key}"),
                    expected: "one entry per message in the batch",
                });
            }
            if !values[index].is_null() {
                single.insert((*key).to_string(), values[index].clone());
            }
        }
        // Body properties are not merged into batch metadata (§7), so nothing is shadowed.
        Ok(Self::from_metadata(&single, &[]))
    }
}

/// HTTP trigger data in the default (non-forwarding) mode.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HttpRequestData {
    /// The full original URL.
    pub url: String,
    /// The HTTP method, upper case.
    pub method: String,
    /// Query parameters; repeated names arrive comma-joined.
    pub query: Map<String, Value>,
    /// Request headers; each value is the list the host sent.
    pub headers: Vec<(String, Vec<String>)>,
    /// Route parameters.
    pub params: Map<String, Value>,
    /// The raw body text (base64 for binary content types), when the request had one.
    pub body: Option<String>,
}

impl HttpRequestData {
    fn from_value(value: &Value, path: &str) -> Result<Self, ProtocolError> {
        let Value::Object(req) = value else {
            return Err(ProtocolError::Schema {
                path: path.into(),
                expected: "an HTTP request object",
            });
        };
        let field = |name: &str| lookup(req, name);
        let string_field = |name: &str| field(name).and_then(scalar_string);
        let object_field = |name: &str| match field(name).map(unwrap_json_string) {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let mut headers = Vec::new();
        for (name, values) in object_field("Headers") {
            let values = match values {
                Value::Array(items) => items.iter().filter_map(scalar_string).collect(),
                other => scalar_string(&other).into_iter().collect(),
            };
            headers.push((name, values));
        }
        Ok(Self {
            url: string_field("Url").unwrap_or_default(),
            method: string_field("Method")
                .map(|m| m.to_ascii_uppercase())
                .ok_or_else(|| ProtocolError::MissingField {
                    path: format!("{path}.Method"),
                })?,
            query: object_field("Query"),
            headers,
            params: object_field("Params"),
            body: field("Body").and_then(|b| b.as_str().map(str::to_owned)),
        })
    }

    /// The first value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first().map(String::as_str))
    }
}

/// If `v` is a string whose content is JSON text, the parsed value; otherwise `v` itself.
///
/// This undoes the host's `JsonConvert.SerializeObject` of scalars (§1.3).
pub fn unwrap_json_string(v: &Value) -> Value {
    match v {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        other => other.clone(),
    }
}

/// A metadata scalar read as a string: `"\"abc\""` and `"abc"` both give `abc`.
pub fn scalar_string(v: &Value) -> Option<String> {
    match unwrap_json_string(v) {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn scalar_i64(v: &Value) -> Option<i64> {
    match unwrap_json_string(v) {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn scalar_u32(v: &Value) -> Option<u32> {
    scalar_i64(v).and_then(|n| u32::try_from(n).ok())
}

/// Parses the host's timestamp forms: with an offset or `Z` (`DateTimeOffset`), or without one
/// (`DateTime` of kind Unspecified, read as UTC), with or without fractional seconds.
pub fn parse_timestamp(v: &Value) -> Option<DateTime<Utc>> {
    let s = scalar_string(v)?;
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// Case-insensitive metadata lookup: the host's binding-data dictionary ignores case.
fn lookup<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn decode_single_body(
    raw: &Value,
    data_type: TriggerDataType,
    path: &str,
) -> Result<Vec<u8>, ProtocolError> {
    match raw {
        // Double-encoded text always starts with a quote, which base64 never contains.
        Value::String(s) if s.starts_with('"') => serde_json::from_str::<String>(s)
            .map(String::into_bytes)
            .map_err(|_| ProtocolError::Schema {
                path: path.into(),
                expected: "a JSON string literal holding the message body",
            }),
        Value::String(s) => match (data_type, decode_base64(s, path)) {
            (_, Ok(bytes)) => Ok(bytes),
            (TriggerDataType::Binary, Err(e)) => Err(e),
            // Not base64 either: the documented (idealised) single encoding of a text body.
            (TriggerDataType::String, Err(_)) => Ok(s.clone().into_bytes()),
        },
        Value::Null => Err(ProtocolError::Schema {
            path: path.into(),
            expected: "the message body, not null",
        }),
        // Tolerate a body the sender already handed over as JSON.
        other => Ok(serde_json::to_vec(other).expect("a JSON value serializes")),
    }
}

fn decode_base64(s: &str, path: &str) -> Result<Vec<u8>, ProtocolError> {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map_err(|_| ProtocolError::Schema {
            path: path.into(),
            expected: "base64 of the message body",
        })
}

/// The top-level property names of a JSON object body that the host merged into metadata.
fn body_property_names(body: &[u8]) -> Vec<String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .filter(|(_, v)| !v.is_array())
            .map(|(k, _)| k.to_ascii_lowercase())
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unwrap_json_string_undoes_one_level() {
        assert_eq!(unwrap_json_string(&json!("1")), json!(1));
        assert_eq!(unwrap_json_string(&json!("\"abc\"")), json!("abc"));
        assert_eq!(unwrap_json_string(&json!("plain")), json!("plain"));
        assert_eq!(unwrap_json_string(&json!({"a": 1})), json!({"a": 1}));
    }

    #[test]
    fn timestamps_with_and_without_offset() {
        let a = parse_timestamp(&json!("2025-03-15T10:20:31")).unwrap();
        let b = parse_timestamp(&json!("2025-03-15T10:20:31+00:00")).unwrap();
        let c = parse_timestamp(&json!("2025-03-15T12:20:31+02:00")).unwrap();
        let d = parse_timestamp(&json!("2025-03-15T10:20:31.527")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(d.timestamp_subsec_millis(), 527);
        assert!(parse_timestamp(&json!("yesterday")).is_none());
    }

    #[test]
    fn delivery_count_as_string_or_number() {
        for v in [json!("3"), json!(3), json!("\"3\"")] {
            let md = json!({"DeliveryCount": v});
            let p = MessageProperties::from_metadata(md.as_object().unwrap(), &[]);
            assert_eq!(p.delivery_count, Some(3));
        }
    }

    #[test]
    fn body_properties_shadow_metadata_case_insensitively() {
        let req = InvocationRequest::parse(
            json!({
                "Data": {"message": "\"{\\\"messageId\\\":\\\"evil\\\",\\\"x\\\":[1]}\""},
                "Metadata": {"MessageId": "\"evil\"", "SequenceNumber": "7", "x": "[1]"}
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let msg = req
            .service_bus_message("message", TriggerDataType::String)
            .unwrap();
        assert_eq!(msg.properties.message_id, None);
        assert_eq!(msg.properties.sequence_number, Some(7));
        assert_eq!(msg.properties.shadowed, vec!["messageid".to_string()]);
    }

    #[test]
    fn single_encoded_and_object_bodies_are_tolerated() {
        let single = json!("{\"a\":1}");
        assert_eq!(
            decode_single_body(&single, TriggerDataType::String, "$").unwrap(),
            b"{\"a\":1}"
        );
        let object = json!({"a": 1});
        assert_eq!(
            decode_single_body(&object, TriggerDataType::String, "$").unwrap(),
            b"{\"a\":1}"
        );
        assert!(decode_single_body(&json!("%%%"), TriggerDataType::Binary, "$").is_err());
        assert_eq!(
            decode_single_body(&json!("eyJhIjoxfQ=="), TriggerDataType::String, "$").unwrap(),
            b"{\"a\":1}"
        );
    }
}
