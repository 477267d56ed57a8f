//! The management API's Atom documents, read with one typed (serde) parse: a `<feed>` of
//! `<entry>`s or a single `<entry>`, each holding a `QueueDescription`,
//! `SubscriptionDescription` or `TopicDescription` (`servicebus.md` §2.11).
//!
//! quick-xml's serde deserializer matches element and attribute names by their local name: the
//! prefix Azure gives `CountDetails`' children (`d2p1:`, `d3p1:`, it varies between answers) is
//! not compared. The namespaces that say what the document is, Atom on the root and
//! `…/servicebus/connect` on the description, are checked from their `xmlns` attributes.

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use serde::Deserialize;

use super::{ATOM_NAMESPACE, CONNECT_NAMESPACE, EntityRuntime};
use crate::topology::parse_iso8601_duration;

/// A management API answer that does not hold what it must.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the management API's answer for {resource} cannot be read: {problem}")]
pub struct AtomError {
    /// What was asked for (`$Resources/Queues?$skip=0`, `orders`, …).
    pub resource: String,
    /// What is missing or malformed, and where in the document.
    pub problem: String,
}

/// A `<feed>` or an `<entry>`: the root's name is not read, what it holds tells them apart.
#[derive(Debug, Deserialize)]
pub(crate) struct Document {
    #[serde(rename = "@xmlns", default)]
    xmlns: Option<String>,
    /// The entity's name, when the root is an `<entry>`.
    #[serde(default)]
    title: Option<Text>,
    /// The description, when the root is an `<entry>`.
    #[serde(default)]
    content: Option<Content>,
    /// The entries, when the root is a `<feed>`.
    #[serde(default)]
    entry: Vec<Entry>,
}

/// One entity of a feed.
#[derive(Debug, Deserialize)]
pub(crate) struct Entry {
    title: Text,
    content: Content,
}

#[derive(Debug, Deserialize)]
struct Text {
    #[serde(rename = "$text", default)]
    text: String,
}

#[derive(Debug, Deserialize)]
struct Content {
    #[serde(rename = "$value")]
    description: Description,
}

/// The description an entry holds, by its element's name.
#[derive(Debug, Deserialize)]
enum Description {
    #[serde(rename = "QueueDescription")]
    Queue(Settings),
    #[serde(rename = "SubscriptionDescription")]
    Subscription(Settings),
    #[serde(rename = "TopicDescription")]
    Topic(Settings),
}

/// The elements of a description the runtime figures come from (the others are not read).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Settings {
    #[serde(rename = "@xmlns", default)]
    xmlns: Option<String>,
    lock_duration: Option<String>,
    max_delivery_count: Option<u32>,
    size_in_bytes: Option<u64>,
    message_count: Option<u64>,
    status: Option<String>,
    forward_to: Option<String>,
    accessed_at: Option<String>,
    updated_at: Option<String>,
    /// Required: the figures are what a runtime read is for.
    count_details: CountDetails,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CountDetails {
    active_message_count: u64,
    dead_letter_message_count: u64,
    scheduled_message_count: u64,
    transfer_message_count: u64,
    transfer_dead_letter_message_count: u64,
}

impl Document {
    /// Parses an answer to a request for `resource`.
    pub(crate) fn parse(xml: &str, resource: &str) -> Result<Self, AtomError> {
        let error = |problem: String| AtomError {
            resource: resource.to_string(),
            problem,
        };
        let mut deserializer = quick_xml::de::Deserializer::from_str(xml);
        let document: Document =
            serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
                // `content.$value.QueueDescription` reads as `content.QueueDescription`.
                let at = e.path().to_string().replace(".$value", "");
                match at.as_str() {
                    "?" | "." => error(e.inner().to_string()),
                    _ => error(format!("{} (at {at})", e.inner())),
                }
            })?;
        if document.xmlns.as_deref() != Some(ATOM_NAMESPACE) {
            return Err(error(format!(
                "the root element is not in the Atom namespace {ATOM_NAMESPACE} (its xmlns is {:?})",
                document.xmlns.as_deref().unwrap_or("")
            )));
        }
        let descriptions = document
            .content
            .iter()
            .chain(document.entry.iter().map(|e| &e.content));
        for content in descriptions {
            let xmlns = content.description.settings().xmlns.as_deref();
            if xmlns != Some(CONNECT_NAMESPACE) {
                return Err(error(format!(
                    "a {} is not in the namespace {CONNECT_NAMESPACE} (its xmlns is {:?})",
                    content.description.kind(),
                    xmlns.unwrap_or("")
                )));
            }
        }
        Ok(document)
    }

    /// Its entries: the one entity of an `<entry>`, those of a `<feed>` (none for a feed that
    /// answers a read of an entity that does not exist).
    pub(crate) fn into_entries(self) -> Vec<Entry> {
        match (self.title, self.content) {
            (Some(title), Some(content)) => vec![Entry { title, content }],
            _ => self.entry,
        }
    }
}

impl Description {
    fn settings(&self) -> &Settings {
        match self {
            Self::Queue(s) | Self::Subscription(s) | Self::Topic(s) => s,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Queue(_) => "QueueDescription",
            Self::Subscription(_) => "SubscriptionDescription",
            Self::Topic(_) => "TopicDescription",
        }
    }
}

impl Entry {
    /// The entity's name, as the service spells it.
    pub(crate) fn name(&self) -> &str {
        self.title.text.trim()
    }

    /// Whether it describes a subscription.
    pub(crate) fn is_subscription(&self) -> bool {
        matches!(self.content.description, Description::Subscription(_))
    }

    /// A queue's or subscription's runtime figures, under `path`; a topic is refused.
    pub(crate) fn into_runtime(
        self,
        path: String,
        resource: &str,
    ) -> Result<EntityRuntime, AtomError> {
        let error = |problem: String| AtomError {
            resource: resource.to_string(),
            problem,
        };
        let subscription = self.is_subscription();
        let settings = match self.content.description {
            Description::Topic(_) => {
                return Err(error(format!(
                    "{path} is a topic: runtime figures are read from its subscriptions"
                )));
            }
            Description::Queue(s) | Description::Subscription(s) => s,
        };
        let lock_duration = settings
            .lock_duration
            .as_deref()
            .map(|text| {
                parse_iso8601_duration(text).ok_or_else(|| {
                    error(format!("LockDuration {text:?} is not an ISO 8601 duration"))
                })
            })
            .transpose()?;
        let date = |name: &str, text: &Option<String>| {
            text.as_deref()
                .map(|t| parse_date(t).ok_or_else(|| error(format!("{name} {t:?} is not a date"))))
                .transpose()
                .map(Option::flatten)
        };
        let counts = &settings.count_details;
        Ok(EntityRuntime {
            subscription,
            forward_to: settings.forward_to.as_deref().and_then(entity_of),
            status: settings.status.clone().filter(|s| !s.is_empty()),
            active: counts.active_message_count,
            dead_lettered: counts.dead_letter_message_count,
            scheduled: counts.scheduled_message_count,
            transfer: counts.transfer_message_count,
            transfer_dead_lettered: counts.transfer_dead_letter_message_count,
            message_count: settings.message_count.unwrap_or_default(),
            size_in_bytes: settings.size_in_bytes.unwrap_or_default(),
            max_delivery_count: settings.max_delivery_count,
            lock_duration,
            accessed_at: date("AccessedAt", &settings.accessed_at)?,
            updated_at: date("UpdatedAt", &settings.updated_at)?,
            path,
        })
    }
}

/// An `xs:dateTime` as Azure writes it: `Z` or no zone at all (both UTC), up to seven
/// fractional digits. The year 1 (`0001-01-01T00:00:00`, .NET's `DateTime.MinValue`) is how
/// Azure says "never" and reads as `None`; `None` is also text that is no date at all.
fn parse_date(text: &str) -> Option<Option<DateTime<Utc>>> {
    let text = text.trim();
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|d| d.and_utc())
        })
        .ok()?;
    Some((parsed.year() > 1).then_some(parsed))
}

/// The entity a forwarding target names: Azure writes `sb://{namespace host}/{entity}`.
fn entity_of(target: &str) -> Option<String> {
    let target = target.trim();
    let path = match target.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, path)| path),
        None => target,
    };
    let path = path.trim_matches('/');
    (!path.is_empty()).then(|| path.to_string())
}

#[cfg(test)]
mod tests;
