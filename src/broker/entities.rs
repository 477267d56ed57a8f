//! The broker's entities, built from `servicebus.config.json` (the emulator's Config.json) with
//! every property resolved to a value, and every problem reported with its exact JSON path.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::filter::{Action, Filter};
use crate::topology::parse_iso8601_duration;

/// Service Bus's default lock duration.
pub const DEFAULT_LOCK_DURATION: Duration = Duration::from_secs(60);
/// Longest lock duration Service Bus allows.
pub const MAX_LOCK_DURATION: Duration = Duration::from_secs(300);
/// Shortest lock duration accepted (the SDKs' floor).
pub const MIN_LOCK_DURATION: Duration = Duration::from_secs(5);
/// Default duplicate-detection window (ARM's default).
pub const DEFAULT_DUPLICATE_WINDOW: Duration = Duration::from_secs(600);
/// Default `MaxDeliveryCount`.
pub const DEFAULT_MAX_DELIVERY_COUNT: u32 = 10;

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
        let user = object(root, "$")?
            .get("UserConfig")
            .ok_or_else(|| err("$.UserConfig", "is required"))?;
        let namespaces = array(
            object(user, "$.UserConfig")?
                .get("Namespaces")
                .ok_or_else(|| err("$.UserConfig.Namespaces", "is required"))?,
            "$.UserConfig.Namespaces",
        )?;
        let [namespace] = namespaces.as_slice() else {
            return Err(err(
                "$.UserConfig.Namespaces",
                "must hold exactly one namespace",
            ));
        };
        let base = "$.UserConfig.Namespaces[0]";
        let ns = object(namespace, base)?;
        let mut entities = Entities {
            namespace: string(ns.get("Name"), &format!("{base}.Name"))?,
            ..Self::default()
        };
        let mut forwards: Vec<(String, String)> = Vec::new();
        if let Some(queues) = ns.get("Queues") {
            for (i, queue) in array(queues, &format!("{base}.Queues"))?.iter().enumerate() {
                let path = format!("{base}.Queues[{i}]");
                let q = object(queue, &path)?;
                let name = entity_name(q.get("Name"), &format!("{path}.Name"))?;
                let settings = settings(
                    q.get("Properties"),
                    &format!("{path}.Properties"),
                    &mut forwards,
                )?;
                if entities.queues.contains_key(&name.to_lowercase())
                    || entities.topics.contains_key(&name.to_lowercase())
                {
                    return Err(err(
                        &format!("{path}.Name"),
                        &format!("{name:?} is declared twice"),
                    ));
                }
                entities
                    .queues
                    .insert(name.to_lowercase(), QueueDef { name, settings });
            }
        }
        if let Some(topics) = ns.get("Topics") {
            for (i, topic) in array(topics, &format!("{base}.Topics"))?.iter().enumerate() {
                let path = format!("{base}.Topics[{i}]");
                let t = object(topic, &path)?;
                let name = entity_name(t.get("Name"), &format!("{path}.Name"))?;
                let settings = settings(
                    t.get("Properties"),
                    &format!("{path}.Properties"),
                    &mut forwards,
                )?;
                let mut subscriptions: Vec<SubscriptionDef> = Vec::new();
                if let Some(subs) = t.get("Subscriptions") {
                    for (j, sub) in array(subs, &format!("{path}.Subscriptions"))?
                        .iter()
                        .enumerate()
                    {
                        let sub_path = format!("{path}.Subscriptions[{j}]");
                        subscriptions.push(subscription(sub, &sub_path, &mut forwards)?);
                        let sub_name = &subscriptions[j].name;
                        if subscriptions[..j]
                            .iter()
                            .any(|s| s.name.eq_ignore_ascii_case(sub_name))
                        {
                            return Err(err(
                                &format!("{sub_path}.Name"),
                                &format!("{sub_name:?} is declared twice"),
                            ));
                        }
                    }
                }
                if entities.queues.contains_key(&name.to_lowercase())
                    || entities.topics.contains_key(&name.to_lowercase())
                {
                    return Err(err(
                        &format!("{path}.Name"),
                        &format!("{name:?} is declared twice"),
                    ));
                }
                entities.topics.insert(
                    name.to_lowercase(),
                    TopicDef {
                        name,
                        settings,
                        subscriptions,
                    },
                );
            }
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

    /// Parses file contents.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ConfigError {
            path: format!("$ (line {}, column {})", e.line(), e.column()),
            problem: e.to_string(),
        })?;
        Self::from_json(&value)
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

fn subscription(
    value: &Value,
    path: &str,
    forwards: &mut Vec<(String, String)>,
) -> Result<SubscriptionDef, ConfigError> {
    let s = object(value, path)?;
    let name = entity_name(s.get("Name"), &format!("{path}.Name"))?;
    let settings = settings(s.get("Properties"), &format!("{path}.Properties"), forwards)?;
    let mut rules = Vec::new();
    match s.get("Rules") {
        None | Some(Value::Null) => {}
        Some(list) => {
            for (k, rule) in array(list, &format!("{path}.Rules"))?.iter().enumerate() {
                rules.push(rule_def(rule, &format!("{path}.Rules[{k}]"))?);
            }
        }
    }
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

fn rule_def(value: &Value, path: &str) -> Result<RuleDef, ConfigError> {
    let r = object(value, path)?;
    let name = string(r.get("Name"), &format!("{path}.Name"))?;
    let props_path = format!("{path}.Properties");
    let props = object(
        r.get("Properties")
            .ok_or_else(|| err(&props_path, "is required"))?,
        &props_path,
    )?;
    let filter_type = string(props.get("FilterType"), &format!("{props_path}.FilterType"))?;
    let filter = match filter_type.to_ascii_lowercase().as_str() {
        "correlation" => {
            let p = format!("{props_path}.CorrelationFilter");
            let cf = props
                .get("CorrelationFilter")
                .ok_or_else(|| err(&p, "is required for FilterType Correlation"))?;
            Filter::correlation(object(cf, &p)?)
                .map_err(|(field, problem)| err(&format!("{p}.{field}"), &problem))?
        }
        "sql" => {
            let p = format!("{props_path}.SqlFilter.SqlExpression");
            let expr = props
                .get("SqlFilter")
                .and_then(|f| f.get("SqlExpression"))
                .ok_or_else(|| err(&p, "is required for FilterType Sql"))?;
            let text = string(Some(expr), &p)?;
            Filter::sql(&text).map_err(|e| err(&p, &e))?
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
    let action = match props.get("Action") {
        None | Some(Value::Null) => None,
        Some(action) => {
            let p = format!("{props_path}.Action.SqlExpression");
            let text = match action {
                Value::String(s) => s.clone(),
                other => string(other.get("SqlExpression"), &p)?,
            };
            if text.trim().is_empty() {
                None
            } else {
                Some(Action::parse(&text).map_err(|e| err(&p, &e))?)
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
    value: Option<&Value>,
    path: &str,
    forwards: &mut Vec<(String, String)>,
) -> Result<EntitySettings, ConfigError> {
    let mut s = EntitySettings::default();
    let Some(value) = value else { return Ok(s) };
    let props = object(value, path)?;
    let duration = |key: &str| -> Result<Option<Duration>, ConfigError> {
        match props.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => parse_iso8601_duration(text).map(Some).ok_or_else(|| {
                err(
                    &format!("{path}.{key}"),
                    &format!("{text:?} is not an ISO 8601 duration such as PT1M"),
                )
            }),
            Some(_) => Err(err(
                &format!("{path}.{key}"),
                "must be an ISO 8601 duration string",
            )),
        }
    };
    let boolean = |key: &str| -> Result<Option<bool>, ConfigError> {
        match props.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(err(&format!("{path}.{key}"), "must be true or false")),
        }
    };
    if let Some(lock) = duration("LockDuration")? {
        if !(MIN_LOCK_DURATION..=MAX_LOCK_DURATION).contains(&lock) {
            return Err(err(
                &format!("{path}.LockDuration"),
                "must be from PT5S to PT5M",
            ));
        }
        s.lock_duration = lock;
    }
    match props.get("MaxDeliveryCount") {
        None | Some(Value::Null) => {}
        Some(v) => {
            s.max_delivery_count = v
                .as_u64()
                .filter(|n| (1..=u64::from(u32::MAX)).contains(n))
                .map(|n| n as u32)
                .ok_or_else(|| {
                    err(
                        &format!("{path}.MaxDeliveryCount"),
                        "must be a whole number of at least 1",
                    )
                })?;
        }
    }
    s.default_ttl = duration("DefaultMessageTimeToLive")?
        .filter(|d| *d < Duration::from_secs(10_675_199 * 86_400));
    if s.default_ttl.is_some_and(|d| d.is_zero()) {
        return Err(err(
            &format!("{path}.DefaultMessageTimeToLive"),
            "must be positive",
        ));
    }
    s.dead_letter_on_expiration = boolean("DeadLetteringOnMessageExpiration")?.unwrap_or(false);
    s.requires_duplicate_detection = boolean("RequiresDuplicateDetection")?.unwrap_or(false);
    if let Some(window) = duration("DuplicateDetectionHistoryTimeWindow")? {
        if !(Duration::from_secs(20)..=Duration::from_secs(7 * 86_400)).contains(&window) {
            return Err(err(
                &format!("{path}.DuplicateDetectionHistoryTimeWindow"),
                "must be from PT20S to P7D",
            ));
        }
        s.duplicate_window = window;
    }
    s.requires_session = boolean("RequiresSession")?.unwrap_or(false);
    for (key, slot) in [
        ("ForwardTo", &mut s.forward_to),
        (
            "ForwardDeadLetteredMessagesTo",
            &mut s.forward_dead_lettered_to,
        ),
    ] {
        match props.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) if t.trim().is_empty() => {}
            Some(Value::String(t)) => {
                forwards.push((format!("{path}.{key}"), t.clone()));
                *slot = Some(t.clone());
            }
            Some(_) => return Err(err(&format!("{path}.{key}"), "must be an entity name")),
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

fn entity_name(value: Option<&Value>, path: &str) -> Result<String, ConfigError> {
    let name = string(value, path)?;
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

fn string(value: Option<&Value>, path: &str) -> Result<String, ConfigError> {
    match value {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::String(_)) => Err(err(path, "must not be empty")),
        Some(_) => Err(err(path, "must be a string")),
        None => Err(err(path, "is required")),
    }
}

fn object<'a>(
    value: &'a Value,
    path: &str,
) -> Result<&'a serde_json::Map<String, Value>, ConfigError> {
    value
        .as_object()
        .ok_or_else(|| err(path, "must be an object"))
}

fn array<'a>(value: &'a Value, path: &str) -> Result<&'a Vec<Value>, ConfigError> {
    value
        .as_array()
        .ok_or_else(|| err(path, "must be an array"))
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
            "/servicebus.config.json"
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
