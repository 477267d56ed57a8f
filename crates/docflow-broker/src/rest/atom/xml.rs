//! The Atom documents themselves, written element by element with quick-xml's writer (names
//! and values escaped by it), in the shape and element order of Azure's answers: an `<entry>`
//! (`id`, `title`, `published`, `updated`, `author`, `link`, `content`) around a
//! `QueueDescription`, `TopicDescription` or `SubscriptionDescription`, or a `<feed>` of them.

use std::io;

use chrono::{DateTime, Utc};
use quick_xml::Writer;
use quick_xml::events::BytesText;

use super::super::Request;
use crate::Broker;
use crate::clock::to_datetime;
use crate::core::{Counts, Runtime};
use crate::entities::{EntitySettings, QueueDef, SubscriptionDef, TopicDef};
use docflow_servicebus::admin::{
    API_VERSION, ATOM_NAMESPACE, CONNECT_NAMESPACE, COUNT_DETAILS_NAMESPACE,
    SCHEMA_INSTANCE_NAMESPACE,
};
use docflow_servicebus::topology::format_iso8601_duration;

/// .NET's `TimeSpan.MaxValue`, which Azure writes for "no limit" (TTL, auto-delete on idle).
const UNLIMITED: &str = "P10675199DT2H48M5.4775807S";
/// .NET's `DateTime.MinValue`, Azure's `AccessedAt` of an entity never used.
const NEVER: &str = "0001-01-01T00:00:00Z";
/// Azure's default `MaxSizeInMegabytes` (the broker itself has no size quota).
const MAX_SIZE_IN_MEGABYTES: &str = "1024";
/// Prefix of `CountDetails`' children, as Azure writes it.
const COUNTS_PREFIX: &str = "d2p1";

type W = Writer<Vec<u8>>;

/// An entity and its figures, as one entry describes it.
pub(super) enum Described<'a> {
    Queue(&'a QueueDef, &'a Runtime),
    Topic(&'a TopicDef, &'a Runtime),
    Subscription(&'a TopicDef, &'a SubscriptionDef, &'a Runtime),
}

/// What every document of one answer shares: where it is served, by whom, and when.
pub(super) struct Atom {
    base: String,
    namespace: String,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
    max_message_kilobytes: String,
}

impl Atom {
    pub(super) fn new(broker: &Broker, request: &Request) -> Self {
        Self {
            base: format!("http://{}", request.host()),
            namespace: broker.entities().namespace.clone(),
            created: to_datetime(request.serving_since),
            now: to_datetime(broker.now()),
            max_message_kilobytes: (broker.options().max_message_bytes / 1024).to_string(),
        }
    }

    /// One entity's `<entry>`.
    pub(super) fn entry(&self, described: &Described<'_>) -> io::Result<Vec<u8>> {
        let mut w = Writer::new(Vec::new());
        self.write_entry(&mut w, described, true)?;
        Ok(w.into_inner())
    }

    /// A `<feed>` of `entries`, page (`skip`, `top`) of `total` entities listed at `listing`.
    pub(super) fn feed(
        &self,
        title: &str,
        listing: &str,
        (skip, top): (usize, usize),
        total: usize,
        entries: Vec<Described<'_>>,
    ) -> io::Result<Vec<u8>> {
        let url = |skip: usize| {
            format!(
                "{}/{listing}?$skip={skip}&$top={top}&api-version={API_VERSION}",
                self.base
            )
        };
        let mut w = Writer::new(Vec::new());
        w.create_element("feed")
            .with_attribute(("xmlns", ATOM_NAMESPACE))
            .write_inner_content(|w| {
                typed_text(w, "title", title)?;
                text(w, "id", &url(skip))?;
                text(w, "updated", &atom_time(self.now))?;
                link(w, "self", &url(skip))?;
                if skip.saturating_add(top) < total {
                    link(w, "next", &url(skip + top))?;
                }
                for described in &entries {
                    self.write_entry(w, described, false)?;
                }
                Ok(())
            })?;
        Ok(w.into_inner())
    }

    /// Azure's answer for an entity that does not exist: a feed with no entry.
    pub(super) fn not_found(&self) -> io::Result<Vec<u8>> {
        let mut w = Writer::new(Vec::new());
        w.create_element("feed")
            .with_attribute(("xmlns", ATOM_NAMESPACE))
            .write_inner_content(|w| {
                typed_text(w, "title", "Publicly Listed Services")?;
                typed_text(
                    w,
                    "subtitle",
                    "This is the list of publicly-listed services currently available.",
                )?;
                text(w, "id", &format!("uuid:{};id=1", uuid::Uuid::new_v4()))?;
                text(w, "updated", &atom_time(self.now))?;
                text(w, "generator", "Service Bus 1.1")
            })?;
        Ok(w.into_inner())
    }

    fn write_entry(&self, w: &mut W, described: &Described<'_>, root: bool) -> io::Result<()> {
        let (path, title) = match described {
            Described::Queue(q, _) => (q.name.clone(), q.name.as_str()),
            Described::Topic(t, _) => (t.name.clone(), t.name.as_str()),
            Described::Subscription(t, s, _) => (
                format!("{}/subscriptions/{}", t.name, s.name),
                s.name.as_str(),
            ),
        };
        let url = format!("{}/{path}?api-version={API_VERSION}", self.base);
        let mut entry = w.create_element("entry");
        if root {
            entry = entry.with_attribute(("xmlns", ATOM_NAMESPACE));
        }
        entry.write_inner_content(|w| {
            text(w, "id", &url)?;
            typed_text(w, "title", title)?;
            text(w, "published", &atom_time(self.created))?;
            text(w, "updated", &atom_time(self.created))?;
            w.create_element("author")
                .write_inner_content(|w| text(w, "name", &self.namespace))?;
            link(w, "self", &url)?;
            w.create_element("content")
                .with_attribute(("type", "application/xml"))
                .write_inner_content(|w| match described {
                    Described::Queue(q, r) => self.queue(w, &q.settings, r),
                    Described::Topic(t, r) => self.topic(w, t, r),
                    Described::Subscription(_, s, r) => self.subscription(w, &s.settings, r),
                })?;
            Ok(())
        })?;
        Ok(())
    }

    fn queue(&self, w: &mut W, s: &EntitySettings, r: &Runtime) -> io::Result<()> {
        description(w, "QueueDescription", |w| {
            text(w, "LockDuration", &format_iso8601_duration(s.lock_duration))?;
            text(w, "MaxSizeInMegabytes", MAX_SIZE_IN_MEGABYTES)?;
            flag(
                w,
                "RequiresDuplicateDetection",
                s.requires_duplicate_detection,
            )?;
            flag(w, "RequiresSession", s.requires_session)?;
            text(w, "DefaultMessageTimeToLive", &ttl(s))?;
            flag(
                w,
                "DeadLetteringOnMessageExpiration",
                s.dead_letter_on_expiration,
            )?;
            text(
                w,
                "DuplicateDetectionHistoryTimeWindow",
                &format_iso8601_duration(s.duplicate_window),
            )?;
            text(w, "MaxDeliveryCount", &s.max_delivery_count.to_string())?;
            flag(w, "EnableBatchedOperations", true)?;
            text(w, "SizeInBytes", &r.size_in_bytes.to_string())?;
            text(w, "MessageCount", &message_count(&r.counts).to_string())?;
            flag(w, "IsAnonymousAccessible", false)?;
            w.create_element("AuthorizationRules").write_empty()?;
            text(w, "Status", "Active")?;
            self.forward(w, "ForwardTo", &s.forward_to)?;
            self.times(w, r)?;
            flag(w, "SupportOrdering", true)?;
            count_details(w, &r.counts)?;
            text(w, "AutoDeleteOnIdle", UNLIMITED)?;
            flag(w, "EnablePartitioning", false)?;
            text(w, "EntityAvailabilityStatus", "Available")?;
            self.forward(
                w,
                "ForwardDeadLetteredMessagesTo",
                &s.forward_dead_lettered_to,
            )?;
            flag(w, "EnableExpress", false)?;
            text(w, "MaxMessageSizeInKilobytes", &self.max_message_kilobytes)
        })
    }

    fn topic(&self, w: &mut W, t: &TopicDef, r: &Runtime) -> io::Result<()> {
        let s = &t.settings;
        description(w, "TopicDescription", |w| {
            text(w, "DefaultMessageTimeToLive", &ttl(s))?;
            text(w, "MaxSizeInMegabytes", MAX_SIZE_IN_MEGABYTES)?;
            flag(
                w,
                "RequiresDuplicateDetection",
                s.requires_duplicate_detection,
            )?;
            text(
                w,
                "DuplicateDetectionHistoryTimeWindow",
                &format_iso8601_duration(s.duplicate_window),
            )?;
            flag(w, "EnableBatchedOperations", true)?;
            text(w, "SizeInBytes", &r.size_in_bytes.to_string())?;
            flag(w, "FilteringMessagesBeforePublishing", false)?;
            flag(w, "IsAnonymousAccessible", false)?;
            w.create_element("AuthorizationRules").write_empty()?;
            text(w, "Status", "Active")?;
            self.times(w, r)?;
            flag(w, "SupportOrdering", true)?;
            count_details(w, &r.counts)?;
            text(w, "SubscriptionCount", &t.subscriptions.len().to_string())?;
            text(w, "AutoDeleteOnIdle", UNLIMITED)?;
            flag(w, "EnablePartitioning", false)?;
            text(w, "EntityAvailabilityStatus", "Available")?;
            flag(w, "EnableSubscriptionPartitioning", false)?;
            flag(w, "EnableExpress", false)?;
            text(w, "MaxMessageSizeInKilobytes", &self.max_message_kilobytes)
        })
    }

    fn subscription(&self, w: &mut W, s: &EntitySettings, r: &Runtime) -> io::Result<()> {
        description(w, "SubscriptionDescription", |w| {
            text(w, "LockDuration", &format_iso8601_duration(s.lock_duration))?;
            flag(w, "RequiresSession", s.requires_session)?;
            text(w, "DefaultMessageTimeToLive", &ttl(s))?;
            flag(
                w,
                "DeadLetteringOnMessageExpiration",
                s.dead_letter_on_expiration,
            )?;
            flag(w, "DeadLetteringOnFilterEvaluationExceptions", true)?;
            text(w, "MessageCount", &message_count(&r.counts).to_string())?;
            text(w, "MaxDeliveryCount", &s.max_delivery_count.to_string())?;
            flag(w, "EnableBatchedOperations", true)?;
            text(w, "Status", "Active")?;
            self.forward(w, "ForwardTo", &s.forward_to)?;
            self.times(w, r)?;
            count_details(w, &r.counts)?;
            self.forward(
                w,
                "ForwardDeadLetteredMessagesTo",
                &s.forward_dead_lettered_to,
            )?;
            text(w, "AutoDeleteOnIdle", UNLIMITED)?;
            text(w, "EntityAvailabilityStatus", "Available")
        })
    }

    /// `CreatedAt` and `UpdatedAt` (when the broker began serving its topology) and
    /// `AccessedAt` (when its newest message was enqueued; Azure's "never" when it holds none).
    fn times(&self, w: &mut W, r: &Runtime) -> io::Result<()> {
        text(w, "CreatedAt", &description_time(self.created))?;
        text(w, "UpdatedAt", &description_time(self.created))?;
        let accessed = r
            .last_enqueued_at
            .map(|at| description_time(to_datetime(at)));
        text(w, "AccessedAt", accessed.as_deref().unwrap_or(NEVER))
    }

    /// A forwarding target as Azure writes it: `sb://{host}/{entity}`.
    fn forward(&self, w: &mut W, name: &str, target: &Option<String>) -> io::Result<()> {
        match target {
            Some(target) => {
                let host = self.base.trim_start_matches("http://");
                text(w, name, &format!("sb://{host}/{target}"))
            }
            None => Ok(()),
        }
    }
}

/// Every message the entity holds, as Azure's `MessageCount` counts them.
fn message_count(c: &Counts) -> u64 {
    c.active + c.scheduled + c.deferred + c.dead_lettered
}

fn ttl(s: &EntitySettings) -> String {
    s.default_ttl
        .map_or_else(|| UNLIMITED.to_string(), format_iso8601_duration)
}

fn description(
    w: &mut W,
    name: &str,
    children: impl FnOnce(&mut W) -> io::Result<()>,
) -> io::Result<()> {
    w.create_element(name)
        .with_attribute(("xmlns", CONNECT_NAMESPACE))
        .with_attribute(("xmlns:i", SCHEMA_INSTANCE_NAMESPACE))
        .write_inner_content(children)?;
    Ok(())
}

fn count_details(w: &mut W, c: &Counts) -> io::Result<()> {
    let binding = format!("xmlns:{COUNTS_PREFIX}");
    w.create_element("CountDetails")
        .with_attribute((binding.as_str(), COUNT_DETAILS_NAMESPACE))
        .write_inner_content(|w| {
            for (name, value) in [
                ("ActiveMessageCount", c.active),
                ("DeadLetterMessageCount", c.dead_lettered),
                ("ScheduledMessageCount", c.scheduled),
                ("TransferMessageCount", 0),
                ("TransferDeadLetterMessageCount", 0),
            ] {
                text(w, &format!("{COUNTS_PREFIX}:{name}"), &value.to_string())?;
            }
            Ok(())
        })?;
    Ok(())
}

fn text(w: &mut W, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn typed_text(w: &mut W, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name)
        .with_attribute(("type", "text"))
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn flag(w: &mut W, name: &str, value: bool) -> io::Result<()> {
    text(w, name, if value { "true" } else { "false" })
}

fn link(w: &mut W, rel: &str, href: &str) -> io::Result<()> {
    w.create_element("link")
        .with_attribute(("rel", rel))
        .with_attribute(("href", href))
        .write_empty()?;
    Ok(())
}

/// Atom's `published`/`updated`: whole seconds (`2021-10-21T05:19:08Z`).
fn atom_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A description's dates: milliseconds (`2021-10-21T05:19:08.690Z`).
fn description_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
