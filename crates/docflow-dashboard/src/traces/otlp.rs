//! `ExportTraceServiceRequest` in OTLP/JSON (the protobuf JSON mapping with OTLP's changes):
//! `resourceSpans[].scopeSpans[].spans[]`, ids as hex, 64-bit integers as decimal strings (or
//! numbers), enums as numbers (or their names), attributes as `{key, value: AnyValue}`. One
//! typed serde pass; an error names the JSON path where it happened. Unknown fields are
//! ignored, as the mapping requires.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A body that is not an OTLP/JSON trace export.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OTLP/JSON at {path}: {message}")]
pub struct ParseError {
    /// Where, as a JSON path (`resourceSpans[0].scopeSpans[0].spans[3].traceId`).
    pub path: String,
    /// What was wrong there.
    pub message: String,
}

/// Every span of an export, in the order it lists them.
pub fn parse(body: &[u8]) -> Result<Vec<Span>, ParseError> {
    let mut json = serde_json::Deserializer::from_slice(body);
    let request: ExportTraceServiceRequest =
        serde_path_to_error::deserialize(&mut json).map_err(|e| ParseError {
            path: match e.path().to_string() {
                p if p == "." => "the body".to_owned(),
                p => p,
            },
            message: e.inner().to_string(),
        })?;
    Ok(request
        .resource_spans
        .into_iter()
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportTraceServiceRequest {
    #[serde(default)]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans {
    #[serde(default)]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScopeSpans {
    #[serde(default)]
    spans: Vec<Span>,
}

/// A span as exported.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    /// Its trace.
    pub trace_id: TraceId,
    /// Its id.
    pub span_id: SpanId,
    /// Its parent (none for a root: an empty string on the wire).
    #[serde(default, deserialize_with = "parent_id")]
    pub parent_span_id: Option<SpanId>,
    /// `process ai-tasks`, `chat gpt-4o-mini`…
    pub name: String,
    /// SERVER, CONSUMER…
    #[serde(default)]
    pub kind: SpanKind,
    /// Start, unix nanoseconds.
    #[serde(deserialize_with = "u64_of")]
    pub start_time_unix_nano: u64,
    /// End, unix nanoseconds.
    #[serde(deserialize_with = "u64_of")]
    pub end_time_unix_nano: u64,
    /// Attributes, in order.
    #[serde(default, deserialize_with = "attributes")]
    pub attributes: Vec<(String, AttrValue)>,
    /// Events (a `rate_limited` per 429).
    #[serde(default)]
    pub events: Vec<SpanEvent>,
    /// Links (the fan-in's, one per task).
    #[serde(default)]
    pub links: Vec<Link>,
    /// Its status.
    #[serde(default)]
    pub status: Status,
}

impl Span {
    /// An attribute's value.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        find(&self.attributes, key)
    }

    /// An attribute as an integer (an integer, or a string holding one).
    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        self.attr(key).and_then(AttrValue::as_i64)
    }

    /// An attribute as text.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(AttrValue::as_str)
    }
}

fn find<'a>(attributes: &'a [(String, AttrValue)], key: &str) -> Option<&'a AttrValue> {
    attributes.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// A span event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanEvent {
    /// `rate_limited`…
    #[serde(default)]
    pub name: String,
    /// When, unix nanoseconds.
    #[serde(default, deserialize_with = "u64_of")]
    pub time_unix_nano: u64,
    /// Its attributes.
    #[serde(default, deserialize_with = "attributes")]
    pub attributes: Vec<(String, AttrValue)>,
}

impl SpanEvent {
    /// An attribute as an integer.
    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        find(&self.attributes, key).and_then(AttrValue::as_i64)
    }
}

/// A link to another span.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// Its trace.
    pub trace_id: TraceId,
    /// The span.
    pub span_id: SpanId,
}

/// A span's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Unset, ok or error.
    #[serde(default)]
    pub code: StatusCode,
    /// The error's description.
    #[serde(default)]
    pub message: String,
}

/// A status code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StatusCode {
    /// Nothing said.
    #[default]
    Unset,
    /// Ok.
    Ok,
    /// Failed.
    Error,
}

/// A span's kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    /// Not said.
    #[default]
    Unspecified,
    /// Within the process (a budget hold).
    Internal,
    /// An HTTP function.
    Server,
    /// A call out (a provider call).
    Client,
    /// A message sent.
    Producer,
    /// A message processed.
    Consumer,
}

impl SpanKind {
    /// Lower case, as the page shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }
}

/// An attribute's value (`AnyValue`); key-value lists and bytes are kept as [`AttrValue::Other`].
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// `stringValue`.
    Str(String),
    /// `intValue`.
    Int(i64),
    /// `doubleValue`.
    Double(f64),
    /// `boolValue`.
    Bool(bool),
    /// `arrayValue`.
    Array(Vec<AttrValue>),
    /// Anything else.
    Other,
}

impl AttrValue {
    /// An integer, or a string holding one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(n) => Some(*n),
            Self::Str(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The text of a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Str(s) => f.write_str(s),
            Self::Int(n) => write!(f, "{n}"),
            Self::Double(x) => write!(f, "{x}"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
            Self::Other => f.write_str("…"),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyValue {
    string_value: Option<String>,
    #[serde(default, deserialize_with = "some_i64")]
    int_value: Option<i64>,
    double_value: Option<f64>,
    bool_value: Option<bool>,
    array_value: Option<ArrayValue>,
}

#[derive(Deserialize)]
struct ArrayValue {
    #[serde(default)]
    values: Vec<AnyValue>,
}

impl From<AnyValue> for AttrValue {
    fn from(v: AnyValue) -> Self {
        if let Some(s) = v.string_value {
            Self::Str(s)
        } else if let Some(n) = v.int_value {
            Self::Int(n)
        } else if let Some(x) = v.double_value {
            Self::Double(x)
        } else if let Some(b) = v.bool_value {
            Self::Bool(b)
        } else if let Some(a) = v.array_value {
            Self::Array(a.values.into_iter().map(Self::from).collect())
        } else {
            Self::Other
        }
    }
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: Option<AnyValue>,
}

fn attributes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, AttrValue)>, D::Error> {
    let pairs = Vec::<KeyValue>::deserialize(d)?;
    Ok(pairs
        .into_iter()
        .map(|kv| (kv.key, kv.value.map_or(AttrValue::Other, AttrValue::from)))
        .collect())
}

/// A trace id: 16 bytes, 32 hex digits on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TraceId(pub u128);

/// A span id: 8 bytes, 16 hex digits on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(pub u64);

impl TraceId {
    /// From 32 hex digits (a state record's `trace_id`).
    pub fn parse(hex: &str) -> Option<Self> {
        (hex.len() == 32)
            .then(|| u128::from_str_radix(hex, 16).ok())
            .flatten()
            .map(Self)
    }
}

impl SpanId {
    /// From 16 hex digits.
    pub fn parse(hex: &str) -> Option<Self> {
        (hex.len() == 16)
            .then(|| u64::from_str_radix(hex, 16).ok())
            .flatten()
            .map(Self)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

fn hex_error<E: de::Error>(s: &str, digits: usize) -> E {
    E::custom(format!("expected {digits} hex digits, got {s:?}"))
}

impl<'de> Deserialize<'de> for TraceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| hex_error(&s, 32))
    }
}

impl<'de> Deserialize<'de> for SpanId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| hex_error(&s, 16))
    }
}

fn parent_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SpanId>, D::Error> {
    let s = Option::<String>::deserialize(d)?.unwrap_or_default();
    if s.is_empty() {
        return Ok(None);
    }
    SpanId::parse(&s).map(Some).ok_or_else(|| hex_error(&s, 16))
}

/// An integer as a number or a decimal string (how the mapping writes 64-bit integers).
struct Integer;

impl Visitor<'_> for Integer {
    type Value = i128;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or a string of one")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i128, E> {
        Ok(v.into())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i128, E> {
        Ok(v.into())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i128, E> {
        v.trim()
            .parse()
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

fn u64_of<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = d.deserialize_any(Integer)?;
    u64::try_from(n).map_err(|_| de::Error::custom(format!("{n} is out of range")))
}

fn some_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n = d.deserialize_any(Integer)?;
    i64::try_from(n)
        .map(Some)
        .map_err(|_| de::Error::custom(format!("{n} is out of range")))
}

/// An enum as its number or its name (`SPAN_KIND_SERVER`).
fn enum_index<'de, D: Deserializer<'de>>(d: D, names: &[&str]) -> Result<usize, D::Error> {
    struct Either;
    impl Visitor<'_> for Either {
        type Value = Result<i128, String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an enum's number or name")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Ok(v.into()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Ok(v.into()))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Err(v.to_owned()))
        }
    }
    match d.deserialize_any(Either)? {
        Ok(n) => usize::try_from(n)
            .ok()
            .filter(|i| *i < names.len())
            .ok_or_else(|| de::Error::custom(format!("{n} is not one of 0..{}", names.len()))),
        Err(name) => names
            .iter()
            .position(|n| *n == name)
            .ok_or_else(|| de::Error::unknown_variant(&name, &[])),
    }
}

impl<'de> Deserialize<'de> for SpanKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const NAMES: [&str; 6] = [
            "SPAN_KIND_UNSPECIFIED",
            "SPAN_KIND_INTERNAL",
            "SPAN_KIND_SERVER",
            "SPAN_KIND_CLIENT",
            "SPAN_KIND_PRODUCER",
            "SPAN_KIND_CONSUMER",
        ];
        Ok(match enum_index(d, &NAMES)? {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        })
    }
}

impl<'de> Deserialize<'de> for StatusCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const NAMES: [&str; 3] = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];
        Ok(match enum_index(d, &NAMES)? {
            1 => Self::Ok,
            2 => Self::Error,
            _ => Self::Unset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the handler exported for one document (three tasks against an OpenAI-compatible
    /// endpoint with a small budget), captured from `docflow dev`: one body per line.
    const CAPTURED: &str = include_str!("../../tests/fixtures/otlp-document.jsonl");

    fn captured() -> Vec<Span> {
        CAPTURED
            .lines()
            .flat_map(|body| parse(body.as_bytes()).unwrap())
            .collect()
    }

    #[test]
    fn a_captured_export_parses_into_its_spans() {
        let spans = captured();
        let trace = TraceId::parse("0585e92f14de945d0dbb84ae3e35bed0").unwrap();
        let ours: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace).collect();
        assert_eq!(ours.len(), 25);
        let root = ours.iter().find(|s| s.name == "POST /documents").unwrap();
        assert_eq!(root.kind, SpanKind::Server);
        assert_eq!(root.parent_span_id, None);
        assert!(root.end_time_unix_nano > root.start_time_unix_nano);
        let task = ours
            .iter()
            .find(|s| {
                s.attr_str("messaging.message.id")
                    .is_some_and(|id| id.ends_with(":classify"))
            })
            .unwrap();
        assert_eq!(task.kind, SpanKind::Consumer);
        assert_eq!(task.attr_i64("docflow.queue_wait_ms"), Some(638));
        assert_eq!(
            task.attr_i64("messaging.servicebus.message.delivery_count"),
            Some(1)
        );
        let chat = ours
            .iter()
            .find(|s| s.kind == SpanKind::Client && s.parent_span_id == Some(task.span_id))
            .unwrap();
        assert_eq!(chat.name, "chat gpt-4o-mini");
        assert_eq!(chat.attr_i64("gen_ai.usage.input_tokens"), Some(204));
        assert_eq!(
            chat.attr("gen_ai.response.finish_reasons"),
            Some(&AttrValue::Array(vec![AttrValue::Str("stop".into())]))
        );
        let hold = ours
            .iter()
            .find(|s| s.name == "budget hold gpt-4o-mini")
            .unwrap();
        assert_eq!(hold.kind, SpanKind::Internal);
        assert_eq!(
            hold.attr("docflow.budget.admitted"),
            Some(&AttrValue::Bool(true))
        );
        let fan_in = ours.iter().find(|s| !s.links.is_empty()).unwrap();
        assert_eq!(fan_in.name, "process task-results");
        assert_eq!(fan_in.links.len(), 3);
        assert_eq!(
            root.trace_id.to_string(),
            "0585e92f14de945d0dbb84ae3e35bed0"
        );
    }

    #[test]
    fn numbers_and_enum_names_are_accepted_as_well() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
            "traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331",
            "name":"x","kind":"SPAN_KIND_CONSUMER","startTimeUnixNano":1,"endTimeUnixNano":"2",
            "attributes":[{"key":"n","value":{"intValue":7}},{"key":"d","value":{"doubleValue":0.5}}],
            "events":[{"name":"rate_limited","timeUnixNano":"2","attributes":[{"key":"docflow.retry_after_ms","value":{"intValue":"1200"}}]}],
            "status":{"code":"STATUS_CODE_ERROR","message":"boom"},"unknown":{"ignored":true}}]}]}]}"#;
        let spans = parse(body).unwrap();
        assert_eq!(spans[0].kind, SpanKind::Consumer);
        assert_eq!(spans[0].attr_i64("n"), Some(7));
        assert_eq!(spans[0].attr("d"), Some(&AttrValue::Double(0.5)));
        assert_eq!(
            spans[0].events[0].attr_i64("docflow.retry_after_ms"),
            Some(1200)
        );
        assert_eq!(spans[0].status.code, StatusCode::Error);
        assert_eq!(parse(b"{}").unwrap(), Vec::new());
    }

    #[test]
    fn an_error_names_its_json_path() {
        let bad_id = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"nothex","spanId":"b7ad6b7169203331","name":"x","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
        let e = parse(bad_id).unwrap_err();
        assert_eq!(e.path, "resourceSpans[0].scopeSpans[0].spans[0].traceId");
        assert!(e.message.contains("32 hex digits"), "{e}");
        let bad_time = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"x","startTimeUnixNano":"soon","endTimeUnixNano":"2"}]}]}]}"#;
        assert_eq!(
            parse(bad_time).unwrap_err().path,
            "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano"
        );
        assert_eq!(parse(b"nope").unwrap_err().path, "the body");
        assert!(parse(b"{\"resourceSpans\": 3}").is_err());
    }
}
