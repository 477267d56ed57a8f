//! "Retry later": abandon with delay, which a custom handler cannot ask the host for. The
//! function sends a scheduled copy of its message (same body, same correlation id, its retry
//! counts in application properties, a new `MessageId` so duplicate detection keeps it) and
//! completes the original. A retry later never burns a delivery attempt.

use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value};

use crate::ai::TokenUsage;
use docflow_custom_handler::protocol::ServiceBusMessage;
use docflow_servicebus::Message;

/// Application property: scheduled retries so far (all causes).
pub const ATTEMPT_PROPERTY: &str = "x-docflow-retries";
/// Application property: retries caused by rate limits.
pub const RATE_LIMITED_PROPERTY: &str = "x-docflow-rate-limited";
/// Application property: retries caused by transient failures.
pub const TRANSIENT_PROPERTY: &str = "x-docflow-transient-failures";
/// Application property: the `MessageId` the counts were written for. A copy made by anyone
/// else (`docflow dlq resubmit` gives a new id) starts afresh.
pub const RETRY_OF_PROPERTY: &str = "x-docflow-retry-of";
/// Application properties: tokens spent by the failed calls before this retry.
pub const FAILED_INPUT_TOKENS_PROPERTY: &str = "x-docflow-failed-input-tokens";
/// See [`FAILED_INPUT_TOKENS_PROPERTY`].
pub const FAILED_OUTPUT_TOKENS_PROPERTY: &str = "x-docflow-failed-output-tokens";

/// The retry counts a message carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryCounts {
    /// Scheduled retries so far.
    pub retries: u32,
    /// Of which for rate limits.
    pub rate_limited: u32,
    /// Of which for transient failures.
    pub transient: u32,
    /// Tokens the failed calls spent so far.
    pub failed_usage: TokenUsage,
}

impl RetryCounts {
    /// Reads the counts from a received message's application properties.
    /// Counts written for another message id (a resubmitted copy) are not this message's.
    pub fn of(message: &ServiceBusMessage) -> Self {
        let props = &message.properties.application_properties;
        let owner = property(props, RETRY_OF_PROPERTY).and_then(Value::as_str);
        if owner.is_none() || owner != message.properties.message_id.as_deref() {
            return Self::default();
        }
        Self {
            retries: count(props, ATTEMPT_PROPERTY),
            rate_limited: count(props, RATE_LIMITED_PROPERTY),
            transient: count(props, TRANSIENT_PROPERTY),
            failed_usage: TokenUsage::new(
                u64::from(count(props, FAILED_INPUT_TOKENS_PROPERTY)),
                u64::from(count(props, FAILED_OUTPUT_TOKENS_PROPERTY)),
            ),
        }
    }

    /// Attempts so far, counting this delivery: deliveries plus scheduled retries.
    pub fn attempts(&self, message: &ServiceBusMessage) -> u32 {
        self.retries + message.properties.delivery_count.unwrap_or(1).max(1)
    }
}

fn property<'a>(props: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    props
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

fn count(props: &Map<String, Value>, name: &str) -> u32 {
    match property(props, name) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0).min(u64::from(u32::MAX)) as u32,
        Some(Value::String(s)) => s.trim().trim_matches('"').parse().unwrap_or(0),
        _ => 0,
    }
}

/// The longest a rate-limited message is put off in one go, whatever the provider asked.
pub const MAX_RATE_LIMIT_WAIT: Duration = crate::ai::MAX_RETRY_AFTER;

/// The caps and pacing of retries later.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries for transient failures before giving up.
    pub max_transient: u32,
    /// Retries for rate limits before giving up.
    pub max_rate_limited: u32,
    /// First backoff of a transient failure; doubled per failure.
    pub base: Duration,
    /// Longest backoff.
    pub cap: Duration,
}

/// What to do about a failure worth retrying.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryPlan {
    /// Send a copy with these counts, due after `delay`.
    Later {
        /// The copy's counts.
        counts: RetryCounts,
        /// When it is due.
        delay: Duration,
    },
    /// The cap is reached.
    Exhausted {
        /// The cap.
        cap: u32,
    },
}

impl RetryPolicy {
    /// The next step after a failure: `rate_limit` is the provider's requested wait (a rate
    /// limit; honoured, plus up to a fifth more so that waiting tasks do not all return at
    /// once), `None` a transient failure (exponential backoff with jitter). `usage` is what
    /// the failed call spent.
    pub fn plan(
        &self,
        mut counts: RetryCounts,
        rate_limit: Option<Duration>,
        usage: TokenUsage,
    ) -> RetryPlan {
        counts.retries += 1;
        counts.failed_usage = counts.failed_usage.plus(usage);
        let (count, cap, delay) = match rate_limit {
            Some(wait) => {
                counts.rate_limited += 1;
                let wait = wait.clamp(Duration::from_millis(100), MAX_RATE_LIMIT_WAIT);
                (
                    counts.rate_limited,
                    self.max_rate_limited,
                    wait + wait.mul_f64(0.2 * jitter()),
                )
            }
            None => {
                counts.transient += 1;
                let delay = backoff(self.base, self.cap, counts.transient, jitter());
                (counts.transient, self.max_transient, delay)
            }
        };
        if count > cap {
            RetryPlan::Exhausted { cap }
        } else {
            RetryPlan::Later { counts, delay }
        }
    }
}

/// Exponential backoff with jitter: `base · 2^(n-1)`, capped, then drawn from its upper half.
pub fn backoff(base: Duration, cap: Duration, failures: u32, jitter: f64) -> Duration {
    let exp = base.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let capped = exp.min(cap);
    capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// A random number in [0, 1) for jitter.
pub fn jitter() -> f64 {
    let bytes = uuid::Uuid::new_v4();
    f64::from(u16::from_le_bytes([
        bytes.as_bytes()[0],
        bytes.as_bytes()[1],
    ])) / 65536.0
}

/// The scheduled copy of `message` for `key` (the task id), due after `delay`.
pub fn scheduled_copy(
    message: &ServiceBusMessage,
    key: &str,
    correlation_id: Option<&str>,
    counts: RetryCounts,
    delay: Duration,
) -> Message {
    let id = format!("{key}:retry:{}", counts.retries);
    let mut copy = Message::new(message.body.clone())
        .with_message_id(&id)
        .with_content_type(
            message
                .properties
                .content_type
                .clone()
                .unwrap_or_else(|| "application/json".into()),
        )
        .with_scheduled_enqueue_time(
            chrono::Duration::from_std(delay)
                .ok()
                .and_then(|d| Utc::now().checked_add_signed(d))
                .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC),
        )
        .with_property(ATTEMPT_PROPERTY, i64::from(counts.retries))
        .with_property(RATE_LIMITED_PROPERTY, i64::from(counts.rate_limited))
        .with_property(TRANSIENT_PROPERTY, i64::from(counts.transient))
        .with_property(
            FAILED_INPUT_TOKENS_PROPERTY,
            counts.failed_usage.input_tokens.min(i64::MAX as u64) as i64,
        )
        .with_property(
            FAILED_OUTPUT_TOKENS_PROPERTY,
            counts.failed_usage.output_tokens.min(i64::MAX as u64) as i64,
        )
        .with_property(RETRY_OF_PROPERTY, id.as_str());
    if let Some(id) = correlation_id.or(message.properties.correlation_id.as_deref()) {
        copy = copy.with_correlation_id(id);
    }
    if let Some(session) = &message.properties.session_id {
        copy = copy.with_session_id(session);
    }
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_secs(2);
        let cap = Duration::from_secs(60);
        assert_eq!(backoff(base, cap, 1, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(base, cap, 3, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(base, cap, 3, 0.0), Duration::from_secs(4));
        assert_eq!(backoff(base, cap, 40, 1.0), cap);
    }

    #[test]
    fn plans_count_each_cause_against_its_cap() {
        let policy = RetryPolicy {
            max_transient: 1,
            max_rate_limited: 2,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(10),
        };
        let spent = TokenUsage::new(5, 1);
        let RetryPlan::Later { counts, delay } = policy.plan(RetryCounts::default(), None, spent)
        else {
            panic!()
        };
        assert_eq!(
            (
                counts.retries,
                counts.transient,
                counts.failed_usage.total_tokens
            ),
            (1, 1, 6)
        );
        assert!(delay <= Duration::from_secs(1));
        assert_eq!(
            policy.plan(counts, None, spent),
            RetryPlan::Exhausted { cap: 1 }
        );
        let RetryPlan::Later { delay, .. } =
            policy.plan(counts, Some(Duration::from_secs(2)), TokenUsage::default())
        else {
            panic!()
        };
        assert!(delay >= Duration::from_secs(2) && delay <= Duration::from_millis(2400));
    }

    #[test]
    fn counts_are_read_from_properties() {
        let mut message = ServiceBusMessage {
            body: b"{}".to_vec(),
            properties: Default::default(),
        };
        message.properties.delivery_count = Some(2);
        message.properties.message_id = Some("d:summarize:retry:3".into());
        message
            .properties
            .application_properties
            .insert(RETRY_OF_PROPERTY.into(), Value::from("d:summarize:retry:3"));
        message
            .properties
            .application_properties
            .insert("X-Docflow-Retries".into(), Value::from(3));
        message
            .properties
            .application_properties
            .insert(RATE_LIMITED_PROPERTY.into(), Value::from("2"));
        let counts = RetryCounts::of(&message);
        assert_eq!(counts.retries, 3);
        assert_eq!(counts.rate_limited, 2);
        assert_eq!(counts.attempts(&message), 5);
        let copy = scheduled_copy(
            &message,
            "d:summarize",
            Some("c"),
            counts,
            Duration::from_secs(1),
        );
        assert_eq!(copy.message_id.as_deref(), Some("d:summarize:retry:3"));
        assert!(copy.scheduled_enqueue_time.unwrap() > Utc::now());
        // A resubmitted copy (another message id) starts afresh.
        message.properties.message_id = Some("resubmitted".into());
        assert_eq!(RetryCounts::of(&message), RetryCounts::default());
    }
}
