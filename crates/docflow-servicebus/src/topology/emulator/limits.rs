//! The Service Bus emulator's limits, each with where it is written down.
//!
//! Sources: `ServiceBus-Emulator/Schema/Config-schema.json` of Microsoft's emulator installer
//! repository (commit 40fb40f, June 2026; the schema file last changed in 7a41a39, March 2025),
//! vendored as `tests/fixtures/emulator-config-schema.json`; the "Usage quotas" table of the
//! emulator's overview page (learn.microsoft.com, `service-bus-messaging/overview-emulator`);
//! and, for what neither says, Service Bus's own quotas, which the emulator's page says it
//! follows ("Like the Service bus cloud service").

use std::time::Duration;

/// The only namespace name the emulator accepts (the schema's `enum`; the overview page: "You
/// can't rename the preset namespace").
pub const NAMESPACE: &str = "sbemulatorns";
/// Queues and topics together in the namespace (schema `maxItems` and description; quotas).
pub const MAX_ENTITIES: usize = 50;
/// Subscriptions of one topic (schema `maxItems`; quotas).
pub const MAX_SUBSCRIPTIONS_PER_TOPIC: usize = 50;
/// Rules of one subscription (schema `maxItems`).
pub const MAX_RULES_PER_SUBSCRIPTION: usize = 1000;
/// Correlation filters of one topic, over all its subscriptions (quotas).
pub const MAX_CORRELATION_FILTERS_PER_TOPIC: usize = 1000;
/// SQL filters of one topic, over all its subscriptions: the quotas table says 20 (without a
/// scope); the emulator's maintainers answered (installer issue 144) that the limit is per
/// topic, shared by its subscriptions. The lower, documented number is the one applied.
pub const MAX_SQL_FILTERS_PER_TOPIC: usize = 20;
/// Characters of a SQL filter condition or of a rule action (quotas).
pub const MAX_SQL_LENGTH: usize = 1024;
/// Statements (`SET`, `REMOVE`) of one rule action (quotas).
pub const MAX_ACTION_EXPRESSIONS: usize = 32;
/// Characters of a queue or topic name (Service Bus quotas: entity path).
pub const MAX_ENTITY_NAME: usize = 260;
/// Characters of a subscription or rule name (Service Bus quotas).
pub const MAX_CHILD_NAME: usize = 50;
/// `MaxDeliveryCount` bounds (schema `minimum`, `maximum`).
pub const MAX_DELIVERY_COUNT: (u32, u32) = (1, 10);
/// `Logging.Type` values (schema `enum`).
pub const LOGGING_TYPES: [&str; 4] = ["File", "Console", "File,Console", "Console,File"];

/// Inclusive bounds of a duration property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Shortest accepted.
    pub min: Duration,
    /// Longest accepted.
    pub max: Duration,
}

const fn bounds(min_secs: u64, max_secs: u64) -> Bounds {
    Bounds {
        min: Duration::from_secs(min_secs),
        max: Duration::from_secs(max_secs),
    }
}

/// `DefaultMessageTimeToLive`: PT5M to PT1H (schema description; quotas: one hour).
pub const TIME_TO_LIVE: Bounds = bounds(300, 3600);
/// `DuplicateDetectionHistoryTimeWindow`: PT5S to PT5M (schema description).
pub const DUPLICATE_WINDOW: Bounds = bounds(5, 300);
/// A queue's `LockDuration`: PT5S to PT5M (schema description).
pub const QUEUE_LOCK: Bounds = bounds(5, 300);
/// A subscription's `LockDuration`: PT1M to PT5M (schema description).
pub const SUBSCRIPTION_LOCK: Bounds = bounds(60, 300);

/// Service Bus's defaults, which docflow's broker applies to unset properties and which the
/// output therefore writes out (the emulator's own defaults differ).
pub mod defaults {
    use std::time::Duration;

    /// `LockDuration`.
    pub const LOCK_DURATION: Duration = Duration::from_secs(60);
    /// `DuplicateDetectionHistoryTimeWindow`.
    pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
    /// `MaxDeliveryCount`.
    pub const MAX_DELIVERY_COUNT: u32 = crate::topology::DEFAULT_MAX_DELIVERY_COUNT;
}

/// A whole number of seconds as the schema's ISO 8601 pattern accepts it: `PT1H`, `PT1M30S`.
pub fn format_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::from("PT");
    for (n, unit) in [(h, 'H'), (m, 'M'), (s, 'S')] {
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
        }
    }
    if secs == 0 {
        out.push_str("0S");
    }
    out
}

/// Why a name does not fit the schema's pattern
/// (`^[A-Za-z0-9]$|^[A-Za-z0-9][\w-\.\/]*[A-Za-z0-9]$`) or length, if it does not.
pub fn name_problem(name: &str, max_len: usize) -> Option<String> {
    let chars: Vec<char> = name.chars().collect();
    let inner_ok = |c: &char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/');
    if chars.is_empty() {
        Some("must not be empty".into())
    } else if chars.len() > max_len {
        Some(format!("is longer than {max_len} characters"))
    } else if !chars[0].is_ascii_alphanumeric() || !chars[chars.len() - 1].is_ascii_alphanumeric() {
        Some("must start and end with a letter or digit".into())
    } else if !chars.iter().all(inner_ok) {
        Some("may hold only letters, digits, '_', '-', '.' and '/'".into())
    } else {
        None
    }
}

/// The statements of a rule action (`SET a = 1; REMOVE b`): `;`-separated, outside quoted
/// strings and bracketed names.
pub fn action_expressions(text: &str) -> usize {
    let mut count = 0;
    let mut current = false;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match (quote, c) {
            (Some(q), c) if (q == '\'' && c == '\'') || (q == '[' && c == ']') => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '[') => {
                quote = Some(c);
                current = true;
            }
            (None, ';') => {
                count += usize::from(current);
                current = false;
            }
            (None, c) if !c.is_whitespace() => current = true,
            (None, _) => {}
        }
    }
    count + usize::from(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fit_the_schema_pattern() {
        assert_eq!(format_duration(3600), "PT1H");
        assert_eq!(format_duration(300), "PT5M");
        assert_eq!(format_duration(90), "PT1M30S");
        assert_eq!(format_duration(3661), "PT1H1M1S");
        assert_eq!(format_duration(5), "PT5S");
        assert_eq!(format_duration(0), "PT0S");
    }

    #[test]
    fn names_follow_the_schema_pattern() {
        assert_eq!(name_problem("ai-tasks", 50), None);
        assert_eq!(name_problem("a", 50), None);
        assert_eq!(name_problem("orders/eu.v2_x", 260), None);
        for bad in ["", "-a", "a-", "$Default", "a b", "a\u{e9}b"] {
            assert!(name_problem(bad, 50).is_some(), "{bad:?}");
        }
        assert!(name_problem(&"a".repeat(51), 50).is_some());
        assert_eq!(name_problem(&"a".repeat(51), 260), None);
    }

    #[test]
    fn action_statements_are_counted_outside_strings() {
        assert_eq!(action_expressions("SET a = 1"), 1);
        assert_eq!(action_expressions("SET a = 1; REMOVE b;"), 2);
        assert_eq!(action_expressions("SET a = 'x;y'; SET [c;d] = 2"), 2);
        assert_eq!(action_expressions("SET a = 'it''s'; REMOVE b"), 2);
        assert_eq!(action_expressions(" ; ;"), 0);
    }
}
