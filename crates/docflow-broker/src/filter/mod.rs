//! Subscription filters and rule actions (`servicebus.md` §3.10): true/false filters,
//! correlation filters, and the SQL filter and action subset, with SQL's three-valued logic.
//!
//! - `sql`: the expression tree and its evaluation.
//! - `parse`: the SQL filter and action grammar.

mod parse;
mod sql;

use std::collections::BTreeMap;

use serde_json::Value as Json;

pub use self::parse::MAX_EXPRESSION_CHARS;
pub use self::sql::{BinOp, Expr, Prop, V};
use self::sql::{Step, eval};
use docflow_servicebus::message::{Message, PropertyValue};

/// A subscription filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Matches everything (`1=1`).
    True,
    /// Matches nothing.
    False,
    /// Every given field must be equal (case-sensitive).
    Correlation(CorrelationFilter),
    /// A SQL expression that must evaluate to TRUE.
    Sql(Expr),
}

/// A correlation filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CorrelationFilter {
    system: Vec<(SysProp, String)>,
    properties: Vec<(String, PropertyValue)>,
}

/// System properties readable as `sys.X`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysProp {
    MessageId,
    CorrelationId,
    To,
    ReplyTo,
    Label,
    SessionId,
    ReplyToSessionId,
    ContentType,
    PartitionKey,
}

impl SysProp {
    fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "messageid" => Self::MessageId,
            "correlationid" => Self::CorrelationId,
            "to" => Self::To,
            "replyto" => Self::ReplyTo,
            "label" | "subject" => Self::Label,
            "sessionid" => Self::SessionId,
            "replytosessionid" => Self::ReplyToSessionId,
            "contenttype" => Self::ContentType,
            "partitionkey" => Self::PartitionKey,
            _ => return None,
        })
    }

    fn slot(self, m: &mut Message) -> &mut Option<String> {
        match self {
            Self::MessageId => &mut m.message_id,
            Self::CorrelationId => &mut m.correlation_id,
            Self::To => &mut m.to,
            Self::ReplyTo => &mut m.reply_to,
            Self::Label => &mut m.subject,
            Self::SessionId => &mut m.session_id,
            Self::ReplyToSessionId => &mut m.reply_to_session_id,
            Self::ContentType => &mut m.content_type,
            Self::PartitionKey => &mut m.partition_key,
        }
    }

    fn get(self, m: &Message) -> Option<&String> {
        match self {
            Self::MessageId => m.message_id.as_ref(),
            Self::CorrelationId => m.correlation_id.as_ref(),
            Self::To => m.to.as_ref(),
            Self::ReplyTo => m.reply_to.as_ref(),
            Self::Label => m.subject.as_ref(),
            Self::SessionId => m.session_id.as_ref(),
            Self::ReplyToSessionId => m.reply_to_session_id.as_ref(),
            Self::ContentType => m.content_type.as_ref(),
            Self::PartitionKey => m.partition_key.as_ref(),
        }
    }
}

impl Filter {
    /// A correlation filter from the emulator's `CorrelationFilter` object; errors name the field.
    pub fn correlation(object: &serde_json::Map<String, Json>) -> Result<Self, (String, String)> {
        let mut filter = CorrelationFilter::default();
        for (key, value) in object {
            if key.eq_ignore_ascii_case("Properties") {
                let Some(props) = value.as_object() else {
                    return Err((key.clone(), "must be an object".into()));
                };
                for (name, v) in props {
                    let v = match v {
                        Json::String(s) => PropertyValue::String(s.clone()),
                        Json::Bool(b) => PropertyValue::Bool(*b),
                        Json::Number(n) => n
                            .as_i64()
                            .map(PropertyValue::Int)
                            .unwrap_or(PropertyValue::Double(n.as_f64().unwrap_or(0.0))),
                        _ => {
                            return Err((
                                format!("{key}.{name}"),
                                "must be a string, number or boolean".into(),
                            ));
                        }
                    };
                    filter.properties.push((name.clone(), v));
                }
                continue;
            }
            let prop = SysProp::parse(key)
                .ok_or_else(|| (key.clone(), "is not a correlation filter field".to_string()))?;
            match value {
                Json::String(s) if !s.is_empty() => filter.system.push((prop, s.clone())),
                Json::String(_) | Json::Null => {}
                _ => return Err((key.clone(), "must be a string".into())),
            }
        }
        Ok(Filter::Correlation(filter))
    }

    /// A SQL filter; the error describes the syntax problem.
    pub fn sql(text: &str) -> Result<Self, String> {
        Ok(Filter::Sql(parse::expression(text)?))
    }

    /// Whether the message matches (an evaluation error is no match).
    pub fn matches(&self, message: &Message) -> bool {
        match self {
            Filter::True => true,
            Filter::False => false,
            Filter::Correlation(c) => {
                c.system.iter().all(|(p, v)| p.get(message) == Some(v))
                    && c.properties
                        .iter()
                        .all(|(name, v)| message.properties.get(name) == Some(v))
            }
            Filter::Sql(expr) => matches!(eval(expr, message), V::Bool(true)),
        }
    }
}

/// A rule action: `SET prop = expr; REMOVE prop`.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    steps: Vec<Step>,
}

impl Action {
    /// Parses an action.
    pub fn parse(text: &str) -> Result<Self, String> {
        Ok(Self {
            steps: parse::action(text)?,
        })
    }

    /// Applies the action to a copy of a message.
    pub fn apply(&self, message: &mut Message) {
        for step in &self.steps {
            match step {
                Step::Set(prop, expr) => {
                    let value = eval(expr, message);
                    match prop {
                        Prop::User(name) => match value.into_property() {
                            Some(v) => {
                                message.properties.insert(name.clone(), v);
                            }
                            None => {
                                remove_user(&mut message.properties, name);
                            }
                        },
                        Prop::Sys(p) => {
                            *p.slot(message) = value.into_property().map(|v| v.to_string())
                        }
                    }
                }
                Step::Remove(Prop::User(name)) => remove_user(&mut message.properties, name),
                Step::Remove(Prop::Sys(p)) => *p.slot(message) = None,
            }
        }
    }
}

fn remove_user(props: &mut BTreeMap<String, PropertyValue>, name: &str) {
    props.retain(|k, _| !k.eq_ignore_ascii_case(name));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        Message::new("x")
            .with_subject("orders")
            .with_correlation_id("abc")
            .with_property("color", "red")
            .with_property("qty", 10i64)
            .with_property("price", 2.5)
    }

    fn sql(text: &str) -> bool {
        Filter::sql(text).unwrap().matches(&msg())
    }

    #[test]
    fn sql_filters() {
        assert!(sql("color = 'red' AND qty > 5"));
        assert!(!sql("color = 'blue' AND qty > 5"));
        assert!(sql("sys.Label LIKE 'ord%' AND region IS NULL"));
        assert!(!sql("missingProp = 1"));
        assert!(!sql("NOT (missingProp = 1)"));
        assert!(sql("missingProp = 1 OR 1=1"));
        assert!(sql("qty * 2 + 1 = 21 AND price * 2 = 5"));
        // Overflow is unknown, never a panic: -i64::MIN, i64::MIN / -1.
        assert!(!sql("-(-9223372036854775807 - 1) = 1"));
        assert!(sql("-(-9223372036854775807 - 1) IS NULL"));
        assert!(sql("(-9223372036854775807 - 1) / -1 IS NULL"));
        assert!(sql("(-9223372036854775807 - 1) % -1 IS NULL"));
        assert!(sql("qty / 0 IS NULL"));
        assert!(sql("color IN ('blue', 'red') AND color NOT IN ('green')"));
        assert!(sql("EXISTS(color) AND NOT EXISTS(region)"));
        assert!(sql(
            "[color] = 'red' AND \"qty\" >= 10 AND user.COLOR = 'red'"
        ));
        assert!(sql("sys.CorrelationId = 'abc' AND sys.To IS NULL"));
        assert!(sql("color LIKE 'r_d' AND 'a%b' LIKE 'a!%b' ESCAPE '!'"));
        assert!(sql("1=1"));
        assert!(!sql("1=0"));
        assert!(sql("property('color') = 'red' AND -qty < 0"));
    }

    #[test]
    fn sql_syntax_errors() {
        for bad in [
            "a = = 1",
            "a =",
            "(a = 1",
            "a LIKE b",
            "sys.Nope = 1",
            "'open",
            "a NOT = 1",
        ] {
            assert!(Filter::sql(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deep_or_long_expressions_are_refused_not_a_stack_overflow() {
        let deep = format!("{}1 = 1{}", "(".repeat(500), ")".repeat(500));
        assert!(Filter::sql(&deep).unwrap_err().contains("nested"));
        let nots = format!("{}1 = 1", "NOT ".repeat(200));
        assert!(Filter::sql(&nots).is_err());
        let signs = format!("{}1 = 1", "-".repeat(200));
        assert!(Filter::sql(&signs).is_err());
        let long = vec!["a = 1"; 300].join(" AND ");
        assert!(Filter::sql(&long).unwrap_err().contains("1024"));
        assert!(Action::parse(&format!("SET a = {}", "1 + ".repeat(400) + "1")).is_err());
        // Within the limits, nesting still works.
        let ok = format!("{}1 = 1{}", "(".repeat(30), ")".repeat(30));
        assert!(Filter::sql(&ok).unwrap().matches(&msg()));
    }

    #[test]
    fn correlation_filters_are_case_sensitive_and() {
        let json: serde_json::Value =
            serde_json::json!({"CorrelationId": "abc", "Properties": {"k": "v"}});
        let filter = Filter::correlation(json.as_object().unwrap()).unwrap();
        let m = |c: &str, v: &str| {
            Message::new("")
                .with_correlation_id(c)
                .with_property("k", v)
        };
        assert!(filter.matches(&m("abc", "v")));
        assert!(!filter.matches(&m("ABC", "v")));
        assert!(!filter.matches(&m("abc", "w")));
    }

    #[test]
    fn actions_set_and_remove() {
        let action = Action::parse("SET tier = 'gold'; REMOVE color; SET sys.Label = 'x'").unwrap();
        let mut m = msg();
        action.apply(&mut m);
        assert_eq!(
            m.properties.get("tier"),
            Some(&PropertyValue::String("gold".into()))
        );
        assert!(!m.properties.contains_key("color"));
        assert_eq!(m.subject.as_deref(), Some("x"));
        assert!(Action::parse("DROP x").is_err());
    }
}
