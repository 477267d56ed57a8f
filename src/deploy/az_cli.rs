//! The Service Bus topology of `servicebus.config.json` as `az servicebus` commands, so that
//! the entities created on Azure are exactly the ones the app and the embedded broker use.
//! Pure: it only writes text.

use serde_json::Value;

use crate::topology::{EntityProperties, Rule, Topology};

/// Correlation-filter fields and the `az` option each one maps to.
const CORRELATION_FIELDS: [(&str, &str); 8] = [
    ("CorrelationId", "--correlation-id"),
    ("MessageId", "--message-id"),
    ("To", "--to"),
    ("ReplyTo", "--reply-to"),
    ("Label", "--label"),
    ("Subject", "--label"),
    ("SessionId", "--session-id"),
    ("ReplyToSessionId", "--reply-to-session-id"),
];

/// A bash script creating every queue, topic, subscription and rule (and removing the
/// `$Default` rule where a subscription has rules of its own), in an order where every
/// `ForwardTo` target exists before it is named. `RESOURCE_GROUP` and `NAMESPACE` come from
/// the environment.
pub fn az_cli_script(topology: &Topology) -> String {
    let mut lines = vec![
        "#!/usr/bin/env bash".to_string(),
        format!(
            "# Service Bus entities of servicebus.config.json (namespace {}), for az servicebus.",
            topology.namespace.name
        ),
        "# Needs a Standard or Premium namespace (topics). Set RESOURCE_GROUP and NAMESPACE."
            .into(),
        "set -euo pipefail".into(),
        ": \"${RESOURCE_GROUP:?set RESOURCE_GROUP}\" \"${NAMESPACE:?set NAMESPACE}\"".into(),
    ];
    let scope = "--resource-group \"$RESOURCE_GROUP\" --namespace-name \"$NAMESPACE\"";
    // Queues without forwarding first, so that forwarding targets exist.
    let mut queues: Vec<_> = topology.namespace.queues.iter().collect();
    queues.sort_by_key(|q| {
        q.properties
            .forward_to
            .as_deref()
            .is_some_and(|f| !f.is_empty())
    });
    for queue in queues {
        lines.push(format!(
            "az servicebus queue create {scope} --name {}{}",
            quote(&queue.name),
            entity_options(&queue.properties, true)
        ));
    }
    for topic in &topology.namespace.topics {
        lines.push(format!(
            "az servicebus topic create {scope} --name {}{}",
            quote(&topic.name),
            topic_options(&topic.properties)
        ));
        for sub in &topic.subscriptions {
            lines.push(format!(
                "az servicebus topic subscription create {scope} --topic-name {} --name {}{}",
                quote(&topic.name),
                quote(&sub.name),
                entity_options(&sub.properties, false)
            ));
            if sub.rules.is_empty() {
                continue;
            }
            for rule in &sub.rules {
                lines.push(format!(
                    "az servicebus topic subscription rule create {scope} --topic-name {} --subscription-name {} --name {}{}",
                    quote(&topic.name),
                    quote(&sub.name),
                    quote(&rule.name),
                    rule_options(rule)
                ));
            }
            if !sub.rules.iter().any(|r| r.name == "$Default") {
                lines.push(format!(
                    "az servicebus topic subscription rule delete {scope} --topic-name {} --subscription-name {} --name '$Default'",
                    quote(&topic.name),
                    quote(&sub.name)
                ));
            }
        }
    }
    lines.join("\n") + "\n"
}

fn quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn flag(out: &mut String, name: &str, value: impl std::fmt::Display) {
    out.push_str(&format!(" {name} {}", quote(&value.to_string())));
}

/// Options of a queue (`queue`) or subscription.
fn entity_options(p: &EntityProperties, queue: bool) -> String {
    let mut out = String::new();
    if let Some(v) = p.max_delivery_count {
        flag(&mut out, "--max-delivery-count", v);
    }
    if let Some(v) = &p.lock_duration {
        flag(&mut out, "--lock-duration", v);
    }
    if let Some(v) = &p.default_message_time_to_live {
        flag(&mut out, "--default-message-time-to-live", v);
    }
    if let Some(v) = p.dead_lettering_on_message_expiration {
        flag(&mut out, "--enable-dead-lettering-on-message-expiration", v);
    }
    if let Some(v) = p.requires_session {
        flag(&mut out, "--enable-session", v);
    }
    if queue {
        duplicate_detection(&mut out, p);
    }
    if let Some(v) = p.forward_to.as_deref().filter(|v| !v.is_empty()) {
        flag(&mut out, "--forward-to", v);
    }
    if let Some(v) = p
        .forward_dead_lettered_messages_to
        .as_deref()
        .filter(|v| !v.is_empty())
    {
        flag(&mut out, "--forward-dead-lettered-messages-to", v);
    }
    out
}

fn topic_options(p: &EntityProperties) -> String {
    let mut out = String::new();
    if let Some(v) = &p.default_message_time_to_live {
        flag(&mut out, "--default-message-time-to-live", v);
    }
    duplicate_detection(&mut out, p);
    out
}

/// Duplicate detection and its window (the window only where detection is on).
fn duplicate_detection(out: &mut String, p: &EntityProperties) {
    if let Some(v) = p.requires_duplicate_detection {
        flag(out, "--enable-duplicate-detection", v);
    }
    if let Some(v) = p
        .duplicate_detection_history_time_window
        .as_deref()
        .filter(|_| p.requires_duplicate_detection == Some(true))
    {
        flag(out, "--duplicate-detection-history-time-window", v);
    }
}

fn rule_options(rule: &Rule) -> String {
    let mut out = String::new();
    let props = &rule.properties;
    if props.filter_type.eq_ignore_ascii_case("Correlation") {
        flag(&mut out, "--filter-type", "CorrelationFilter");
        if let Some(Value::Object(filter)) = &props.correlation_filter {
            for (field, option) in CORRELATION_FIELDS {
                if let Some(v) = filter.get(field).and_then(Value::as_str) {
                    flag(&mut out, option, v);
                }
            }
            if let Some(Value::Object(user)) = filter.get("Properties") {
                let pairs: Vec<String> = user
                    .iter()
                    .map(|(k, v)| {
                        let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                        quote(&format!("{k}={v}"))
                    })
                    .collect();
                if !pairs.is_empty() {
                    out.push_str(&format!(
                        " --correlation-filter-property {}",
                        pairs.join(" ")
                    ));
                }
            }
        }
    } else {
        flag(&mut out, "--filter-type", "SqlFilter");
        let expression = props
            .sql_filter
            .as_ref()
            .and_then(|f| f.get("SqlExpression"))
            .and_then(Value::as_str)
            .unwrap_or("1=1");
        flag(&mut out, "--filter-sql-expression", expression);
    }
    if let Some(action) = props
        .action
        .as_ref()
        .and_then(|a| a.get("SqlExpression"))
        .and_then(Value::as_str)
    {
        flag(&mut out, "--action-sql-expression", action);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_shell_words_intact() {
        assert_eq!(quote("ai-tasks"), "ai-tasks");
        assert_eq!(quote("$Default"), "'$Default'");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}
