//! The broker's entities, built from `servicebus.config.json` (the emulator's Config.json) with
//! every property resolved to a value, and every problem reported with its exact JSON path.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::filter::{Action, Filter};
use docflow_servicebus::topology::{
    ConfigFile, EntityProperties, FormatError, Rule, Subscription, parse_iso8601_duration,
};

/// Service Bus's default lock duration.
pub const DEFAULT_LOCK_DURATION: Duration = Duration::from_secs(60);
/// Longest lock duration Service Bus allows.
pub const MAX_LOCK_DURATION: Duration = Duration::from_secs(300);
/// Shortest lock duration accepted (the SDKs' floor).
pub const MIN_LOCK_DURATION: Duration = Duration::from_secs(5);
/// Default duplicate-detection window (ARM's default).
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
pub use docflow_servicebus::topology::DEFAULT_MAX_DELIVERY_COUNT;

/// A topology file the broker refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid topology at {path}: {problem}")]
pub struct ConfigError {
    /// JSON path of the problem, e.g. `$.UserConfig.Namespaces[0].Queues[1].Properties.LockDuration`.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

/// Resolved properties of a queue, topic or subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct EntitySettings {
    /// Peek-lock duration.
    pub lock_duration: Duration,
    /// Deliveries before dead-lettering.
    pub max_delivery_count: u32,
    /// Cap on a message's time to live (`None`: unbounded).
    pub default_ttl: Option<Duration>,
    /// Dead-letter expired messages instead of dropping them.
    pub dead_letter_on_expiration: bool,
    /// Drop repeated `MessageId`s within the window.
    pub requires_duplicate_detection: bool,
    /// The duplicate-detection window.
    pub duplicate_window: Duration,
    /// Sessions required.
    pub requires_session: bool,
    /// Auto-forward target.
    pub forward_to: Option<String>,
    /// Dead-letter auto-forward target.
    pub forward_dead_lettered_to: Option<String>,
}

impl Default for EntitySettings {
    fn default() -> Self {
        Self {
            lock_duration: DEFAULT_LOCK_DURATION,
            max_delivery_count: DEFAULT_MAX_DELIVERY_COUNT,
            default_ttl: None,
            dead_letter_on_expiration: false,
            requires_duplicate_detection: false,
            duplicate_window: DEFAULT_DUPLICATE_WINDOW,
            requires_session: false,
            forward_to: None,
            forward_dead_lettered_to: None,
        }
    }
}

/// A subscription rule.
#[derive(Debug, Clone)]
pub struct RuleDef {
    /// Rule name (`RuleName` on copies made by rules with actions).
    pub name: String,
    /// The filter.
    pub filter: Filter,
    /// The action, if any.
    pub action: Option<Action>,
}

/// A subscription.
#[derive(Debug, Clone)]
pub struct SubscriptionDef {
    /// Name.
    pub name: String,
    /// Properties.
    pub settings: EntitySettings,
    /// Rules; an empty list matches nothing (the `$Default` rule is added when the file has none).
    pub rules: Vec<RuleDef>,
}

/// A topic.
#[derive(Debug, Clone)]
pub struct TopicDef {
    /// Name.
    pub name: String,
    /// Properties (TTL cap and duplicate detection apply).
    pub settings: EntitySettings,
    /// Subscriptions in file order.
    pub subscriptions: Vec<SubscriptionDef>,
}

/// A queue.
#[derive(Debug, Clone)]
pub struct QueueDef {
    /// Name.
    pub name: String,
    /// Properties.
    pub settings: EntitySettings,
}

/// Every entity of the namespace, looked up case-insensitively.
#[derive(Debug, Clone, Default)]
pub struct Entities {
    /// Namespace name.
    pub namespace: String,
    queues: BTreeMap<String, QueueDef>,
    topics: BTreeMap<String, TopicDef>,
}

/// What a path names.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A queue.
    Queue(&'a QueueDef),
    /// A topic.
    Topic(&'a TopicDef),
    /// A subscription of a topic.
    Subscription(&'a TopicDef, &'a SubscriptionDef),
}

impl Entities {
    /// Builds and validates entities from the file's JSON.
    pub fn from_json(root: &Value) -> Result<Self, ConfigError> {
        let file = ConfigFile::from_value(root).map_err(format_error)?;
        Self::from_config(&file)
    }

    /// Parses file contents (the one typed parse of [`ConfigFile`]) and validates them.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let file = ConfigFile::parse(text).map_err(format_error)?;
        Self::from_config(&file)
    }

    /// Validates a parsed file: names, durations and limits, rules, forwarding targets.
    pub fn from_config(file: &ConfigFile) -> Result<Self, ConfigError> {
        let [namespace] = file.user_config.namespaces.as_slice() else {
            return Err(err(
                "$.UserConfig.Namespaces",
                "must hold exactly one namespace",
            ));
        };
        let base = "$.UserConfig.Namespaces[0]";
        let mut entities = Entities {
            namespace: non_empty(&namespace.name, &format!("{base}.Name"))?,
            ..Self::default()
        };
        let mut forwards: Vec<(String, String)> = Vec::new();
        for (i, queue) in namespace.queues.iter().enumerate() {
            let path = format!("{base}.Queues[{i}]");
            let name = entity_name(&queue.name, &format!("{path}.Name"))?;
            let settings = settings(
                &queue.properties,
                &format!("{path}.Properties"),
                &mut forwards,
            )?;
            entities.check_new(&name, &path)?;
            entities
                .queues
                .insert(name.to_lowercase(), QueueDef { name, settings });
        }
        for (i, topic) in namespace.topics.iter().enumerate() {
            let path = format!("{base}.Topics[{i}]");
            let name = entity_name(&topic.name, &format!("{path}.Name"))?;
            let settings = settings(
                &topic.properties,
                &format!("{path}.Properties"),
                &mut forwards,
            )?;
            let mut subscriptions: Vec<SubscriptionDef> = Vec::new();
            for (j, sub) in topic.subscriptions.iter().enumerate() {
                let sub_path = format!("{path}.Subscriptions[{j}]");
                let def = subscription(sub, &sub_path, &mut forwards)?;
                if subscriptions
                    .iter()
                    .any(|s| s.name.eq_ignore_ascii_case(&def.name))
                {
                    return Err(err(
                        &format!("{sub_path}.Name"),
                        &format!("{:?} is declared twice", def.name),
                    ));
                }
                subscriptions.push(def);
            }
            entities.check_new(&name, &path)?;
            entities.topics.insert(
                name.to_lowercase(),
                TopicDef {
                    name,
                    settings,
                    subscriptions,
                },
            );
        }
        for (path, target) in forwards {
            let exists = entities.queues.contains_key(&target.to_lowercase())
                || entities.topics.contains_key(&target.to_lowercase());
            if !exists {
                return Err(err(
                    &path,
                    &format!("the auto forwarding destination entity {target:?} does not exist"),
                ));
            }
        }
        Ok(entities)
    }

    /// Queues and topics share one name space.
    fn check_new(&self, name: &str, path: &str) -> Result<(), ConfigError> {
        let key = name.to_lowercase();
        if self.queues.contains_key(&key) || self.topics.contains_key(&key) {
            return Err(err(
                &format!("{path}.Name"),
                &format!("{name:?} is declared twice"),
            ));
        }
        Ok(())
    }

    /// Resolves an entity path: `queue`, `topic`, or `topic/subscriptions/sub` (any case).
    pub fn resolve(&self, path: &str) -> Option<Target<'_>> {
        let lower = path.trim_matches('/').to_lowercase();
        if let Some(q) = self.queues.get(&lower) {
            return Some(Target::Queue(q));
        }
        if let Some(t) = self.topics.get(&lower) {
            return Some(Target::Topic(t));
        }
        let (topic, sub) = lower.split_once("/subscriptions/")?;
        let t = self.topics.get(topic)?;
        let s = t
            .subscriptions
            .iter()
            .find(|s| s.name.eq_ignore_ascii_case(sub))?;
        Some(Target::Subscription(t, s))
    }

    /// All queues.
    pub fn queues(&self) -> impl Iterator<Item = &QueueDef> {
        self.queues.values()
    }

    /// All topics.
    pub fn topics(&self) -> impl Iterator<Item = &TopicDef> {
        self.topics.values()
    }

    /// The canonical key of every receivable entity (queues and subscriptions).
    pub fn receivable_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.queues.keys().cloned().collect();
        for t in self.topics.values() {
            for s in &t.subscriptions {
                keys.push(subscription_key(&t.name, &s.name));
            }
        }
        keys
    }
}

/// The canonical (lower-case) key of a subscription.
pub fn subscription_key(topic: &str, subscription: &str) -> String {
    format!(
        "{}/subscriptions/{}",
        topic.to_lowercase(),
        subscription.to_lowercase()
    )
}

impl Target<'_> {
    /// The canonical key used in the store.
    pub fn key(&self) -> String {
        match self {
            Target::Queue(q) => q.name.to_lowercase(),
            Target::Topic(t) => t.name.to_lowercase(),
            Target::Subscription(t, s) => subscription_key(&t.name, &s.name),
        }
    }

    /// The key of the counter the entity's sequence numbers come from: a subscription's are
    /// its topic's, since Service Bus numbers a topic's messages once, at the topic.
    pub fn counter_key(&self) -> String {
        match self {
            Target::Subscription(t, _) => Target::Topic(t).key(),
            other => other.key(),
        }
    }

    /// The entity's display path.
    pub fn display(&self) -> String {
        match self {
            Target::Queue(q) => q.name.clone(),
            Target::Topic(t) => t.name.clone(),
            Target::Subscription(t, s) => format!("{}/subscriptions/{}", t.name, s.name),
        }
    }

    /// Its settings.
    pub fn settings(&self) -> &EntitySettings {
        match self {
            Target::Queue(q) => &q.settings,
            Target::Topic(t) => &t.settings,
            Target::Subscription(_, s) => &s.settings,
        }
    }
}

/// A parse failure, with the JSON path (or the line and column of a syntax error).
fn format_error(e: FormatError) -> ConfigError {
    ConfigError {
        path: if e.syntax {
            format!("$ (line {}, column {})", e.line, e.column)
        } else {
            e.field
        },
        problem: e.message,
    }
}

fn subscription(
    sub: &Subscription,
    path: &str,
    forwards: &mut Vec<(String, String)>,
) -> Result<SubscriptionDef, ConfigError> {
    let name = entity_name(&sub.name, &format!("{path}.Name"))?;
    let settings = settings(&sub.properties, &format!("{path}.Properties"), forwards)?;
    let mut rules = sub
        .rules
        .iter()
        .enumerate()
        .map(|(k, rule)| rule_def(rule, &format!("{path}.Rules[{k}]")))
        .collect::<Result<Vec<_>, _>>()?;
    if rules.is_empty() {
        rules.push(RuleDef {
            name: "$Default".into(),
            filter: Filter::True,
            action: None,
        });
    }
    Ok(SubscriptionDef {
        name,
        settings,
        rules,
    })
}

fn rule_def(rule: &Rule, path: &str) -> Result<RuleDef, ConfigError> {
    let name = non_empty(&rule.name, &format!("{path}.Name"))?;
    let props_path = format!("{path}.Properties");
    let props = &rule.properties;
    let filter = match props.filter_type.to_ascii_lowercase().as_str() {
        "correlation" => {
            let p = format!("{props_path}.CorrelationFilter");
            let cf = props
                .correlation_filter
                .as_ref()
                .ok_or_else(|| err(&p, "is required for FilterType Correlation"))?
                .as_object()
                .ok_or_else(|| err(&p, "must be an object"))?;
            Filter::correlation(cf)
                .map_err(|(field, problem)| err(&format!("{p}.{field}"), &problem))?
        }
        "sql" => {
            let p = format!("{props_path}.SqlFilter.SqlExpression");
            let text = props
                .sql_filter
                .as_ref()
                .and_then(|f| f.get("SqlExpression"))
                .ok_or_else(|| err(&p, "is required for FilterType Sql"))?
                .as_str()
                .ok_or_else(|| err(&p, "must be a string"))?;
            Filter::sql(non_empty(text, &p)?.as_str()).map_err(|e| err(&p, &e))?
        }
        "true" | "truefilter" => Filter::True,
        "false" | "falsefilter" => Filter::False,
        other => {
            return Err(err(
                &format!("{props_path}.FilterType"),
                &format!("{other:?} is not Correlation or Sql"),
            ));
        }
    };
    let action = match &props.action {
        None | Some(Value::Null) => None,
        Some(action) => {
            let p = format!("{props_path}.Action.SqlExpression");
            let text = match action {
                Value::String(s) => s.as_str(),
                other => other
                    .get("SqlExpression")
                    .and_then(Value::as_str)
                    .ok_or_else(|| err(&p, "must be a string"))?,
            };
            if text.trim().is_empty() {
                None
            } else {
                Some(Action::parse(text).map_err(|e| err(&p, &e))?)
            }
        }
    };
    Ok(RuleDef {
        name,
        filter,
        action,
    })
}

fn settings(
    props: &EntityProperties,
    path: &str,
    forwards: &mut Vec<(String, String)>,
) -> Result<EntitySettings, ConfigError> {
    let mut s = EntitySettings::default();
    let duration = |key: &str, value: &Option<String>| -> Result<Option<Duration>, ConfigError> {
        match value {
            None => Ok(None),
            Some(text) => parse_iso8601_duration(text).map(Some).ok_or_else(|| {
                err(
                    &format!("{path}.{key}"),
                    &format!("{text:?} is not an ISO 8601 duration such as PT1M"),
                )
            }),
        }
    };
    if let Some(lock) = duration("LockDuration", &props.lock_duration)? {
        if !(MIN_LOCK_DURATION..=MAX_LOCK_DURATION).contains(&lock) {
            return Err(err(
                &format!("{path}.LockDuration"),
                "must be from PT5S to PT5M",
            ));
        }
        s.lock_duration = lock;
    }
    if let Some(count) = props.max_delivery_count {
        if count == 0 {
            return Err(err(
                &format!("{path}.MaxDeliveryCount"),
                "must be a whole number of at least 1",
            ));
        }
        s.max_delivery_count = count;
    }
    s.default_ttl = duration(
        "DefaultMessageTimeToLive",
        &props.default_message_time_to_live,
    )?
    .filter(|d| *d < Duration::from_secs(10_675_199 * 86_400));
    if s.default_ttl.is_some_and(|d| d.is_zero()) {
        return Err(err(
            &format!("{path}.DefaultMessageTimeToLive"),
            "must be positive",
        ));
    }
    s.dead_letter_on_expiration = props.dead_lettering_on_message_expiration.unwrap_or(false);
    s.requires_duplicate_detection = props.requires_duplicate_detection.unwrap_or(false);
    if let Some(window) = duration(
        "DuplicateDetectionHistoryTimeWindow",
        &props.duplicate_detection_history_time_window,
    )? {
        if !(Duration::from_secs(20)..=Duration::from_secs(7 * 86_400)).contains(&window) {
            return Err(err(
                &format!("{path}.DuplicateDetectionHistoryTimeWindow"),
                "must be from PT20S to P7D",
            ));
        }
        s.duplicate_window = window;
    }
    s.requires_session = props.requires_session.unwrap_or(false);
    for (key, value, slot) in [
        ("ForwardTo", &props.forward_to, &mut s.forward_to),
        (
            "ForwardDeadLetteredMessagesTo",
            &props.forward_dead_lettered_messages_to,
            &mut s.forward_dead_lettered_to,
        ),
    ] {
        if let Some(target) = value.as_ref().filter(|t| !t.trim().is_empty()) {
            forwards.push((format!("{path}.{key}"), target.clone()));
            *slot = Some(target.clone());
        }
    }
    if s.requires_session && s.forward_to.is_some() {
        return Err(err(
            &format!("{path}.ForwardTo"),
            "auto-forwarding is not supported from session-enabled entities",
        ));
    }
    Ok(s)
}

fn entity_name(name: &str, path: &str) -> Result<String, ConfigError> {
    let name = non_empty(name, path)?;
    let valid = !name.starts_with('$')
        && name.len() <= 260
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name.to_lowercase().contains("/subscriptions/");
    if valid {
        Ok(name)
    } else {
        Err(err(path, &format!("{name:?} is not a valid entity name")))
    }
}

fn non_empty(text: &str, path: &str) -> Result<String, ConfigError> {
    if text.trim().is_empty() {
        Err(err(path, "must not be empty"))
    } else {
        Ok(text.to_string())
    }
}

fn err(path: &str, problem: &str) -> ConfigError {
    ConfigError {
        path: path.to_string(),
        problem: problem.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(queue_props: Value) -> Value {
        json!({"UserConfig": {"Namespaces": [{"Name": "ns", "Queues": [{"Name": "a", "Properties": {}}, {"Name": "b", "Properties": queue_props}], "Topics": []}]}})
    }

    #[test]
    fn the_project_topology_loads() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../servicebus.config.json"
        ))
        .unwrap();
        let entities = Entities::parse(&text).unwrap();
        let Some(Target::Queue(q)) = entities.resolve("AI-TASKS") else {
            panic!()
        };
        assert_eq!(q.settings.max_delivery_count, 5);
        assert!(matches!(
            entities.resolve("documents/subscriptions/analyze"),
            Some(Target::Subscription(..))
        ));
    }

    #[test]
    fn problems_name_their_json_path() {
        let cases = [
            (
                json!({"LockDuration": "PT10M"}),
                "$.UserConfig.Namespaces[0].Queues[1].Properties.LockDuration",
            ),
            (
                json!({"LockDuration": "soon"}),
                "$.UserConfig.Namespaces[0].Queues[1].Properties.LockDuration",
            ),
            (
                json!({"MaxDeliveryCount": 0}),
                "$.UserConfig.Namespaces[0].Queues[1].Properties.MaxDeliveryCount",
            ),
            (
                json!({"RequiresSession": "yes"}),
                "$.UserConfig.Namespaces[0].Queues[1].Properties.RequiresSession",
            ),
            (
                json!({"ForwardTo": "nowhere"}),
                "$.UserConfig.Namespaces[0].Queues[1].Properties.ForwardTo",
            ),
        ];
        for (props, path) in cases {
            let e = Entities::from_json(&config(props.clone())).unwrap_err();
            assert_eq!(e.path, path, "{props}: {e}");
        }
        let bad_rule = json!({"UserConfig": {"Namespaces": [{"Name": "ns", "Topics": [{"Name": "t", "Subscriptions": [
            {"Name": "s", "Rules": [{"Name": "r", "Properties": {"FilterType": "Sql", "SqlFilter": {"SqlExpression": "a = = 1"}}}]}]}]}]}});
        let e = Entities::from_json(&bad_rule).unwrap_err();
        assert_eq!(
            e.path,
            "$.UserConfig.Namespaces[0].Topics[0].Subscriptions[0].Rules[0].Properties.SqlFilter.SqlExpression"
        );
        let e = Entities::parse("{\"UserConfig\": ").unwrap_err();
        assert!(e.path.starts_with("$ (line 1"), "{e}");
    }
}
