//! The SQL filter language's expression tree and its evaluation, with SQL's three-valued logic
//! (`Null` is "unknown").

use super::SysProp;
use docflow_servicebus::message::{Message, PropertyValue};

/// One step of a rule action.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    /// `SET prop = expr`.
    Set(Prop, Expr),
    /// `REMOVE prop`.
    Remove(Prop),
}

/// A property reference.
#[derive(Debug, Clone, PartialEq)]
pub enum Prop {
    /// `sys.X`.
    Sys(SysProp),
    /// `[user.]name` (case-insensitive).
    User(String),
}

/// A SQL expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Const(V),
    Prop(Prop),
    NewId,
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(Box<Expr>, BinOp, Box<Expr>),
    IsNull(Box<Expr>, bool),
    In(Box<Expr>, Vec<Expr>, bool),
    Like(Box<Expr>, String, Option<char>, bool),
    Exists(Prop),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// A SQL value; `Null` doubles as "unknown".
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
}

impl V {
    fn from_property(p: &PropertyValue) -> V {
        match p {
            PropertyValue::String(s) => V::Str(s.clone()),
            PropertyValue::Int(n) => V::Int(*n),
            PropertyValue::Double(x) => V::Double(*x),
            PropertyValue::Bool(b) => V::Bool(*b),
            PropertyValue::DateTime(t) => V::Str(docflow_servicebus::message::format_http_date(*t)),
        }
    }

    pub(super) fn into_property(self) -> Option<PropertyValue> {
        Some(match self {
            V::Null => return None,
            V::Bool(b) => PropertyValue::Bool(b),
            V::Int(n) => PropertyValue::Int(n),
            V::Double(x) => PropertyValue::Double(x),
            V::Str(s) => PropertyValue::String(s),
        })
    }

    fn number(&self) -> Option<f64> {
        match self {
            V::Int(n) => Some(*n as f64),
            V::Double(x) => Some(*x),
            _ => None,
        }
    }
}

fn lookup(prop: &Prop, m: &Message) -> Option<V> {
    match prop {
        Prop::Sys(p) => p.get(m).map(|s| V::Str(s.clone())),
        Prop::User(name) => m
            .properties
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| V::from_property(v)),
    }
}

/// Evaluates an expression against a message (an error is `Null`: no match).
pub(super) fn eval(expr: &Expr, m: &Message) -> V {
    match expr {
        Expr::Const(v) => v.clone(),
        Expr::Prop(p) => lookup(p, m).unwrap_or(V::Null),
        Expr::NewId => V::Str(uuid::Uuid::new_v4().to_string()),
        Expr::Not(e) => match eval(e, m) {
            V::Bool(b) => V::Bool(!b),
            _ => V::Null,
        },
        Expr::Neg(e) => match eval(e, m) {
            // -i64::MIN overflows: unknown, like other overflowing arithmetic.
            V::Int(n) => n.checked_neg().map_or(V::Null, V::Int),
            V::Double(x) => V::Double(-x),
            _ => V::Null,
        },
        Expr::Exists(p) => V::Bool(lookup(p, m).is_some()),
        Expr::IsNull(e, negated) => V::Bool(matches!(eval(e, m), V::Null) != *negated),
        Expr::In(e, list, negated) => {
            let left = eval(e, m);
            if left == V::Null {
                return V::Null;
            }
            let mut unknown = false;
            for item in list {
                match compare(&left, &eval(item, m)) {
                    Some(std::cmp::Ordering::Equal) => return V::Bool(!negated),
                    None => unknown = true,
                    _ => {}
                }
            }
            if unknown { V::Null } else { V::Bool(*negated) }
        }
        Expr::Like(e, pattern, escape, negated) => match eval(e, m) {
            V::Str(s) => V::Bool(like(&s, pattern, *escape) != *negated),
            _ => V::Null,
        },
        Expr::Binary(a, BinOp::And, b) => match (eval(a, m), eval(b, m)) {
            (V::Bool(false), _) | (_, V::Bool(false)) => V::Bool(false),
            (V::Bool(true), V::Bool(true)) => V::Bool(true),
            _ => V::Null,
        },
        Expr::Binary(a, BinOp::Or, b) => match (eval(a, m), eval(b, m)) {
            (V::Bool(true), _) | (_, V::Bool(true)) => V::Bool(true),
            (V::Bool(false), V::Bool(false)) => V::Bool(false),
            _ => V::Null,
        },
        Expr::Binary(a, op, b) => {
            let (l, r) = (eval(a, m), eval(b, m));
            match op {
                BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                    let Some(ord) = compare(&l, &r) else {
                        return V::Null;
                    };
                    use std::cmp::Ordering::*;
                    V::Bool(match op {
                        BinOp::Eq => ord == Equal,
                        BinOp::Ne => ord != Equal,
                        BinOp::Lt => ord == Less,
                        BinOp::Le => ord != Greater,
                        BinOp::Gt => ord == Greater,
                        _ => ord != Less,
                    })
                }
                _ => arithmetic(&l, *op, &r),
            }
        }
    }
}

fn compare(l: &V, r: &V) -> Option<std::cmp::Ordering> {
    match (l, r) {
        (V::Str(a), V::Str(b)) => Some(a.cmp(b)),
        (V::Bool(a), V::Bool(b)) => Some(a.cmp(b)),
        (V::Int(a), V::Int(b)) => Some(a.cmp(b)),
        _ => l.number()?.partial_cmp(&r.number()?),
    }
}

fn arithmetic(l: &V, op: BinOp, r: &V) -> V {
    if let (BinOp::Add, V::Str(a), V::Str(b)) = (op, l, r) {
        return V::Str(format!("{a}{b}"));
    }
    if let (V::Int(a), V::Int(b)) = (l, r) {
        return match op {
            BinOp::Add => a.checked_add(*b).map_or(V::Null, V::Int),
            BinOp::Sub => a.checked_sub(*b).map_or(V::Null, V::Int),
            BinOp::Mul => a.checked_mul(*b).map_or(V::Null, V::Int),
            BinOp::Div => a.checked_div(*b).map_or(V::Null, V::Int),
            BinOp::Mod => a.checked_rem(*b).map_or(V::Null, V::Int),
            _ => V::Null,
        };
    }
    let (Some(a), Some(b)) = (l.number(), r.number()) else {
        return V::Null;
    };
    V::Double(match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => a / b,
        BinOp::Mod => a % b,
        _ => return V::Null,
    })
}

fn like(text: &str, pattern: &str, escape: Option<char>) -> bool {
    let mut regex = String::from("^");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape {
            if let Some(next) = chars.next() {
                regex.push_str(&regex::escape(&next.to_string()));
            }
            continue;
        }
        match c {
            '%' => regex.push_str(".*"),
            '_' => regex.push('.'),
            other => regex.push_str(&regex::escape(&other.to_string())),
        }
    }
    regex.push('$');
    regex::RegexBuilder::new(&regex)
        .dot_matches_new_line(true)
        .build()
        .is_ok_and(|re| re.is_match(text))
}
