//! User properties: typed values, their header encoding (`"text"`, `5`, `1.5`, `true`,
//! `"<RFC 1123 date>"`), and which headers are user properties at all.

use std::fmt;
use std::time::SystemTime;

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
