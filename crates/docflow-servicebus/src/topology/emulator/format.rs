//! The Service Bus emulator's `Config.json`, as its `Config-schema.json` describes it: every
//! property the converter writes is explicit, so the emulator's own defaults (three deliveries,
//! a 20-second duplicate window) never stand in for docflow's.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EmulatorConfig {
    /// The root object.
    pub user_config: EmulatorUserConfig,
}

/// `UserConfig`: the one namespace and the logging choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EmulatorUserConfig {
    /// Exactly one namespace, named [`super::NAMESPACE`].
    pub namespaces: Vec<EmulatorNamespace>,
    /// Where the emulator logs.
    pub logging: Logging,
}

/// `Logging`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logging {
    /// `File`, `Console`, `File,Console` or `Console,File`.
    #[serde(rename = "Type")]
    pub kind: String,
}

/// The namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EmulatorNamespace {
    /// Always [`super::NAMESPACE`].
    pub name: String,
    /// Queues.
    pub queues: Vec<EmulatorQueue>,
    /// Topics.
    pub topics: Vec<EmulatorTopic>,
}

/// A queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EmulatorQueue {
    /// Name.
    pub name: String,
    /// Properties.
    pub properties: QueueProperties,
}

/// A queue's properties, every one written out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QueueProperties {
    /// Dead-letter expired messages.
    pub dead_lettering_on_message_expiration: bool,
    /// ISO 8601 duration, `PT5M` to `PT1H`.
    pub default_message_time_to_live: String,
    /// ISO 8601 duration, `PT5S` to `PT5M`; written when duplicate detection is on or the
    /// topology sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_detection_history_time_window: Option<String>,
    /// Dead-letter forwarding target, or empty.
    pub forward_dead_lettered_messages_to: String,
    /// Forwarding target, or empty.
    pub forward_to: String,
    /// ISO 8601 duration, `PT5S` to `PT5M`.
    pub lock_duration: String,
    /// 1 to 10.
    pub max_delivery_count: u32,
    /// Duplicate detection.
    pub requires_duplicate_detection: bool,
    /// Sessions.
    pub requires_session: bool,
}

/// A topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EmulatorTopic {
    /// Name.
    pub name: String,
    /// Properties.
    pub properties: TopicProperties,
    /// One to fifty subscriptions.
    pub subscriptions: Vec<EmulatorSubscription>,
}

/// A topic's properties: the emulator knows no others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TopicProperties {
    /// ISO 8601 duration, `PT5M` to `PT1H`.
    pub default_message_time_to_live: String,
    /// ISO 8601 duration, `PT5S` to `PT5M` (as for queues).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_detection_history_time_window: Option<String>,
    /// Duplicate detection.
    pub requires_duplicate_detection: bool,
}

/// A subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EmulatorSubscription {
    /// Name.
    pub name: String,
    /// Properties.
    pub properties: SubscriptionProperties,
    /// Rules; none means the `$Default` rule, as in Service Bus.
    pub rules: Vec<EmulatorRule>,
}

/// A subscription's properties, every one written out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SubscriptionProperties {
    /// Dead-letter expired messages.
    pub dead_lettering_on_message_expiration: bool,
    /// ISO 8601 duration, `PT5M` to `PT1H`.
    pub default_message_time_to_live: String,
    /// ISO 8601 duration, `PT1M` to `PT5M`.
    pub lock_duration: String,
    /// 1 to 10.
    pub max_delivery_count: u32,
    /// Dead-letter forwarding target, or empty.
    pub forward_dead_lettered_messages_to: String,
    /// Forwarding target, or empty.
    pub forward_to: String,
    /// Sessions.
    pub requires_session: bool,
}

/// A rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EmulatorRule {
    /// Name.
    pub name: String,
    /// Filter and action.
    pub properties: EmulatorRuleProperties,
}

/// The two filter types the emulator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterType {
    /// A [`CorrelationFilter`].
    Correlation,
    /// A SQL filter.
    Sql,
}

/// A rule's filter, of its [`FilterType`], and its optional SQL action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EmulatorRuleProperties {
    /// Which filter follows.
    pub filter_type: FilterType,
    /// For [`FilterType::Correlation`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_filter: Option<CorrelationFilter>,
    /// For [`FilterType::Sql`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_filter: Option<SqlExpression>,
    /// A SQL rule action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<SqlExpression>,
}

/// A correlation filter: at least one field is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CorrelationFilter {
    /// `ContentType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `CorrelationId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// `Label` (the SDKs' `Subject`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `MessageId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// `ReplyTo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// `ReplyToSessionId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_session_id: Option<String>,
    /// `SessionId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// `To`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// User properties (strings, numbers, booleans); never an empty object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Map<String, Value>>,
}

impl CorrelationFilter {
    /// The slot of a system field, by the name the emulator (or an SDK) gives it, any case.
    pub(super) fn slot(&mut self, field: &str) -> Option<&mut Option<String>> {
        Some(match field.to_ascii_lowercase().as_str() {
            "contenttype" => &mut self.content_type,
            "correlationid" => &mut self.correlation_id,
            "label" | "subject" => &mut self.label,
            "messageid" => &mut self.message_id,
            "replyto" => &mut self.reply_to,
            "replytosessionid" => &mut self.reply_to_session_id,
            "sessionid" => &mut self.session_id,
            "to" => &mut self.to,
            _ => return None,
        })
    }

    /// Whether no field is set (the emulator refuses such a filter).
    pub(super) fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `{"SqlExpression": "..."}`, for a SQL filter or action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SqlExpression {
    /// The expression (at most 1,024 characters).
    pub sql_expression: String,
}
