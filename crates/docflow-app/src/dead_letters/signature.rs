//! The normalised error signature of a dead letter, and the groups of a dead-letter queue:
//! messages that failed the same way (same reason, same description once the ids, numbers and
//! quoted values that differ from message to message are masked) form one group, which can be
//! resubmitted or discarded at once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Joined, description_of, reason_of};
use docflow_servicebus::message::ReceivedMessage;

/// Longest signature kept: enough to tell failures apart, short enough for a table.
const MAX_SIGNATURE_CHARS: usize = 160;

/// `description` with what varies between messages masked: UUIDs and long hex ids become
/// `<id>`, numbers `<n>`, quoted values `"…"`; runs of spaces collapse. `task 3f…:classify
/// failed after 5 attempts at 12:03` and `task 9a…:classify failed after 4 attempts at 12:07`
/// share one signature.
pub fn signature(description: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = description.chars().collect();
    let mut i = 0;
    while i < chars.len() && out.chars().count() < MAX_SIGNATURE_CHARS {
        let c = chars[i];
        let opens_quote = c == '"' || (c == '\'' && (i == 0 || !chars[i - 1].is_alphanumeric()));
        if opens_quote && let Some(end) = chars[i + 1..].iter().position(|&d| d == c) {
            out.push(c);
            out.push('…');
            out.push(c);
            i += end + 2;
            continue;
        }
        if c.is_ascii_alphanumeric() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '-') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push_str(&mask(&word));
            continue;
        }
        if c.is_whitespace() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    out.trim().to_string()
}

/// A word as it appears in a signature.
fn mask(word: &str) -> String {
    let hex = |s: &str| s.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let digits = word.chars().filter(char::is_ascii_digit).count();
    if word.len() >= 16 && hex(word) && digits > 0 {
        return "<id>".into();
    }
    if word.chars().all(|c| c.is_ascii_digit() || c == '-') && digits > 0 {
        return "<n>".into();
    }
    if digits > 0 && word.len() >= 8 && digits * 3 >= word.len() {
        // Mostly digits among letters: a generated id (`msg1234567`), not a word.
        return "<id>".into();
    }
    let mut out = String::new();
    let mut in_number = false;
    for c in word.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push_str("<n>");
            }
            in_number = true;
        } else {
            in_number = false;
            out.push(c);
        }
    }
    out
}

/// One group of a dead-letter queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// The queue or subscription.
    pub entity: String,
    /// The recorded reason, else Service Bus's.
    pub reason: String,
    /// The normalised description.
    pub signature: String,
    /// One description as it was, for the reader.
    pub example: String,
    /// Messages in the group.
    pub count: usize,
    /// The earliest enqueue time among them.
    pub first_seen: DateTime<Utc>,
    /// The latest.
    pub last_seen: DateTime<Utc>,
    /// Their sequence numbers, in order.
    pub sequence_numbers: Vec<i64>,
}

/// The groups of `messages` (dead letters of `entity`), the largest first, then the most
/// recent.
pub fn groups(entity: &str, messages: &[ReceivedMessage], joined: &Joined) -> Vec<Group> {
    let mut by_key: BTreeMap<(String, String), Group> = BTreeMap::new();
    for m in messages {
        let reason = reason_of(m, joined).to_string();
        let description = description_of(m, joined);
        let sig = signature(description);
        let at = m.enqueued_time;
        let group = by_key
            .entry((reason.clone(), sig.clone()))
            .or_insert_with(|| Group {
                entity: entity.to_string(),
                reason,
                signature: sig,
                example: description.to_string(),
                count: 0,
                first_seen: at,
                last_seen: at,
                sequence_numbers: Vec::new(),
            });
        group.count += 1;
        group.first_seen = group.first_seen.min(at);
        group.last_seen = group.last_seen.max(at);
        group.sequence_numbers.push(m.sequence_number);
    }
    let mut out: Vec<Group> = by_key.into_values().collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(b.last_seen.cmp(&a.last_seen))
            .then(a.reason.cmp(&b.reason))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::dead_letter;
    use super::*;

    #[test]
    fn ids_numbers_and_quoted_values_are_masked() {
        assert_eq!(
            signature(
                "task 9b0d6a0c3c2b4c5f8f0e7f9a1d2c3b4a:classify failed after 5 attempts (HTTP 503)"
            ),
            "task <id>:classify failed after <n> attempts (HTTP <n>)"
        );
        assert_eq!(
            signature("no document 4bf92f35-77b3-4da6-a3ce-929d0e0e4736 in   'state'"),
            "no document <id> in '…'"
        );
        assert_eq!(
            signature("missing field \"label\" at line 1 column 42"),
            "missing field \"…\" at line <n> column <n>"
        );
        assert_eq!(
            signature("gpt4o-mini answered v2"),
            "gpt<n>o-mini answered v<n>"
        );
        assert_eq!(signature("it doesn't parse"), "it doesn't parse");
        assert_eq!(
            signature("request msg1234567 timed out"),
            "request <id> timed out"
        );
        assert_eq!(
            signature("a failure at 2026-12-05T01:02:03Z"),
            signature("a failure at 2026-12-06T11:22:33Z")
        );
    }

    #[test]
    fn the_same_failure_groups_together_and_the_largest_group_comes_first() {
        let messages = vec![
            dead_letter(
                1,
                "a",
                "TaskPoison",
                "task 11111111111111111111111111111111:classify: missing field \"label\"",
            ),
            dead_letter(2, "b", "ContentNotFound", "blob documents/x.txt is gone"),
            dead_letter(
                3,
                "c",
                "TaskPoison",
                "task 22222222222222222222222222222222:classify: missing field \"label\"",
            ),
            dead_letter(4, "d", "TaskPoison", "model answered 12 words, not a label"),
        ];
        let groups = groups("ai-tasks", &messages, &Joined::new());
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].reason, "TaskPoison");
        assert_eq!(groups[0].count, 2);
        assert_eq!(groups[0].sequence_numbers, vec![1, 3]);
        assert_eq!(groups[0].first_seen, messages[0].enqueued_time);
        assert_eq!(groups[0].last_seen, messages[2].enqueued_time);
        assert_eq!(
            groups[0].signature,
            "task <id>:classify: missing field \"…\""
        );
        let selection = super::super::Selection::Group {
            reason: groups[0].reason.clone(),
            signature: groups[0].signature.clone(),
        };
        let taken: Vec<i64> = messages
            .iter()
            .filter(|m| selection.matches(m, &Joined::new()))
            .map(|m| m.sequence_number)
            .collect();
        assert_eq!(taken, vec![1, 3]);
    }
}
