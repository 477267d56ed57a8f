//! One `function.json`: its trigger (Service Bus or HTTP) and its output bindings, with
//! `%SETTING%` entity names resolved from the app settings.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{
    AppError, FunctionDef, HostSettings, HttpTrigger, Output, ServiceBusTrigger, Trigger, app_error,
};

/// Expands `%SETTING%` from app settings, as the host does for entity names.
pub(super) fn expand(
    value: &str,
    settings: &BTreeMap<String, String>,
    file: &str,
    field: &str,
) -> Result<String, AppError> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find('%') {
        let Some(len) = rest[start + 1..].find('%') else {
            break;
        };
        let name = &rest[start + 1..start + 1 + len];
        let resolved = settings
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
            .ok_or_else(|| {
                app_error(file, field, format!("app setting {name:?} is not defined"))
            })?;
        out.push_str(&rest[..start]);
        out.push_str(&resolved);
        rest = &rest[start + 2 + len..];
    }
    out.push_str(rest);
    Ok(out)
}

pub(super) fn function_def(
    name: &str,
    file: &str,
    json: &Value,
    host: &HostSettings,
    settings: &BTreeMap<String, String>,
) -> Result<FunctionDef, AppError> {
    let bindings = json
        .get("bindings")
        .and_then(Value::as_array)
        .ok_or_else(|| app_error(file, "$.bindings", "must be an array"))?;
    let mut trigger = None;
    let mut outputs = Vec::new();
    for (i, b) in bindings.iter().enumerate() {
        let at = |field: &str| format!("$.bindings[{i}].{field}");
        let text = |field: &str| b.get(field).and_then(Value::as_str).map(str::to_owned);
        let binding_name =
            text("name").ok_or_else(|| app_error(file, &at("name"), "is required"))?;
        let kind = text("type").ok_or_else(|| app_error(file, &at("type"), "is required"))?;
        let direction = text("direction").unwrap_or_default().to_ascii_lowercase();
        let entity = |queue_or_topic_only: bool| -> Result<String, AppError> {
            if let Some(q) = text("queueName") {
                return expand(&q, settings, file, &at("queueName"));
            }
            let topic = text("topicName").ok_or_else(|| {
                app_error(
                    file,
                    &at("queueName"),
                    "a queueName or topicName is required",
                )
            })?;
            let topic = expand(&topic, settings, file, &at("topicName"))?;
            if queue_or_topic_only {
                return Ok(topic);
            }
            let sub = text("subscriptionName").ok_or_else(|| {
                app_error(file, &at("subscriptionName"), "is required with topicName")
            })?;
            Ok(format!(
                "{topic}/subscriptions/{}",
                expand(&sub, settings, file, &at("subscriptionName"))?
            ))
        };
        match (kind.as_str(), direction.as_str()) {
            ("serviceBusTrigger", "in") => {
                let data_type = text("dataType");
                if let Some(dt) = &data_type
                    && !matches!(dt.as_str(), "string" | "binary")
                {
                    return Err(app_error(
                        file,
                        &at("dataType"),
                        format!("{dt:?} is not string or binary"),
                    ));
                }
                let many = match text("cardinality").as_deref() {
                    None | Some("one") => false,
                    Some("many") => true,
                    Some(other) => {
                        return Err(app_error(
                            file,
                            &at("cardinality"),
                            format!("{other:?} is not one or many"),
                        ));
                    }
                };
                trigger = Some(Trigger::ServiceBus(ServiceBusTrigger {
                    name: binding_name,
                    entity: entity(false)?,
                    connection: text("connection").unwrap_or_default(),
                    sessions: b
                        .get("isSessionsEnabled")
                        .and_then(Value::as_bool)
                        .unwrap_or(false),
                    many,
                    data_type,
                    auto_complete: b
                        .get("autoCompleteMessages")
                        .and_then(Value::as_bool)
                        .unwrap_or(host.auto_complete),
                    max_batch_size: b
                        .get("maxMessageBatchSize")
                        .and_then(Value::as_u64)
                        .map_or(host.max_batch_size, |n| n.max(1) as usize),
                }));
            }
            ("httpTrigger", "in") => {
                let methods = match b.get("methods") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(m)) => m
                        .iter()
                        .map(|x| x.as_str().map(str::to_ascii_uppercase))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| {
                            app_error(file, &at("methods"), "must be an array of method names")
                        })?,
                    Some(_) => {
                        return Err(app_error(
                            file,
                            &at("methods"),
                            "must be an array of method names",
                        ));
                    }
                };
                trigger = Some(Trigger::Http(HttpTrigger {
                    name: binding_name,
                    methods,
                    route: text("route")
                        .unwrap_or_else(|| name.to_string())
                        .trim_matches('/')
                        .to_string(),
                }));
            }
            ("serviceBus", "out") => outputs.push(Output::ServiceBus {
                name: binding_name,
                entity: entity(true)?,
            }),
            ("blob", "out") => outputs.push(Output::Blob {
                name: binding_name,
                path: text("path").ok_or_else(|| app_error(file, &at("path"), "is required"))?,
                binary: text("dataType").as_deref() == Some("binary"),
            }),
            ("http", "out") => outputs.push(Output::Http { name: binding_name }),
            (other, dir) => {
                return Err(app_error(
                    file,
                    &at("type"),
                    format!("{other} ({dir}) bindings are not supported by docflow dev"),
                ));
            }
        }
    }
    let trigger = trigger.ok_or_else(|| {
        app_error(
            file,
            "$.bindings",
            "has no serviceBusTrigger or httpTrigger",
        )
    })?;
    Ok(FunctionDef {
        name: name.to_string(),
        trigger,
        outputs,
    })
}
