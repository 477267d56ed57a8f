//! Subscription rules for the emulator: correlation and SQL filters, SQL actions, and the
//! `True`/`False` filter types docflow's broker also accepts, written as the SQL filters
//! Service Bus makes of them (`1=1`, `1=0`).

use std::collections::HashMap;

use serde_json::Value;

use super::Converter;
use super::format::{
    CorrelationFilter, EmulatorRule, EmulatorRuleProperties, EmulatorSubscription, FilterType,
    SqlExpression,
};
use super::limits;
use crate::topology::Rule;

/// A filter as the emulator takes it.
enum Filter {
    Correlation(CorrelationFilter),
    Sql(String),
}

impl Converter {
    /// A subscription's rules; `path` is the subscription's.
    pub(super) fn rules(&mut self, path: &str, rules: &[Rule]) -> Vec<EmulatorRule> {
        if rules.len() > limits::MAX_RULES_PER_SUBSCRIPTION {
            let (count, max) = (rules.len(), limits::MAX_RULES_PER_SUBSCRIPTION);
            self.problem(
                path,
                format!("has {count} rules; the emulator holds at most {max}"),
            );
        }
        let mut seen: HashMap<String, &str> = HashMap::new();
        let mut converted = Vec::with_capacity(rules.len());
        for rule in rules {
            let rule_path = format!("{path}/rules/{}", rule.name);
            if let Some(first) = seen.insert(rule.name.to_lowercase(), &rule.name) {
                self.problem(&rule_path, format!("is declared twice (also as {first:?})"));
            }
            converted.extend(self.rule(&rule_path, rule));
        }
        converted
    }

    /// Checks a topic's filter counts, over all its subscriptions.
    pub(super) fn count_filters(&mut self, topic: &str, subscriptions: &[EmulatorSubscription]) {
        let rules = subscriptions.iter().flat_map(|s| &s.rules);
        let sql = rules
            .clone()
            .filter(|r| r.properties.filter_type == FilterType::Sql)
            .count();
        let correlation = rules.count() - sql;
        for (count, max, kind) in [
            (sql, limits::MAX_SQL_FILTERS_PER_TOPIC, "SQL"),
            (
                correlation,
                limits::MAX_CORRELATION_FILTERS_PER_TOPIC,
                "correlation",
            ),
        ] {
            if count > max {
                let problem = format!(
                    "has {count} {kind} filters over its subscriptions; the emulator holds at \
                     most {max} per topic"
                );
                self.problem(topic, problem);
            }
        }
    }

    fn rule(&mut self, path: &str, rule: &Rule) -> Option<EmulatorRule> {
        self.name(path, &rule.name, limits::MAX_CHILD_NAME);
        let props = &rule.properties;
        let why = "the emulator's filter types are Correlation and Sql";
        let filter = match props.filter_type.to_ascii_lowercase().as_str() {
            "correlation" => self.correlation(path, props.correlation_filter.as_ref())?,
            "sql" => {
                let text = props
                    .sql_filter
                    .as_ref()
                    .and_then(|f| f.get("SqlExpression"))
                    .and_then(Value::as_str);
                let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
                    let problem = "FilterType Sql needs a SqlFilter.SqlExpression string";
                    self.problem(path, problem.into());
                    return None;
                };
                self.sql_length(path, "SqlFilter.SqlExpression", text);
                Filter::Sql(text.into())
            }
            kind @ ("true" | "truefilter" | "false" | "falsefilter") => {
                let sql = if kind.starts_with('t') { "1=1" } else { "1=0" };
                let (from, to) = (props.filter_type.clone(), format!("Sql {sql:?}"));
                self.clamp(path, "FilterType", from, to, why);
                Filter::Sql(sql.into())
            }
            _ => {
                let problem = format!("FilterType {:?}: {why}", props.filter_type);
                self.problem(path, problem);
                return None;
            }
        };
        let action = self.action(path, props.action.as_ref());
        let (filter_type, correlation_filter, sql_filter) = match filter {
            Filter::Correlation(c) => (FilterType::Correlation, Some(c), None),
            Filter::Sql(sql_expression) => (
                FilterType::Sql,
                None,
                Some(SqlExpression { sql_expression }),
            ),
        };
        Some(EmulatorRule {
            name: rule.name.clone(),
            properties: EmulatorRuleProperties {
                filter_type,
                correlation_filter,
                sql_filter,
                action,
            },
        })
    }

    /// A correlation filter; one with no field set becomes the SQL filter `1=1` (both match
    /// every message, and the emulator refuses an empty correlation filter).
    fn correlation(&mut self, path: &str, filter: Option<&Value>) -> Option<Filter> {
        let Some(object) = filter.and_then(Value::as_object) else {
            let problem = "FilterType Correlation needs a CorrelationFilter object";
            self.problem(path, problem.into());
            return None;
        };
        let mut out = CorrelationFilter::default();
        let mut ok = true;
        for (key, value) in object {
            let property = format!("CorrelationFilter.{key}");
            if key.eq_ignore_ascii_case("Properties") {
                ok &= self.user_properties(path, &property, value, &mut out);
                continue;
            }
            let Some(slot) = out.slot(key) else {
                let problem = format!("{property} has no counterpart in the emulator's filters");
                self.problem(path, problem);
                ok = false;
                continue;
            };
            match value {
                Value::String(s) if !s.is_empty() => *slot = Some(s.clone()),
                Value::String(_) | Value::Null => {
                    let why = "an empty field constrains nothing";
                    self.clamp(path, &property, value.to_string(), "(dropped)".into(), why);
                }
                _ => {
                    self.problem(path, format!("{property} must be a string"));
                    ok = false;
                }
            }
        }
        if !ok {
            return None;
        }
        if out.is_empty() {
            let (from, to) = (
                "(no field set)".to_string(),
                "SqlFilter \"1=1\"".to_string(),
            );
            let why = "the emulator refuses an empty correlation filter; both match every message";
            self.clamp(path, "CorrelationFilter", from, to, why);
            return Some(Filter::Sql("1=1".into()));
        }
        Some(Filter::Correlation(out))
    }

    /// `CorrelationFilter.Properties` into `out`; false when it cannot be represented.
    fn user_properties(
        &mut self,
        path: &str,
        property: &str,
        value: &Value,
        out: &mut CorrelationFilter,
    ) -> bool {
        let Some(map) = value.as_object() else {
            self.problem(path, format!("{property} must be an object"));
            return false;
        };
        let scalar = |v: &Value| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_));
        if let Some((name, _)) = map.iter().find(|(_, v)| !scalar(v)) {
            let problem = format!("{property}.{name} must be a string, number or boolean");
            self.problem(path, problem);
            return false;
        }
        if map.is_empty() {
            let why = "the emulator refuses an empty Properties object; it constrains nothing";
            self.clamp(path, property, "{}".into(), "(dropped)".into(), why);
        } else {
            out.properties = Some(map.clone());
        }
        true
    }

    /// A rule action: a string or `{"SqlExpression": ...}`; empty is none.
    fn action(&mut self, path: &str, action: Option<&Value>) -> Option<SqlExpression> {
        let text = match action? {
            Value::Null => return None,
            Value::String(s) => s.as_str(),
            other => match other.get("SqlExpression").and_then(Value::as_str) {
                Some(s) => s,
                None => {
                    let problem = "Action must be {\"SqlExpression\": \"...\"}";
                    self.problem(path, problem.into());
                    return None;
                }
            },
        };
        if text.trim().is_empty() {
            return None;
        }
        self.sql_length(path, "Action.SqlExpression", text);
        let count = limits::action_expressions(text);
        if count > limits::MAX_ACTION_EXPRESSIONS {
            let max = limits::MAX_ACTION_EXPRESSIONS;
            let problem = format!(
                "Action.SqlExpression has {count} statements; the emulator takes at most {max}"
            );
            self.problem(path, problem);
        }
        Some(SqlExpression {
            sql_expression: text.into(),
        })
    }

    fn sql_length(&mut self, path: &str, property: &str, text: &str) {
        let (len, max) = (text.chars().count(), limits::MAX_SQL_LENGTH);
        if len > max {
            let problem =
                format!("{property} is {len} characters long; the emulator takes at most {max}");
            self.problem(path, problem);
        }
    }
}
