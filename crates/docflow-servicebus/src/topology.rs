//! The Service Bus topology of `servicebus.config.json`, in the Service Bus emulator's
//! `Config.json` format (`UserConfig.Namespaces[0].Queues/Topics/Subscriptions/Rules`).
//!
//! The handler reads it to know entity properties (an entity's `MaxDeliveryCount`, for one);
//! the embedded broker loads it; a user with Docker can hand the same file to the emulator.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub mod emulator;

/// Service Bus's default `MaxDeliveryCount`.
pub const DEFAULT_MAX_DELIVERY_COUNT: u32 = 10;

/// Errors loading a topology file.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// The file could not be read.
    #[error("cannot read topology {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not the emulator's format.
    #[error("topology {path} is invalid at {field} (line {line}, column {column}): {message}")]
    Parse {
        /// The file.
        path: String,
        /// JSON path of the problem (`$` for a syntax error).
        field: String,
        /// Line of the problem.
        line: usize,
        /// Column of the problem.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The file declares no namespace.
    #[error("topology declares no namespace under UserConfig.Namespaces")]
    NoNamespace,
}

/// Why a topology file is not the emulator's format: where, and what.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatError {
    /// JSON path of the problem (`$` for a syntax error).
    pub field: String,
    /// Line of the problem (0 when parsed from a JSON value).
    pub line: usize,
    /// Column of the problem.
    pub column: usize,
    /// The parser's message.
    pub message: String,
    /// The text is not JSON at all (as opposed to JSON of the wrong shape).
    pub syntax: bool,
}

fn format_error(e: serde_path_to_error::Error<serde_json::Error>) -> FormatError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let syntax = inner.is_syntax() || inner.is_eof();
    FormatError {
        field: if syntax || path == "." {
            "$".into()
        } else {
            format!("$.{path}")
        },
        line: inner.line(),
        column: inner.column(),
        message: inner.to_string(),
        syntax,
    }
}

impl ConfigFile {
    /// The one typed parse of `servicebus.config.json`: errors name the JSON path.
    pub fn parse(text: &str) -> Result<Self, FormatError> {
        let mut json = serde_json::Deserializer::from_str(text);
        let file = serde_path_to_error::deserialize(&mut json).map_err(format_error)?;
        json.end().map_err(|e| FormatError {
            field: "$".into(),
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
            syntax: true,
        })?;
        Ok(file)
    }

    /// The same parse from an already-read JSON value.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, FormatError> {
        serde_path_to_error::deserialize(value).map_err(format_error)
    }
}

/// `null` where a list is expected reads as an empty list (the emulator's files have both).
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConfigFile {
    /// The emulator's root object.
    pub user_config: UserConfig,
}

/// `UserConfig`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserConfig {
    /// Namespaces; the emulator supports exactly one.
    pub namespaces: Vec<Namespace>,
    /// The emulator's logging section, kept as is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging: Option<serde_json::Value>,
}

/// One namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Namespace {
    /// Namespace name.
    pub name: String,
    /// Queues.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub queues: Vec<Queue>,
    /// Topics.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub topics: Vec<Topic>,
}

/// A queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Queue {
    /// Queue name.
    pub name: String,
    /// Its properties.
    #[serde(default)]
    pub properties: EntityProperties,
}

/// A topic with its subscriptions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Topic {
    /// Topic name.
    pub name: String,
    /// Its properties (TTL, duplicate detection).
    #[serde(default)]
    pub properties: EntityProperties,
    /// Subscriptions.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub subscriptions: Vec<Subscription>,
}

/// A subscription with its rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Subscription {
    /// Subscription name.
    pub name: String,
    /// Its properties.
    #[serde(default)]
    pub properties: EntityProperties,
    /// Rules; none means the `$Default` true filter.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub rules: Vec<Rule>,
}

/// Entity properties as the emulator spells them; absent ones take Service Bus defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EntityProperties {
    /// Dead-letter expired messages instead of dropping them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_lettering_on_message_expiration: Option<bool>,
    /// ISO 8601 duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_message_time_to_live: Option<String>,
    /// ISO 8601 duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_detection_history_time_window: Option<String>,
    /// Entity that receives this one's dead letters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_dead_lettered_messages_to: Option<String>,
    /// Entity that receives this one's messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_to: Option<String>,
    /// ISO 8601 duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_duration: Option<String>,
    /// Deliveries before dead-lettering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delivery_count: Option<u32>,
    /// Drop duplicates by `MessageId` within the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_duplicate_detection: Option<bool>,
    /// Sessions (FIFO per `SessionId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_session: Option<bool>,
}

/// A subscription rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Rule {
    /// Rule name.
    pub name: String,
    /// Filter and action.
    pub properties: RuleProperties,
}

/// `FilterType` with its filter, and an optional SQL action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuleProperties {
    /// `Correlation` or `Sql`.
    pub filter_type: String,
    /// For `Correlation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_filter: Option<serde_json::Value>,
    /// For `Sql`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_filter: Option<serde_json::Value>,
    /// A SQL rule action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<serde_json::Value>,
}

/// A loaded topology (the first namespace).
#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    /// The namespace.
    pub namespace: Namespace,
}

impl Topology {
    /// Loads and parses a file.
    pub fn load(path: &Path) -> Result<Self, TopologyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses file contents; `origin` names them in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, TopologyError> {
        let file = ConfigFile::parse(text).map_err(|e| TopologyError::Parse {
            path: origin.to_string(),
            field: e.field,
            line: e.line,
            column: e.column,
            message: e.message,
        })?;
        let namespace = file
            .user_config
            .namespaces
            .into_iter()
            .next()
            .ok_or(TopologyError::NoNamespace)?;
        Ok(Self { namespace })
    }

    /// Properties of a queue, or of a subscription given as `topic/subscriptions/name` or
    /// `topic/name`.
    pub fn entity(&self, path: &str) -> Option<&EntityProperties> {
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            [queue] => self
                .namespace
                .queues
                .iter()
                .find(|q| q.name.eq_ignore_ascii_case(queue))
                .map(|q| &q.properties),
            [topic, "subscriptions" | "Subscriptions", sub] | [topic, sub] => self
                .namespace
                .topics
                .iter()
                .find(|t| t.name.eq_ignore_ascii_case(topic))?
                .subscriptions
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(sub))
                .map(|s| &s.properties),
            _ => None,
        }
    }

    /// `MaxDeliveryCount` of an entity (Service Bus's default when unset).
    pub fn max_delivery_count(&self, path: &str) -> Option<u32> {
        self.entity(path)
            .map(|p| p.max_delivery_count.unwrap_or(DEFAULT_MAX_DELIVERY_COUNT))
    }
}

/// Parses an ISO 8601 duration such as `PT1M`, `PT0.5S`, `P14D` or `P1DT2H`.
pub fn parse_iso8601_duration(s: &str) -> Option<Duration> {
    let rest = s.trim().strip_prefix('P')?;
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut seconds = 0f64;
    let mut any = false;
    let mut take = |part: &str, units: &[(char, f64)]| -> Option<()> {
        let mut number = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                number.push(c);
                continue;
            }
            let (_, factor) = units.iter().find(|(u, _)| *u == c)?;
            if !number.starts_with(|c: char| c.is_ascii_digit()) {
                return None;
            }
            seconds += number.parse::<f64>().ok()? * factor;
            number.clear();
            any = true;
        }
        number.is_empty().then_some(())
    };
    take(date, &[('W', 604_800.0), ('D', 86_400.0)])?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        take(time, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)])?;
    }
    // Too large for a Duration (or not finite) is refused, not a panic.
    any.then(|| Duration::try_from_secs_f64(seconds).ok())
        .flatten()
}

/// Writes a duration the way Service Bus does (`PT1M`, `PT30S`, `P14D`, `PT0.5S`), so that
/// [`parse_iso8601_duration`] reads it back.
pub fn format_iso8601_duration(d: Duration) -> String {
    let total = d.as_secs();
    let (days, hours, minutes, seconds) = (
        total / 86_400,
        total % 86_400 / 3_600,
        total % 3_600 / 60,
        total % 60,
    );
    let nanos = d.subsec_nanos();
    let mut out = String::from("P");
    if days > 0 {
        out += &format!("{days}D");
    }
    if days > 0 && hours + minutes + seconds == 0 && nanos == 0 {
        return out;
    }
    out.push('T');
    if hours > 0 {
        out += &format!("{hours}H");
    }
    if minutes > 0 {
        out += &format!("{minutes}M");
    }
    if seconds > 0 || nanos > 0 || out.ends_with('T') {
        out += &seconds.to_string();
        if nanos > 0 {
            out += format!(".{nanos:09}").trim_end_matches('0');
        }
        out.push('S');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_as_service_bus_writes_them_and_read_back() {
        for (seconds, text) in [
            (60.0, "PT1M"),
            (30.0, "PT30S"),
            (600.0, "PT10M"),
            (14.0 * 86_400.0, "P14D"),
            (93_600.0, "P1DT2H"),
            (0.5, "PT0.5S"),
            (3_725.25, "PT1H2M5.25S"),
            (0.0, "PT0S"),
        ] {
            let d = Duration::from_secs_f64(seconds);
            assert_eq!(format_iso8601_duration(d), text);
            assert_eq!(parse_iso8601_duration(text), Some(d), "{text}");
        }
    }

    #[test]
    fn iso_durations() {
        assert_eq!(
            parse_iso8601_duration("PT1M"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_iso8601_duration("PT0.5S"),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_iso8601_duration("P14D"),
            Some(Duration::from_secs(14 * 86_400))
        );
        assert_eq!(
            parse_iso8601_duration("P1DT2H"),
            Some(Duration::from_secs(93_600))
        );
        let huge = format!("P{}D", "9".repeat(400));
        for bad in [
            "",
            "P",
            "PT",
            "1M",
            "PT1X",
            "PT1",
            "PT.S",
            "PT-1S",
            "P99999999999999999999D",
            &huge,
            "PT1.2.3S",
        ] {
            assert_eq!(parse_iso8601_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn parse_errors_name_the_place() {
        let err = Topology::parse(
            "{\"UserConfig\": {\"Namespaces\": [{\"Name\": 3}]}}",
            "x.json",
        )
        .unwrap_err();
        assert!(
            matches!(&err, TopologyError::Parse { line: 1, field, .. } if field == "$.UserConfig.Namespaces[0].Name"),
            "{err}"
        );
    }
}
