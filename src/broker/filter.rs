//! Subscription filters and rule actions (`servicebus.md` §3.10): true/false filters,
//! correlation filters, and the SQL filter and action subset, with SQL's three-valued logic.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use crate::servicebus::message::{Message, PropertyValue};

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
        Ok(Filter::Sql(Parser::new(text)?.parse_full_expr()?))
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

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Set(Prop, Expr),
    Remove(Prop),
}

impl Action {
    /// Parses an action.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parser = Parser::new(text)?;
        let mut steps = Vec::new();
        loop {
            if parser.peek() == &Tok::Eof {
                break;
            }
            match parser.next_word().as_deref() {
                Some("set") => {
                    let prop = parser.property()?;
                    parser.expect(&Tok::Op("=".into()))?;
                    steps.push(Step::Set(prop, parser.expr(0)?));
                }
                Some("remove") => steps.push(Step::Remove(parser.property()?)),
                _ => return Err(format!("expected SET or REMOVE at {}", parser.position())),
            }
            if parser.peek() == &Tok::Semicolon {
                parser.advance();
            } else if parser.peek() != &Tok::Eof {
                return Err(format!("expected ';' at {}", parser.position()));
            }
        }
        if steps.is_empty() {
            return Err("an action needs at least one SET or REMOVE".into());
        }
        Ok(Self { steps })
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
            PropertyValue::DateTime(t) => V::Str(crate::servicebus::message::format_http_date(*t)),
        }
    }

    fn into_property(self) -> Option<PropertyValue> {
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

fn eval(expr: &Expr, m: &Message) -> V {
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

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Double(f64),
    Op(String),
    LParen,
    RParen,
    Comma,
    Dot,
    Semicolon,
    Eof,
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    pos: usize,
    /// Open parentheses, unary signs and NOTs around the current position.
    depth: usize,
}

/// Azure's limit on a SQL filter's or action's length, in characters.
pub const MAX_EXPRESSION_CHARS: usize = 1024;
/// Deepest nesting (parentheses, NOT, unary signs) accepted, so that parsing, evaluating and
/// dropping an expression never exhausts the stack.
const MAX_NESTING: usize = 64;

impl Parser {
    fn new(text: &str) -> Result<Self, String> {
        let length = text.chars().count();
        if length > MAX_EXPRESSION_CHARS {
            return Err(format!(
                "the expression has {length} characters; at most {MAX_EXPRESSION_CHARS} are allowed"
            ));
        }
        let chars: Vec<char> = text.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let start = i;
            if c.is_whitespace() {
                i += 1;
                continue;
            }
            let tok = match c {
                '(' => {
                    i += 1;
                    Tok::LParen
                }
                ')' => {
                    i += 1;
                    Tok::RParen
                }
                ',' => {
                    i += 1;
                    Tok::Comma
                }
                ';' => {
                    i += 1;
                    Tok::Semicolon
                }
                '\'' => {
                    let mut s = String::new();
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err(format!("unterminated string at {start}")),
                            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                                s.push('\'');
                                i += 2;
                            }
                            Some('\'') => {
                                i += 1;
                                break;
                            }
                            Some(ch) => {
                                s.push(*ch);
                                i += 1;
                            }
                        }
                    }
                    Tok::Str(s)
                }
                '[' | '"' => {
                    let close = if c == '[' { ']' } else { '"' };
                    let mut s = String::new();
                    i += 1;
                    loop {
                        match chars.get(i) {
                            None => return Err(format!("unterminated identifier at {start}")),
                            Some(ch) if *ch == close && chars.get(i + 1) == Some(&close) => {
                                s.push(close);
                                i += 2;
                            }
                            Some(ch) if *ch == close => {
                                i += 1;
                                break;
                            }
                            Some(ch) => {
                                s.push(*ch);
                                i += 1;
                            }
                        }
                    }
                    Tok::Ident(s)
                }
                '=' | '+' | '-' | '*' | '/' | '%' => {
                    i += 1;
                    Tok::Op(c.to_string())
                }
                '<' | '>' | '!' => {
                    let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                    if ["<>", "<=", ">=", "!="].contains(&two.as_str()) {
                        i += 2;
                        Tok::Op(two)
                    } else if c == '!' {
                        return Err(format!("unexpected '!' at {start}"));
                    } else {
                        i += 1;
                        Tok::Op(c.to_string())
                    }
                }
                c if c.is_ascii_digit()
                    || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
                {
                    while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                        i += 1;
                    }
                    if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                        i += 1;
                        if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                            i += 1;
                        }
                        while i < chars.len() && chars[i].is_ascii_digit() {
                            i += 1;
                        }
                    }
                    let text: String = chars[start..i].iter().collect();
                    match text.parse::<i64>() {
                        Ok(n) => Tok::Int(n),
                        Err(_) => Tok::Double(
                            text.parse()
                                .map_err(|_| format!("bad number {text:?} at {start}"))?,
                        ),
                    }
                }
                '.' => {
                    i += 1;
                    Tok::Dot
                }
                c if c.is_alphabetic() || c == '_' || c == '$' => {
                    while i < chars.len()
                        && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
                    {
                        i += 1;
                    }
                    Tok::Ident(chars[start..i].iter().collect())
                }
                other => return Err(format!("unexpected {other:?} at {start}")),
            };
            tokens.push((tok, start));
        }
        tokens.push((Tok::Eof, chars.len()));
        Ok(Self {
            tokens,
            pos: 0,
            depth: 0,
        })
    }

    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].0
    }

    fn position(&self) -> usize {
        self.tokens[self.pos].1
    }

    fn advance(&mut self) -> Tok {
        let t = self.tokens[self.pos].0.clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), String> {
        if self.peek() == tok {
            self.advance();
            Ok(())
        } else {
            Err(format!("expected {tok:?} at {}", self.position()))
        }
    }

    fn keyword(&self) -> Option<String> {
        match self.peek() {
            Tok::Ident(s) => Some(s.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn next_word(&mut self) -> Option<String> {
        let word = self.keyword();
        if word.is_some() {
            self.advance();
        }
        word
    }

    fn eat(&mut self, word: &str) -> bool {
        if self.keyword().as_deref() == Some(word) {
            self.advance();
            true
        } else {
            false
        }
    }

    /// Runs `parse` one nesting level deeper, refusing expressions nested too deep.
    fn nested(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<Expr, String>,
    ) -> Result<Expr, String> {
        if self.depth >= MAX_NESTING {
            return Err(format!(
                "nested more than {MAX_NESTING} levels deep at {}",
                self.position()
            ));
        }
        self.depth += 1;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    fn parse_full_expr(&mut self) -> Result<Expr, String> {
        let e = self.expr(0)?;
        if self.peek() != &Tok::Eof {
            return Err(format!(
                "unexpected {:?} at {}",
                self.peek(),
                self.position()
            ));
        }
        Ok(e)
    }

    /// Precedence climbing: 0 OR, 1 AND, 2 NOT, 3 comparisons, 4 + -, 5 * / %.
    fn expr(&mut self, level: u8) -> Result<Expr, String> {
        match level {
            0 | 1 => {
                let (word, op) = if level == 0 {
                    ("or", BinOp::Or)
                } else {
                    ("and", BinOp::And)
                };
                let mut left = self.expr(level + 1)?;
                while self.eat(word) {
                    let right = self.expr(level + 1)?;
                    left = Expr::Binary(Box::new(left), op, Box::new(right));
                }
                Ok(left)
            }
            2 => {
                if self.eat("not") {
                    let inner = self.nested(|p| p.expr(2))?;
                    Ok(Expr::Not(Box::new(inner)))
                } else {
                    self.expr(3)
                }
            }
            3 => self.comparison(),
            4 | 5 => {
                let mut left = self.expr(level + 1)?;
                loop {
                    let op = match (level, self.peek()) {
                        (4, Tok::Op(o)) if o == "+" => BinOp::Add,
                        (4, Tok::Op(o)) if o == "-" => BinOp::Sub,
                        (5, Tok::Op(o)) if o == "*" => BinOp::Mul,
                        (5, Tok::Op(o)) if o == "/" => BinOp::Div,
                        (5, Tok::Op(o)) if o == "%" => BinOp::Mod,
                        _ => break,
                    };
                    self.advance();
                    let right = self.expr(level + 1)?;
                    left = Expr::Binary(Box::new(left), op, Box::new(right));
                }
                Ok(left)
            }
            _ => self.unary(),
        }
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let left = self.expr(4)?;
        if self.eat("is") {
            let negated = self.eat("not");
            if !self.eat("null") {
                return Err(format!("expected NULL at {}", self.position()));
            }
            return Ok(Expr::IsNull(Box::new(left), negated));
        }
        let negated = self.eat("not");
        if self.eat("in") {
            self.expect(&Tok::LParen)?;
            let mut list = vec![self.expr(4)?];
            while self.peek() == &Tok::Comma {
                self.advance();
                list.push(self.expr(4)?);
            }
            self.expect(&Tok::RParen)?;
            return Ok(Expr::In(Box::new(left), list, negated));
        }
        if self.eat("like") {
            let Tok::Str(pattern) = self.advance() else {
                return Err(format!(
                    "LIKE needs a string pattern at {}",
                    self.position()
                ));
            };
            let escape = if self.eat("escape") {
                match self.advance() {
                    Tok::Str(e) if e.chars().count() == 1 => e.chars().next(),
                    _ => {
                        return Err(format!(
                            "ESCAPE needs a one-character string at {}",
                            self.position()
                        ));
                    }
                }
            } else {
                None
            };
            return Ok(Expr::Like(Box::new(left), pattern, escape, negated));
        }
        if negated {
            return Err(format!(
                "expected IN or LIKE after NOT at {}",
                self.position()
            ));
        }
        let op = match self.peek() {
            Tok::Op(o) => match o.as_str() {
                "=" => BinOp::Eq,
                "<>" | "!=" => BinOp::Ne,
                "<" => BinOp::Lt,
                "<=" => BinOp::Le,
                ">" => BinOp::Gt,
                ">=" => BinOp::Ge,
                _ => return Ok(left),
            },
            _ => return Ok(left),
        };
        self.advance();
        let right = self.expr(4)?;
        Ok(Expr::Binary(Box::new(left), op, Box::new(right)))
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.peek().clone() {
            Tok::Op(o) if o == "-" => {
                self.advance();
                let inner = self.nested(Self::unary)?;
                Ok(Expr::Neg(Box::new(inner)))
            }
            Tok::Op(o) if o == "+" => {
                self.advance();
                self.nested(Self::unary)
            }
            Tok::LParen => {
                self.advance();
                let e = self.nested(|p| p.expr(0))?;
                self.expect(&Tok::RParen)?;
                Ok(e)
            }
            Tok::Str(s) => {
                self.advance();
                Ok(Expr::Const(V::Str(s)))
            }
            Tok::Int(n) => {
                self.advance();
                Ok(Expr::Const(V::Int(n)))
            }
            Tok::Double(x) => {
                self.advance();
                Ok(Expr::Const(V::Double(x)))
            }
            Tok::Ident(word) => {
                let lower = word.to_ascii_lowercase();
                match lower.as_str() {
                    "true" => {
                        self.advance();
                        Ok(Expr::Const(V::Bool(true)))
                    }
                    "false" => {
                        self.advance();
                        Ok(Expr::Const(V::Bool(false)))
                    }
                    "null" => {
                        self.advance();
                        Ok(Expr::Const(V::Null))
                    }
                    "exists" => {
                        self.advance();
                        self.expect(&Tok::LParen)?;
                        let p = self.property()?;
                        self.expect(&Tok::RParen)?;
                        Ok(Expr::Exists(p))
                    }
                    "newid"
                        if self.tokens.get(self.pos + 1).map(|t| &t.0) == Some(&Tok::LParen) =>
                    {
                        self.advance();
                        self.expect(&Tok::LParen)?;
                        self.expect(&Tok::RParen)?;
                        Ok(Expr::NewId)
                    }
                    "property" | "p"
                        if self.tokens.get(self.pos + 1).map(|t| &t.0) == Some(&Tok::LParen) =>
                    {
                        self.advance();
                        self.expect(&Tok::LParen)?;
                        let Tok::Str(name) = self.advance() else {
                            return Err(format!(
                                "property() needs a string at {}",
                                self.position()
                            ));
                        };
                        self.expect(&Tok::RParen)?;
                        Ok(Expr::Prop(user_or_sys(&name)?))
                    }
                    _ => Ok(Expr::Prop(self.property()?)),
                }
            }
            other => Err(format!("unexpected {other:?} at {}", self.position())),
        }
    }

    fn property(&mut self) -> Result<Prop, String> {
        let Tok::Ident(first) = self.advance() else {
            return Err(format!("expected a property name at {}", self.position()));
        };
        if self.peek() == &Tok::Dot {
            self.advance();
            let Tok::Ident(name) = self.advance() else {
                return Err(format!(
                    "expected a property name after '.' at {}",
                    self.position()
                ));
            };
            return match first.to_ascii_lowercase().as_str() {
                "sys" => SysProp::parse(&name)
                    .map(Prop::Sys)
                    .ok_or_else(|| format!("unknown system property sys.{name}")),
                "user" => Ok(Prop::User(name)),
                other => Err(format!("unknown scope {other:?}; use sys. or user.")),
            };
        }
        Ok(Prop::User(first))
    }
}

fn user_or_sys(name: &str) -> Result<Prop, String> {
    match name.split_once('.') {
        Some((scope, rest)) if scope.eq_ignore_ascii_case("sys") => SysProp::parse(rest)
            .map(Prop::Sys)
            .ok_or_else(|| format!("unknown system property {name}")),
        Some((scope, rest)) if scope.eq_ignore_ascii_case("user") => {
            Ok(Prop::User(rest.to_string()))
        }
        _ => Ok(Prop::User(name.to_string())),
    }
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
