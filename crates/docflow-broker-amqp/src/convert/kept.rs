//! The parts of an AMQP message that the Service Bus mapping does not carry in the broker's
//! message fields, kept beside it as AMQP sections (`Message::amqp_sections`) and merged back
//! on delivery, so that an AMQP receiver gets what the sender sent: header priority, durable
//! and first-acquirer; delivery annotations; the sender's own message annotations; application
//! properties of types the broker's properties cannot hold (lists, maps, binary...); message
//! and correlation ids that are not strings; the rarer properties (user-id, content-encoding,
//! group-sequence); a body other than one data section; the footer.
//!
//! A message of one data section with string ids and simple properties (what
//! `ServiceBusMessage` sends, and every docflow message) keeps nothing.

use docflow_amqp::Value;
use docflow_amqp::message::{Body, Header, Message as AmqpMessage, Properties};

/// Annotations the broker maps to message fields or sets itself on delivery: never kept.
const BROKER_ANNOTATIONS: [&str; 8] = [
    "x-opt-scheduled-enqueue-time",
    "x-opt-partition-key",
    "x-opt-sequence-number",
    "x-opt-enqueued-time",
    "x-opt-enqueue-sequence-number",
    "x-opt-message-state",
    "x-opt-locked-until",
    "x-opt-deadletter-source",
];

/// The sections of `amqp` to keep, encoded as an AMQP message of those sections only; `None`
/// when the broker's fields carry everything. `is_mapped` tells which application properties
/// the broker's properties hold.
pub(crate) fn keep(amqp: &AmqpMessage, is_mapped: impl Fn(&Value) -> bool) -> Option<Vec<u8>> {
    let header = amqp
        .header
        .as_ref()
        .map(|h| Header {
            durable: h.durable,
            priority: h.priority,
            first_acquirer: h.first_acquirer,
            ..Header::default()
        })
        .filter(|h| *h != Header::default());
    let message_annotations = amqp
        .message_annotations
        .as_ref()
        .map(|a| {
            a.iter()
                .filter(|(key, _)| !is_broker_annotation(key))
                .cloned()
                .collect::<Vec<_>>()
        })
        .filter(|a| !a.is_empty());
    let properties = amqp
        .properties
        .as_ref()
        .map(|p| Properties {
            message_id: p.message_id.clone().filter(|id| !is_string(id)),
            correlation_id: p.correlation_id.clone().filter(|id| !is_string(id)),
            user_id: p.user_id.clone(),
            content_encoding: p.content_encoding.clone(),
            group_sequence: p.group_sequence,
            ..Properties::default()
        })
        .filter(|p| *p != Properties::default());
    let application_properties = amqp
        .application_properties
        .as_ref()
        .map(|props| {
            props
                .iter()
                .filter(|(_, value)| !is_mapped(value))
                .cloned()
                .collect::<Vec<_>>()
        })
        .filter(|props| !props.is_empty());
    let body = match &amqp.body {
        Body::Data(sections) if sections.len() <= 1 => Body::Data(Vec::new()),
        other => other.clone(),
    };
    let kept = AmqpMessage {
        header,
        delivery_annotations: amqp.delivery_annotations.clone().filter(|a| !a.is_empty()),
        message_annotations,
        properties,
        application_properties,
        body,
        footer: amqp.footer.clone().filter(|f| !f.is_empty()),
    };
    (kept != AmqpMessage::default()).then(|| kept.encode())
}

/// Merges kept sections into the message the broker delivers. The broker's own values win:
/// its annotations, its header fields (ttl, delivery count) and its mapped properties.
pub(crate) fn restore(delivered: &mut AmqpMessage, kept: &[u8]) {
    let kept = match AmqpMessage::decode(kept) {
        Ok(kept) => kept,
        Err(error) => {
            // Written by `keep`; a store edited by hand is the only way here.
            tracing::warn!(%error, "kept AMQP sections do not decode; delivering without them");
            return;
        }
    };
    if let Some(h) = kept.header {
        let header = delivered.header.get_or_insert_with(Header::default);
        header.durable = h.durable;
        header.priority = h.priority;
        header.first_acquirer = h.first_acquirer;
    }
    delivered.delivery_annotations = kept.delivery_annotations;
    if let Some(extra) = kept.message_annotations {
        let annotations = delivered.message_annotations.get_or_insert_with(Vec::new);
        for (key, value) in extra {
            if !annotations.iter().any(|(k, _)| *k == key) {
                annotations.push((key, value));
            }
        }
    }
    if let Some(p) = kept.properties {
        let properties = delivered.properties.get_or_insert_with(Properties::default);
        if p.message_id.is_some() {
            properties.message_id = p.message_id;
        }
        if p.correlation_id.is_some() {
            properties.correlation_id = p.correlation_id;
        }
        properties.user_id = p.user_id;
        properties.content_encoding = p.content_encoding;
        properties.group_sequence = p.group_sequence;
    }
    if let Some(extra) = kept.application_properties {
        let props = delivered
            .application_properties
            .get_or_insert_with(Vec::new);
        for (key, value) in extra {
            if !props.iter().any(|(k, _)| *k == key) {
                props.push((key, value));
            }
        }
    }
    if kept.body != Body::Data(Vec::new()) {
        delivered.body = kept.body;
    }
    delivered.footer = kept.footer;
}

fn is_broker_annotation(key: &Value) -> bool {
    matches!(key, Value::Symbol(k) if BROKER_ANNOTATIONS.contains(&k.as_str()))
}

fn is_string(id: &Value) -> bool {
    matches!(id, Value::String(_))
}
