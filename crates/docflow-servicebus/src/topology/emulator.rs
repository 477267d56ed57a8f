//! The topology as a `Config.json` for Microsoft's Service Bus emulator
//! (`docflow topology emulator`).
//!
//! `servicebus.config.json` is already in the emulator's format, but docflow's broker accepts
//! more than the emulator does: any namespace name, Service Bus's full durations (14-day TTLs,
//! 10-minute duplicate windows), more deliveries, `True`/`False` filter types. [`convert`]
//! writes every queue, topic, subscription, rule and forward with every property explicit
//! (the emulator's own defaults differ from Service Bus's), clamps each value the emulator
//! cannot hold to the nearest one it can, and reports each such change as a [`Clamp`]. What the
//! emulator cannot represent at all (more than 50 entities, a topic without subscriptions, a
//! name outside its pattern, a forward to an unknown entity, too many SQL filters...) is a
//! [`Problem`]. The limits and their sources are in [`limits`].
//!
//! - [`format`]: the emulator's `Config.json` as serde types.
//! - [`limits`]: its limits, each with its source.
//! - `rules`: subscription rules (filters and actions).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::{ConfigFile, EntityProperties, Namespace, TopologyError, parse_iso8601_duration};

pub mod format;
pub mod limits;
mod rules;

use self::format::{
    EmulatorConfig, EmulatorNamespace, EmulatorQueue, EmulatorSubscription, EmulatorTopic,
    EmulatorUserConfig, Logging, QueueProperties, SubscriptionProperties, TopicProperties,
};
pub use self::limits::NAMESPACE;
use self::limits::{Bounds, defaults};

/// One value the emulator could not hold as given, and what was written instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clamp {
    /// The entity: `queue`, `topic`, `topic/subscriptions/sub`, `.../rules/rule`, or
    /// `namespace` and `UserConfig` for the file's own settings.
    pub entity: String,
    /// The property, as the file spells it.
    pub property: String,
    /// The value in the topology (`unset (...)` for a Service Bus default).
    pub from: String,
    /// The value written (`(dropped)` when the property is left out).
    pub to: String,
    /// Why.
    pub why: String,
}

impl fmt::Display for Clamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} {} -> {} ({})",
            self.entity, self.property, self.from, self.to, self.why
        )
    }
}

/// Something of the topology the emulator cannot represent at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The entity (as in [`Clamp::entity`]).
    pub entity: String,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.entity, self.problem)
    }
}

/// The emulator's file and the changes it took.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversion {
    /// The `Config.json`.
    pub config: EmulatorConfig,
    /// Each value clamped or dropped, in file order.
    pub clamps: Vec<Clamp>,
}

impl Conversion {
    /// The `Config.json` text, pretty-printed with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.config)
            .expect("the emulator's config is plain JSON");
        text.push('\n');
        text
    }
}

/// Why no emulator file could be written.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The topology file could not be read or parsed.
    #[error(transparent)]
    Topology(#[from] TopologyError),
    /// The emulator cannot represent the topology.
    #[error(
        "the Service Bus emulator cannot represent this topology:{}",
        .0.iter().map(|p| format!("\n  {p}")).collect::<String>()
    )]
    Unrepresentable(Vec<Problem>),
}

/// Reads a topology file and converts it.
pub fn load(path: &Path) -> Result<Conversion, EmulatorError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| TopologyError::Read {
        path: origin.clone(),
        source,
    })?;
    let file = ConfigFile::parse(&text).map_err(|e| TopologyError::Parse {
        path: origin,
        field: e.field,
        line: e.line,
        column: e.column,
        message: e.message,
    })?;
    convert(&file)
}

/// Converts a parsed topology: the file, or every problem the emulator has with it.
pub fn convert(file: &ConfigFile) -> Result<Conversion, EmulatorError> {
    let namespace = match file.user_config.namespaces.as_slice() {
        [] => return Err(TopologyError::NoNamespace.into()),
        [namespace] => namespace,
        _ => {
            return Err(EmulatorError::Unrepresentable(vec![Problem {
                entity: "UserConfig".into(),
                problem: "declares several namespaces; the emulator has exactly one".into(),
            }]));
        }
    };
    let mut converter = Converter::new(namespace);
    let logging = converter.logging(file.user_config.logging.as_ref());
    let namespace = converter.namespace(namespace);
    if !converter.problems.is_empty() {
        return Err(EmulatorError::Unrepresentable(converter.problems));
    }
    Ok(Conversion {
        config: EmulatorConfig {
            user_config: EmulatorUserConfig {
                namespaces: vec![namespace],
                logging,
            },
        },
        clamps: converter.clamps,
    })
}

/// The conversion's state: what it changed, what it cannot do, and the entity names that
/// forwards may name (lower case to the name as declared).
struct Converter {
    clamps: Vec<Clamp>,
    problems: Vec<Problem>,
    entities: HashMap<String, String>,
}

impl Converter {
    fn new(namespace: &Namespace) -> Self {
        let mut converter = Self {
            clamps: Vec::new(),
            problems: Vec::new(),
            entities: HashMap::new(),
        };
        let names = namespace.queues.iter().map(|q| &q.name);
        for name in names.chain(namespace.topics.iter().map(|t| &t.name)) {
            if let Some(first) = converter.entities.insert(name.to_lowercase(), name.clone()) {
                converter.problem(name, format!("is declared twice (also as {first:?})"));
            }
        }
        converter
    }

    fn problem(&mut self, entity: &str, problem: String) {
        self.problems.push(Problem {
            entity: entity.into(),
            problem,
        });
    }

    fn clamp(&mut self, entity: &str, property: &str, from: String, to: String, why: &str) {
        self.clamps.push(Clamp {
            entity: entity.into(),
            property: property.into(),
            from,
            to,
            why: why.into(),
        });
    }

    /// Reports a property left out, unless its value has no effect (`false`, empty).
    fn dropped(&mut self, entity: &str, property: &str, value: Option<String>, why: &str) {
        if let Some(value) = value.filter(|v| !v.is_empty() && v != "false") {
            self.clamp(entity, property, value, "(dropped)".into(), why);
        }
    }

    fn name(&mut self, entity: &str, name: &str, max_len: usize) {
        if let Some(problem) = limits::name_problem(name, max_len) {
            self.problem(entity, format!("name {name:?} {problem}"));
        }
    }

    fn logging(&mut self, logging: Option<&Value>) -> Logging {
        let given = logging.map(|l| l.get("Type").and_then(Value::as_str));
        match given {
            Some(Some(kind)) if limits::LOGGING_TYPES.contains(&kind) => {
                Logging { kind: kind.into() }
            }
            None => Logging {
                kind: "File".into(),
            },
            Some(other) => {
                let from = other.map_or_else(|| "unset".into(), |k| format!("{k:?}"));
                let why = "the emulator's Logging.Type is File, Console or both";
                self.clamp("UserConfig", "Logging.Type", from, "File".into(), why);
                Logging {
                    kind: "File".into(),
                }
            }
        }
    }

    fn namespace(&mut self, namespace: &Namespace) -> EmulatorNamespace {
        if namespace.name != NAMESPACE {
            let why = "the emulator's only namespace";
            self.clamp(
                "namespace",
                "Name",
                namespace.name.clone(),
                NAMESPACE.into(),
                why,
            );
        }
        let count = namespace.queues.len() + namespace.topics.len();
        if count > limits::MAX_ENTITIES {
            let max = limits::MAX_ENTITIES;
            self.problem(
                "namespace",
                format!("has {count} queues and topics; the emulator holds at most {max}"),
            );
        }
        EmulatorNamespace {
            name: NAMESPACE.into(),
            queues: namespace
                .queues
                .iter()
                .map(|q| self.queue(&q.name, &q.properties))
                .collect(),
            topics: namespace.topics.iter().map(|t| self.topic(t)).collect(),
        }
    }

    fn queue(&mut self, name: &str, p: &EntityProperties) -> EmulatorQueue {
        self.name(name, name, limits::MAX_ENTITY_NAME);
        let requires_duplicate_detection = p.requires_duplicate_detection.unwrap_or(false);
        EmulatorQueue {
            name: name.into(),
            properties: QueueProperties {
                dead_lettering_on_message_expiration: p
                    .dead_lettering_on_message_expiration
                    .unwrap_or(false),
                default_message_time_to_live: self.time_to_live(name, p),
                duplicate_detection_history_time_window: self.duplicate_window(name, p),
                forward_dead_lettered_messages_to: self.forward(
                    name,
                    "ForwardDeadLetteredMessagesTo",
                    p.forward_dead_lettered_messages_to.as_deref(),
                ),
                forward_to: self.forward(name, "ForwardTo", p.forward_to.as_deref()),
                lock_duration: self.lock_duration(name, p, limits::QUEUE_LOCK),
                max_delivery_count: self.max_delivery_count(name, p),
                requires_duplicate_detection,
                requires_session: p.requires_session.unwrap_or(false),
            },
        }
    }

    fn topic(&mut self, topic: &super::Topic) -> EmulatorTopic {
        let name = topic.name.as_str();
        self.name(name, name, limits::MAX_ENTITY_NAME);
        let p = &topic.properties;
        let why = "Service Bus topics have no such property";
        let dropped = [
            (
                "DeadLetteringOnMessageExpiration",
                text(&p.dead_lettering_on_message_expiration),
            ),
            (
                "ForwardDeadLetteredMessagesTo",
                text(&p.forward_dead_lettered_messages_to),
            ),
            ("ForwardTo", text(&p.forward_to)),
            ("LockDuration", text(&p.lock_duration)),
            ("MaxDeliveryCount", text(&p.max_delivery_count)),
            ("RequiresSession", text(&p.requires_session)),
        ];
        for (property, value) in dropped {
            self.dropped(name, property, value, why);
        }
        let properties = TopicProperties {
            default_message_time_to_live: self.time_to_live(name, p),
            duplicate_detection_history_time_window: self.duplicate_window(name, p),
            requires_duplicate_detection: p.requires_duplicate_detection.unwrap_or(false),
        };
        let subscriptions = &topic.subscriptions;
        if subscriptions.is_empty() {
            let problem = "has no subscription; the emulator requires at least one per topic";
            self.problem(name, problem.into());
        }
        if subscriptions.len() > limits::MAX_SUBSCRIPTIONS_PER_TOPIC {
            let (count, max) = (subscriptions.len(), limits::MAX_SUBSCRIPTIONS_PER_TOPIC);
            let problem = format!("has {count} subscriptions; the emulator holds at most {max}");
            self.problem(name, problem);
        }
        let mut seen: HashMap<String, &str> = HashMap::new();
        let mut converted = Vec::with_capacity(subscriptions.len());
        for sub in subscriptions {
            let path = format!("{name}/subscriptions/{}", sub.name);
            if let Some(first) = seen.insert(sub.name.to_lowercase(), &sub.name) {
                self.problem(&path, format!("is declared twice (also as {first:?})"));
            }
            converted.push(self.subscription(&path, sub));
        }
        self.count_filters(name, &converted);
        EmulatorTopic {
            name: name.into(),
            properties,
            subscriptions: converted,
        }
    }

    fn subscription(&mut self, path: &str, sub: &super::Subscription) -> EmulatorSubscription {
        self.name(path, &sub.name, limits::MAX_CHILD_NAME);
        let p = &sub.properties;
        let why = "the emulator's subscriptions have no such property";
        let dropped = [
            (
                "RequiresDuplicateDetection",
                text(&p.requires_duplicate_detection),
            ),
            (
                "DuplicateDetectionHistoryTimeWindow",
                text(&p.duplicate_detection_history_time_window),
            ),
        ];
        for (property, value) in dropped {
            self.dropped(path, property, value, why);
        }
        EmulatorSubscription {
            name: sub.name.clone(),
            properties: SubscriptionProperties {
                dead_lettering_on_message_expiration: p
                    .dead_lettering_on_message_expiration
                    .unwrap_or(false),
                default_message_time_to_live: self.time_to_live(path, p),
                lock_duration: self.lock_duration(path, p, limits::SUBSCRIPTION_LOCK),
                max_delivery_count: self.max_delivery_count(path, p),
                forward_dead_lettered_messages_to: self.forward(
                    path,
                    "ForwardDeadLetteredMessagesTo",
                    p.forward_dead_lettered_messages_to.as_deref(),
                ),
                forward_to: self.forward(path, "ForwardTo", p.forward_to.as_deref()),
                requires_session: p.requires_session.unwrap_or(false),
            },
            rules: self.rules(path, &sub.rules),
        }
    }

    /// A forwarding target, as declared, or empty; it must name a queue or topic.
    fn forward(&mut self, entity: &str, property: &str, target: Option<&str>) -> String {
        let Some(target) = target.map(str::trim).filter(|t| !t.is_empty()) else {
            return String::new();
        };
        match self.entities.get(&target.to_lowercase()) {
            Some(name) => name.clone(),
            None => {
                let problem =
                    format!("{property} {target:?} is not a queue or topic of the topology");
                self.problem(entity, problem);
                String::new()
            }
        }
    }

    fn time_to_live(&mut self, entity: &str, p: &EntityProperties) -> String {
        let given = p.default_message_time_to_live.as_deref();
        self.duration(
            entity,
            "DefaultMessageTimeToLive",
            given,
            None,
            limits::TIME_TO_LIVE,
        )
    }

    fn lock_duration(&mut self, entity: &str, p: &EntityProperties, bounds: Bounds) -> String {
        let given = p.lock_duration.as_deref();
        let default = Some(defaults::LOCK_DURATION);
        self.duration(entity, "LockDuration", given, default, bounds)
    }

    /// The window, when duplicate detection is on or the topology sets it.
    fn duplicate_window(&mut self, entity: &str, p: &EntityProperties) -> Option<String> {
        let given = p.duplicate_detection_history_time_window.as_deref();
        if given.is_none() && p.requires_duplicate_detection != Some(true) {
            return None;
        }
        let property = "DuplicateDetectionHistoryTimeWindow";
        let default = Some(defaults::DUPLICATE_WINDOW);
        Some(self.duration(entity, property, given, default, limits::DUPLICATE_WINDOW))
    }

    /// A duration within `bounds`, in whole seconds; `default` `None` is unlimited.
    fn duration(
        &mut self,
        entity: &str,
        property: &str,
        given: Option<&str>,
        default: Option<Duration>,
        bounds: Bounds,
    ) -> String {
        let (value, from) = match given {
            Some(text) => match parse_iso8601_duration(text) {
                Some(value) => (value, text.to_string()),
                None => {
                    let problem = format!("{property} {text:?} is not an ISO 8601 duration");
                    self.problem(entity, problem);
                    return limits::format_duration(bounds.max.as_secs());
                }
            },
            None => match default {
                Some(d) => (
                    d,
                    format!("unset ({})", limits::format_duration(d.as_secs())),
                ),
                None => (Duration::MAX, "unset (unlimited)".into()),
            },
        };
        let secs = value
            .as_secs()
            .clamp(bounds.min.as_secs(), bounds.max.as_secs());
        let to = limits::format_duration(secs);
        if Duration::from_secs(secs) != value {
            let why = if value > bounds.max {
                "the emulator's maximum"
            } else if value < bounds.min {
                "the emulator's minimum"
            } else {
                "the emulator takes whole seconds"
            };
            self.clamp(entity, property, from, to.clone(), why);
        }
        to
    }

    fn max_delivery_count(&mut self, entity: &str, p: &EntityProperties) -> u32 {
        let value = p.max_delivery_count.unwrap_or(defaults::MAX_DELIVERY_COUNT);
        let (min, max) = limits::MAX_DELIVERY_COUNT;
        let clamped = value.clamp(min, max);
        if clamped != value {
            let why = if value > max {
                "the emulator's maximum"
            } else {
                "the emulator's minimum"
            };
            let property = "MaxDeliveryCount";
            self.clamp(
                entity,
                property,
                value.to_string(),
                clamped.to_string(),
                why,
            );
        }
        clamped
    }
}

/// A set property's value as text, for a report.
fn text<T: fmt::Display>(value: &Option<T>) -> Option<String> {
    value.as_ref().map(ToString::to_string)
}
